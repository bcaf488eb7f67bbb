"""Whose rules apply: the scope comes from exactly the auth headers the upstream receives.

The caller computes the forwarded header set first (hop-by-hop handling done), then asks for
the key here, so no header trick can make the proxy filter for one key while the upstream
answers for another. Anything ambiguous is refused (400), never guessed at.
"""

from __future__ import annotations

import re

from multidict import CIMultiDict, CIMultiDictProxy

from proxy.errors import BadRequestError
from rules.model import GLOBAL, tenant_of
from rules.scopes import check_campaign

AUTH_HEADERS = ("X-API-Key", "Authorization")
# RFC 6750 §2.1: `Bearer` (any case), one or more spaces, a token68.
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)")

Headers = CIMultiDict[str] | CIMultiDictProxy[str]


def forwarded_key(headers: Headers) -> str | None:
    """The one API key these (forwarded) headers carry, or None; 400 when it is ambiguous.

    Two X-API-Key or two Authorization headers, an X-API-Key that differs from the Bearer
    token, an empty key, and any Authorization that is not `Bearer <token>` are refused: the
    upstream might read any of them, so the proxy cannot know whose rules apply.
    """
    keys = headers.getall("X-API-Key", ())
    auths = headers.getall("Authorization", ())
    if len(keys) > 1 or len(auths) > 1:
        raise BadRequestError("more than one X-API-Key or Authorization header")
    key = keys[0] if keys else None
    token = _bearer_token(auths[0]) if auths else None  # never "": the pattern wants a char
    if key == "":
        raise BadRequestError("empty API key")
    if token is not None and key is not None and key != token:
        raise BadRequestError("X-API-Key and Authorization carry different keys")
    return key if token is None else token


def scope_of(headers: Headers) -> str:
    """The tenant of the forwarded headers; a request without a key gets the global rules."""
    key = forwarded_key(headers)
    return tenant_of(key) if key else GLOBAL


CAMPAIGN_HEADER = "X-Denyproxy-Campaign"


def campaign_of(headers: Headers) -> str | None:
    """The request's campaign (its key's rules for it apply too), or None; 400 when malformed
    or repeated. Never forwarded upstream (proxy/headers.py drops it)."""
    given = headers.getall(CAMPAIGN_HEADER, [])
    if not given:
        return None
    try:
        if len(given) > 1:
            raise ValueError("more than one X-Denyproxy-Campaign header")
        return check_campaign(given[0])
    except ValueError as exc:
        raise BadRequestError(f"{CAMPAIGN_HEADER}: {exc}") from None


def _bearer_token(value: str) -> str:
    match = _BEARER.fullmatch(value)
    if match is None:
        raise BadRequestError("Authorization must be 'Bearer <API key>'")
    return match.group(1)
