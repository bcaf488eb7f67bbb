"""The rendered and quoted-printable readings (rules/detect/rendered.py): what they read, and
that each candidate's span covers the identifier as written, markup included."""

from __future__ import annotations

import orjson
import pytest

from proxy import respond
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


def test_only_what_crosses_dropped_markup_is_new() -> None:
    assert rendered.candidates("a > b, 5 < 6 jane.doe@acme.com", "US") == []  # `< ` is no tag
    assert rendered.candidates("<p>jane.doe@acme.com</p>", "US") == []  # read as written
    far = "<b>x</b>" + "y" * 5000 + " jane.doe<wbr>@acme.com"  # a window around each cut
    (c,) = [c for c in rendered.candidates(far, "US") if c.kind is RuleType.EMAIL]
    assert far[c.start:c.end] == "jane.doe<wbr>@acme.com"


def test_markup_in_json_is_read_inside_one_string_only() -> None:
    body = b'{"a": "jane.doe<wbr>@acme.com", "b": "x<y", "c": "z>@acme.com"}'
    found = rendered.candidates_bytes(body, "US")
    assert [body[c.start:c.end] for c in found] == [b"jane.doe<wbr>@acme.com"]
    escaped = '{"bio": "caf\u00e9 jane\\u0000.doe@acme.com"}'.encode()
    (c,) = rendered.candidates_bytes(escaped, "US")
    assert escaped[c.start:c.end] == b"jane\\u0000.doe@acme.com"  # byte spans past the é


def test_quoted_printable_is_read_decoded_in_a_mail() -> None:
    part = ("Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            "Mail jane.doe=40acme.com or call +1 512 555 01=\r\n00.\r\n")
    found = rendered.candidates(part, "US", mail=True)
    written = {part[c.start:c.end] for c in found}
    assert {"jane.doe=40acme.com", "+1 512 555 01=\r\n00"} <= written
    assert rendered.candidates(part, "US") == []  # not a mail: `=40` is what a reader sees


def test_a_json_plan_keeps_the_rendered_candidates_in_span_order() -> None:
    """The join windows bisect on the candidates' starts (rules/detect/joins.py): a rendered
    candidate early in the body is merged in place, not appended after the scanner's."""
    body = orjson.dumps({"bio": "mail jane.doe<wbr>@acme.com", "email": "bob@acme.com",
                         "phone": "+15125550100"})
    inspection = respond.json_filter(body, "US").inspection
    assert inspection is not None
    text = inspection.text
    assert any(c.end - c.start > len("jane.doe@acme.com") for c in text)  # the rendered one
    assert [(c.start, c.end) for c in text] == sorted((c.start, c.end) for c in text)
