"""The catalogue's optional fields of a rule write (`reason`, `expires_at`, `ttl_seconds`)."""

from __future__ import annotations

from typing import Any

from proxy.errors import BadRequestError
from rules.catalogue.meta import checked_meta
from rules.model import ChangeMeta

SOURCE = "deny-rules-api"


def change_meta(body: dict[str, Any]) -> ChangeMeta:
    """What a write records: now, this API as source, and the body's reason and expiry."""
    try:
        return checked_meta(
            SOURCE, body.get("reason"), body.get("expires_at"), body.get("ttl_seconds")
        )
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None
