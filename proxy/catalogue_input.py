"""The catalogue's optional fields of a rule write (`reason`, `expires_at`, `ttl_seconds`)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from proxy.errors import BadRequestError
from rules.catalogue.record import MAX_REASON
from rules.model import ChangeMeta

SOURCE = "deny-rules-api"
MAX_TTL_SECONDS = 100 * 365 * 86_400


def change_meta(body: dict[str, Any]) -> ChangeMeta:
    """What a write records: now, this API as source, and the body's reason and expiry."""
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise BadRequestError(f"reason must be a string of at most {MAX_REASON} characters")
    now = time.time()
    return ChangeMeta(now, SOURCE, str(uuid.uuid4()), reason, _expiry(body, now))


def _expiry(body: dict[str, Any], now: float) -> float | None:
    expires, ttl = body.get("expires_at"), body.get("ttl_seconds")
    if expires is not None and ttl is not None:
        raise BadRequestError("give expires_at or ttl_seconds, not both")
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TTL_SECONDS:
            raise BadRequestError(f"ttl_seconds must be an integer from 1 to {MAX_TTL_SECONDS}")
        return now + ttl
    if expires is None:
        return None
    moment = _timestamp(expires)
    if moment <= now:
        raise BadRequestError("expires_at must be in the future")
    return moment


def _timestamp(text: Any) -> float:
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadRequestError("expires_at must be an RFC 3339 timestamp with a time zone")
    return moment.timestamp()
