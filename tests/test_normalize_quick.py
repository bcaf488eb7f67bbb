"""rules/normalize.py's plain LinkedIn spelling: `linkedin` (a regex for the common URL shape)
gives exactly what `parsed_linkedin` (URL parsing, every spelling) gives, on plain URLs and on
near misses: other hosts, Unicode look-alikes that case-fold to ASCII (dotless i, long s,
the Kelvin sign), percent escapes, dot segments, prefixes, queries."""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from rules import normalize

_EQUIVALENCE = settings(max_examples=settings.default.max_examples * 2, deadline=None)
_PLAIN = (
    r"\A(?:https?://|HTTPS://|)(?:[a-zA-Z0-9-]{1,8}\.)?(?:linkedin|LinkedIn|LINKEDIN)\.com"
    r"/(?:in|IN|In)/[a-zA-Z0-9][a-zA-Z0-9_-]{0,30}/?\Z"
)
_PIECES = [
    "https://", "http://", "//", "www.", "uk.", "linkedin", "lınkedin", "linkedın", "LİNKEDIN",
    "linKedin", ".com", ".com.", "/", "\\", "in", "m", "pub", "ſ", "K", "%20", "%2F", "%C3%A9",
    ".", "..", "?trk=x", "#about", " ", "é", "jane", "Jane-Doe", "_", "-", ":443", "user@",
]


def _uncached(raw: str) -> str | None:
    return normalize.linkedin.__wrapped__(raw)  # type: ignore[attr-defined]


def _check(raw: str) -> None:
    found = _uncached(raw)
    event("a profile" if found else "no profile")
    assert found == normalize.parsed_linkedin(raw)


@_EQUIVALENCE
@given(st.from_regex(_PLAIN))
def test_a_plain_profile_url_reads_as_url_parsing_reads_it(raw: str) -> None:
    _check(raw)
    assert _uncached(raw) is not None


@_EQUIVALENCE
@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=12).map("".join))
def test_any_spelling_reads_as_url_parsing_reads_it(raw: str) -> None:
    _check(raw)


@_EQUIVALENCE
@given(st.from_regex(_PLAIN), st.integers(0, 60), st.sampled_from(_PIECES))
def test_a_plain_url_with_one_piece_inserted_reads_as_url_parsing_reads_it(
    raw: str, at: int, piece: str
) -> None:
    _check(raw[:at] + piece + raw[at:])


def test_the_plain_spelling_is_the_common_one() -> None:
    assert normalize.PLAIN_PROFILE.fullmatch("https://www.linkedin.com/in/Jane-Doe-4b2a1c/")
    assert not normalize.PLAIN_PROFILE.fullmatch("https://www.lınkedin.com/in/jane")
