"""The catalogue's optional fields of a rule change (`reason`, `expires_at`, `ttl_seconds`).

Checked here once for every writer (the rules API, `rules add`, `rules import`), so a record
made by any of them carries the same fields under the same limits.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from rules.catalogue.record import MAX_REASON
from rules.model import ChangeMeta

MAX_TTL_SECONDS = 100 * 365 * 86_400


def checked_meta(
    source: str, reason: object = None, expires_at: object = None, ttl_seconds: object = None,
    *, now: float | None = None,
) -> ChangeMeta:
    """A change made now by `source`; raises ValueError with a message a user can act on."""
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise ValueError(f"reason must be a string of at most {MAX_REASON} characters")
    at = time.time() if now is None else now
    return ChangeMeta(at, source, str(uuid.uuid4()), reason, _expiry(expires_at, ttl_seconds, at))


def _expiry(expires: object, ttl: object, now: float) -> float | None:
    if expires is not None and ttl is not None:
        raise ValueError("give expires_at or ttl_seconds, not both")
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TTL_SECONDS:
            raise ValueError(f"ttl_seconds must be an integer from 1 to {MAX_TTL_SECONDS}")
        return now + ttl
    if expires is None:
        return None
    moment = _timestamp(expires)
    if moment <= now:
        raise ValueError("expires_at must be in the future")
    return moment


def _timestamp(text: object) -> float:
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError("expires_at must be an RFC 3339 timestamp with a time zone")
    return moment.timestamp()
