"""Logs: one JSON object per line (a readable line on a terminal); never a key, email or phone.

Callers log events with fields through `extra={"fields": {...}}`; the message is the event name.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Any

import orjson

_ID_SEGMENT = re.compile(r"[A-Za-z_-]{1,32}|v\d{1,2}")  # words and API versions (v1)
_EMAIL = re.compile(r"[^\s\"'<>()\[\],;:@]+@[^\s\"'<>()\[\],;:@]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w.])\+?\(?\d[\d\s().-]{5,}\d(?![\w])")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
# A credential after its label, to the end of the line or quote: aiohttp's parse errors quote
# the offending header line (`b'X-API-Key: <key>\\x01'`), key included.
_CREDENTIAL = re.compile(
    r"(x-api-key|authorization|api[_-]?key|bearer)(['\"]?[ \t]*[:= ][ \t]*['\"]?)[^\r\n'\"]+",
    re.IGNORECASE,
)
REDACTED = "<redacted>"
_OURS = ("denyproxy", "proxy", "rules")  # top-level logger names of this project


def scrub(text: str) -> str:
    """Credentials, emails and phone-like runs (7+ digits, not an IPv4 address) out of text.

    For text we do not control: exception messages and tracebacks, other libraries' messages
    (aiohttp's own "Error handling request" lines among them).
    """
    text = _CREDENTIAL.sub(rf"\1\2{REDACTED}", text)
    text = _EMAIL.sub(REDACTED, text)
    return _PHONE.sub(_phone_or_not, text)


def _phone_or_not(match: re.Match[str]) -> str:
    run = match.group(0)
    if _IPV4.fullmatch(run.strip()) or sum(c.isdigit() for c in run) < 7:
        return run
    return REDACTED


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": message(record),
            "logger": record.name,
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = scrub(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{when} {record.levelname:<7} {message(record)} {fields}".rstrip()
        if record.exc_info:
            line += "\n" + scrub(self.formatException(record.exc_info))
        return line


def message(record: logging.LogRecord) -> str:
    """Our messages are event names or counts; other libraries' may interpolate values."""
    text = record.getMessage()
    return text if record.name.split(".", 1)[0] in _OURS else scrub(text)


def use_json(fmt: str, stream: IO[str]) -> bool:
    """`json`/`text` as asked; `auto` is text when the log stream is a terminal, else JSON."""
    if fmt != "auto":
        return fmt == "json"
    isatty = getattr(stream, "isatty", None)
    try:
        return not (isatty is not None and isatty())
    except ValueError:  # a closed stream
        return True


def configure(level: str, fmt: str) -> None:
    """`auto` is text on a terminal and JSON elsewhere (log stacks read JSON).

    Logs go to stderr (stdout stays free), so stderr is the stream `auto` looks at. Python
    warnings and uncaught exceptions go through the same handler: every line is one object.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json(fmt, sys.stderr) else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").disabled = True  # our own access line replaces it
    logging.getLogger("aiokafka").setLevel(max(root.level, logging.WARNING))
    logging.captureWarnings(True)
    sys.excepthook = _uncaught


def _uncaught(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("denyproxy").critical("crashed", exc_info=(kind, value, tb))


def route_template(path: str) -> str:
    """`/api/v1/task/3f2a.../x` → `/api/v1/task/{id}/x`: paths can carry ids, or worse."""
    segments = path.split("?", 1)[0].split("/")
    return "/".join(s if not s or _ID_SEGMENT.fullmatch(s) else "{id}" for s in segments)
