"""Commands encoded for the wire (RESP) by hiredis: a call's commands in one buffer, and a
command's constant part (a script's name, SHA and keys) encoded once and kept (`Parts`).

hiredis packs ~0.2 µs an argument; a lookup names ~20 keys that are the same on every call of
its key, so only its values are packed per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import hiredis
from redis._parsers.base import BaseParser
from redis.exceptions import RedisError

Reply = object
"""What hiredis parses a reply into: int, bytes, None, a list of those, or a ReplyError."""
Arg = str | bytes | int | float
Command = Sequence[Arg]


def pack(commands: Sequence[Command]) -> bytes:
    """Every command of a call in one buffer (one write)."""
    # hiredis's stub types a command as a 1-tuple; it takes any number of parts.
    return b"".join([hiredis.pack_command(tuple(c)) for c in commands])  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Parts:
    """Some arguments of a command, RESP-encoded: a command's constant part (its name, a
    script's SHA and keys) is encoded once and kept, only the rest for each call."""

    count: int
    data: bytes

    @classmethod
    def of(cls, args: Sequence[Arg]) -> Parts:
        """Packed by hiredis, the command's `*<count>` header cut off."""
        packed = hiredis.pack_command(tuple(args))  # type: ignore[arg-type]  # as in pack()
        return cls(len(args), packed[packed.index(b"\n") + 1:])

    def command(self, rest: Sequence[Arg]) -> bytes:
        """The command of these parts followed by `rest`, as pack() writes it."""
        packed = hiredis.pack_command(tuple(rest))  # type: ignore[arg-type]  # as in pack()
        tail = memoryview(packed)[packed.index(b"\n") + 1:]  # the header cut off, no copy
        return b"".join((b"*%d\r\n" % (self.count + len(rest)), self.data, tail))


def raise_errors(replies: list[Reply]) -> list[Reply]:
    """The replies, or the first error reply raised as redis-py's class for it (NOSCRIPT:
    NoScriptError, NOPERM: NoPermissionError, any other: ResponseError)."""
    for reply in replies:
        if isinstance(reply, hiredis.ReplyError):
            # redis-py leaves parse_error unannotated; it returns a RedisError subclass
            error: RedisError = BaseParser.parse_error(str(reply))  # type: ignore[no-untyped-call]
            raise error
    return replies
