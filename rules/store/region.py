"""The phone region of a rule set, recorded in the store: a process that reads it otherwise
refuses to start.

Rules hold E.164 numbers, but responses carry national-format numbers that the proxy reads
in its own `--phone-region`; rules written (or published through the API) with one region and
read with another disagree on every such number. The first process to start on a Redis store
records its region (with who and when); every later one compares. A memory store lives and
dies with its process: nothing to compare.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from rules.store.redis import RedisStore


@dataclass(frozen=True, slots=True)
class RegionRecord:
    """What the store says: the region, and which process recorded it when."""

    region: str
    by: str

    def encode(self) -> str:
        return orjson.dumps({"region": self.region, "by": self.by}).decode()

    @classmethod
    def decode(cls, raw: str) -> RegionRecord:
        """A record; a bare code (set by hand) is read as that region, recorded by someone."""
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return cls(raw.strip().upper(), "an unknown writer")
        if not isinstance(body, dict):
            return cls(str(body).upper(), "an unknown writer")
        return cls(str(body.get("region", "")).upper(), str(body.get("by") or "an unknown writer"))


class RegionMismatchError(Exception):
    """This process's region is not the store's; the message is the one line to print."""


def recorder(command: str) -> str:
    """Who records a region: the command, the host, and when (no secrets, no PII)."""
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return f"denyproxy {command} on {socket.gethostname()} at {now}"


async def check_region(store: RedisStore, region: str, by: str) -> RegionRecord:
    """Record `region` on a store that has none, else require it to be the recorded one."""
    recorded = RegionRecord.decode(await store.claim_region(RegionRecord(region, by).encode()))
    if recorded.region != region:
        raise RegionMismatchError(
            f"phone region {region} differs from the rule store's {recorded.region}"
            f" (set by {recorded.by}); start with --phone-region {recorded.region}"
            " or rebuild the store"
        )
    return recorded
