"""Logs: one JSON object per line (a readable line on a terminal); never a key, email or phone.

Callers log events with fields through `extra={"fields": {...}}`; the message is the event name.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_ID_SEGMENT = re.compile(r"[A-Za-z_-]+")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{when} {record.levelname:<7} {record.getMessage()} {fields}".rstrip()
        return line + ("\n" + self.formatException(record.exc_info) if record.exc_info else "")


def configure(level: str, fmt: str) -> None:
    """`auto` is text on a terminal and JSON elsewhere (log stacks read JSON)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").disabled = True  # our own access line replaces it
    logging.getLogger("aiokafka").setLevel(max(root.level, logging.WARNING))


def route_template(path: str) -> str:
    """`/api/v1/task/3f2a.../x` → `/api/v1/task/{id}/x`: paths can carry ids, or worse."""
    segments = path.split("?", 1)[0].split("/")
    return "/".join(s if not s or _ID_SEGMENT.fullmatch(s) else "{id}" for s in segments)
