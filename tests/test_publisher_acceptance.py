"""What the CLI and the publisher library send, the consumer accepts, and stores unchanged.

Issue #17 (8): some inputs once normalised to a form the consumer then rejected. Both sides now
call the one normaliser; this proves it over generated spellings of every type: publisher
validation ⊆ consumer acceptance, and the stored value is what the publisher sent.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rules import commands, events, normalize
from rules.events import InvalidEventError, decode, encode
from rules.model import RuleType, tenant_of
from rules.psl import is_freemail

TENANT = tenant_of("property-key")
REGIONS = st.sampled_from(["US", "FR", "GB", "MX", "DE", "IN"])
INVISIBLE = st.sampled_from(["", "\ufeff", "\u200b", "\u200d", "\u200e", "\u2060"])
LETTERS = st.text(st.sampled_from("abcxyzéèüöñøå.-_+0123456789\u0301\u0308"), min_size=1,
                  max_size=12)


@st.composite
def spellings(draw: st.DrawFn) -> str:
    """Raw values as people type them: any type, odd case, invisible characters, NFD."""
    kind = draw(st.sampled_from(["email", "phone", "domain", "linkedin", "text"]))
    word = draw(LETTERS)
    if kind == "email":
        value = f"{word}@{draw(st.sampled_from(['acme.com', 'Bücher.de', 'gmail.com', 'co.uk']))}"
    elif kind == "phone":
        digits = draw(st.text(st.sampled_from("0123456789"), min_size=6, max_size=13))
        value = draw(st.sampled_from(["", "+", "+52 1 ", "00", "tel:+"])) + " ".join(digits)
    elif kind == "domain":
        value = draw(st.sampled_from(["", "https://", "@", "www."])) + f"{word}.com"
    elif kind == "linkedin":
        value = f"https://uk.linkedin.com/in/{word}/?trk=x"
    else:
        value = draw(st.text(max_size=30))
    cut = draw(st.integers(0, len(value)))
    return value[:cut] + draw(INVISIBLE) + value[cut:]


def test_both_sides_use_the_one_normaliser() -> None:
    assert commands.classify is normalize.classify
    assert events.normalize_all is normalize.normalize_all


@given(st.lists(spellings(), min_size=1, max_size=5), st.sampled_from([None, *RuleType]),
       REGIONS, st.booleans(), REGIONS)
def test_what_the_cli_accepts_the_consumer_stores_unchanged(
    raw: list[str], rule_type: RuleType | None, region: str, freemail: bool, consumer: str
) -> None:
    try:
        groups = commands.normalise_all(raw, rule_type, region, allow_freemail=freemail)
    except commands.InvalidInputError:
        return  # refused at the publisher: nothing is sent
    for kind, values in groups.items():
        allowed = kind is RuleType.DOMAIN and any(is_freemail(v) for v in values)
        value = encode("add", TENANT, kind, values, region=region, allow_freemail=allowed)
        assert decode(value, consumer).values == tuple(values)  # accepted, a fixed point


@given(spellings(), st.sampled_from(list(RuleType)), REGIONS, REGIONS)
def test_a_raw_value_the_publisher_library_accepts_is_read_alike_by_any_consumer(
    raw: str, kind: RuleType, region: str, consumer: str
) -> None:
    try:
        sent = events.normalise([raw], kind, region)
    except InvalidEventError:
        return
    as_sent = encode("add", TENANT, kind, list(sent), region=region)
    as_typed = encode("add", TENANT, kind, [raw], region=region)  # a raw publisher
    assert decode(as_sent, consumer).values == sent == decode(as_typed, consumer).values
