"""The rendered and quoted-printable readings (rules/detect/rendered.py): what they read, and
that each candidate's span covers the identifier as written, markup included."""

from __future__ import annotations

import pytest

from rules.detect import rendered
from rules.model import RuleType

EMAIL = "jane.doe@acme.com"


@pytest.mark.parametrize(("text", "written"), [
    ("<p>mail jane.doe<wbr>@acme.com now</p>", "jane.doe<wbr>@acme.com"),
    ("<p>mail jane\0.doe@acme.com now</p>", "jane\0.doe@acme.com"),
    ("mail jane.doe<!-- x > y -->@acme.com", "jane.doe<!-- x > y -->@acme.com"),
    ("mail jane.doe<span class='a'>@</span>acme.com", "jane.doe<span class='a'>@</span>acme.com"),
])
def test_markup_a_browser_drops_is_read_through(text: str, written: str) -> None:
    found = [c for c in rendered.candidates(text, "US") if c.kind is RuleType.EMAIL]
    assert [(text[c.start:c.end], c.normal) for c in found] == [(written, (EMAIL,))]


def test_a_phone_split_by_tags_is_read_whole() -> None:
    text = "call 512<wbr>555<b></b>0100 now"
    phones = [c for c in rendered.candidates(text, "US") if c.kind is RuleType.PHONE]
    assert "+15125550100" in {n for c in phones for n in c.normal}


def test_a_text_without_markup_has_no_rendered_reading() -> None:
    assert rendered.rendered("mail jane.doe@acme.com, a > b") is None
    assert rendered.candidates("a > b, 5 < 6 jane.doe@acme.com", "US") == []  # `< ` is no tag


def test_markup_in_json_is_read_inside_one_string_only() -> None:
    body = b'{"a": "jane.doe<wbr>@acme.com", "b": "x<y", "c": "z>@acme.com"}'
    found = rendered.candidates_bytes(body, "US")
    assert [body[c.start:c.end] for c in found] == [b"jane.doe<wbr>@acme.com"]
    escaped = '{"bio": "caf\u00e9 jane\\u0000.doe@acme.com"}'.encode()
    (c,) = rendered.candidates_bytes(escaped, "US")
    assert escaped[c.start:c.end] == b"jane\\u0000.doe@acme.com"  # byte spans past the é


def test_quoted_printable_is_read_decoded_where_a_part_declares_it() -> None:
    part = ("Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            "Mail jane.doe=40acme.com or call +1 512 555 01=\r\n00.\r\n")
    found = rendered.candidates(part, "US")
    written = {part[c.start:c.end] for c in found}
    assert {"jane.doe=40acme.com", "+1 512 555 01=\r\n00"} <= written
    assert rendered.quoted_printable(part.replace("quoted-printable", "7bit")) is None
