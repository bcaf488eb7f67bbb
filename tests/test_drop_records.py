"""What `--policy drop` removes: the record that holds a denied identifier (`splice.record_of`).

Each case goes through the pure-Python splice, the compiled one (rules/native/src/splice.rs)
and the tree filter (`rules.detect.redact`): the same bytes from the splices, the same document
from the tree filter, and the output is JSON. A record is the outermost list element (an
object, or a row array) or object keyed in a map of records (an object of objects that is not
a record; the body itself only when none of its values is an object of objects) around the
identifier, none in a list under an identifier key below the body's member (its holder's own
entries, `contact.is_entries_key`) but for an element that says more than an entry (a person:
`splice.is_entry`); with none, the body's object member that holds it. What no
record holds is stripped where it is, as under `--policy strip`.
"""

from __future__ import annotations

import json

import pytest

from rules.detect import finder, jsonspan, splice, structure
from rules.detect.contact import CONTACT_META_KEYS
from rules.detect.redact import redact
from rules.model import RuleType

E = "jane@acme.com"  # the denied identifier; "+15125550199" stands for the rest of the person
CASES = {
    # a person keyed in a map: the member goes, key and value, the commas stay valid
    "map-first": (b'{"people": {"p1": {"email": "jane@acme.com", "phone": "+15125550199"},'
                  b' "p2": {"id": 2}}}', b'{"people": {"p2": {"id": 2}}}'),
    "map-last": (b'{"people": {"p0": {"id": 0} ,\n "p1": {"email": "jane@acme.com",'
                 b' "phone": "+15125550199"}}}', b'{"people": {"p0": {"id": 0}}}'),
    "map-only": (b'{"people": {"p1": {"email": "jane@acme.com", "phone": "+15125550199"}}}',
                 b'{"people": {}}'),
    # a map inside a list element: the outermost record goes (a person's own entries cannot
    # be told from a group's members, so the element that holds them goes)
    "map-in-a-record": (b'[{"org": "Acme", "people": {"p1": {"name": "Jane", "email":'
                        b' "jane@acme.com"}, "p2": {"id": 2}}}, {"id": 3}]', b'[{"id": 3}]'),
    # a row array inside a list: the row goes
    "row": (b'{"rows": [["Jane", "jane@acme.com", "+15125550199"], ["Bob", 2]]}',
            b'{"rows": [["Bob", 2]]}'),
    "row-in-the-body": (b'[["Bob", 2], ["Jane", "jane@acme.com", "+15125550199"]]',
                        b'[["Bob", 2]]'),
    # a nested object inside a person: the person goes, not the sub-object
    "sub-object-in-a-list": (b'[{"contact": {"email": "jane@acme.com"}, "social":'
                             b' {"phone": "+15125550199"}}, {"id": 2}]', b'[{"id": 2}]'),
    "sub-object-in-a-map": (b'{"people": {"p1": {"contact": {"email": "jane@acme.com"},'
                            b' "social": {"phone": "+15125550199"}}}}', b'{"people": {}}'),
    "one-person-under-a-key": (b'{"person": {"email": "jane@acme.com", "phone": "+15125550199"},'
                               b' "meta": {"took": 3}}', b'{"meta": {"took": 3}}'),
    # a contact point keyed in a map: it goes, and so would the record holding it
    "contact-point-in-a-map": (b'{"people": {"p1": {"email": "jane@acme.com", "verified": true},'
                               b' "p2": {"id": 2}}}', b'{"people": {"p2": {"id": 2}}}'),
    # an array of strings of emails outside every record: the element goes
    "emails": (b'{"emails": ["jane@acme.com", "bob@acme.com"]}', b'{"emails": ["bob@acme.com"]}'),
    # the body's own object is no record (as before): the value is stripped, the body kept
    "the-body": (b'{"email": "jane@acme.com", "phone": "+15125550199"}',
                 b'{"email": null, "phone": "+15125550199"}'),
    # an object with other members than objects is no map: its object values are not records,
    # the body's member that holds the identifier is
    "not-a-map": (b'{"people": {"p1": {"email": "jane@acme.com"}, "total": 1}, "status": "ok"}',
                  b'{"status": "ok"}'),
    # review5: the commonest envelope, one person beside a scalar: the body's member goes
    "one-person-beside-a-status": (b'{"success": true, "data": {"name": "Jane", "email":'
                                   b' "jane@acme.com", "phone": "+15125550199"}}',
                                   b'{"success": true}'),
    # review5: a person's entries inside the person: the person goes, not the entry
    "an-email-entry": (b'{"data": [{"name": "Jane", "emails": [{"email": "jane@acme.com",'
                       b' "domain": "acme.com"}], "phone": "+15125550199"}, {"id": 2}]}',
                       b'{"data": [{"id": 2}]}'),
    "an-email-pair": (b'{"data": [{"name": "Jane", "emails": [["jane@acme.com", "work"]],'
                      b' "phone": "+15125550199"}, {"id": 2}]}', b'{"data": [{"id": 2}]}'),
    "an-array-cell-in-a-row": (b'{"rows": [["Jane", ["jane@acme.com"], "+15125550199"],'
                               b' ["Bob", 2]]}', b'{"rows": [["Bob", 2]]}'),
    # a list of scalars inside the body's member: that member goes
    "emails-in-a-member": (b'{"data": {"emails": ["jane@acme.com"], "phone": "+15125550199"},'
                           b' "ok": true}', b'{"ok": true}'),
    # review5: a lone person's entry in a list under an identifier key below the body's member
    # is hers, no record: the body's member goes (`contact.is_entries_key`)
    "a-lone-persons-email-entry": (b'{"success": true, "data": {"emails": [{"email":'
                                   b' "jane@acme.com", "domain": "acme.com"}], "phone":'
                                   b' "+15125550199"}}', b'{"success": true}'),
    "a-lone-persons-email-pair": (b'{"data": {"name": "Jane", "email_addresses": [['
                                  b'"jane@acme.com", "work"]], "phone": "+15125550199"},'
                                  b' "ok": true}', b'{"ok": true}'),
    "a-lone-persons-entry-deeper": (b'{"data": {"person": {"emails": [{"email": "jane@acme.com",'
                                    b' "domain": "acme.com"}], "phone": "+15125550199"},'
                                    b' "total": 1}, "ok": true}', b'{"ok": true}'),
    # any other list below the body's member holds records: her neighbour stays
    "people-beside-a-total": (b'{"success": true, "data": {"people": [{"email":'
                              b' "jane@acme.com", "phone": "+15125550199"}, {"id": 2}],'
                              b' "total": 3}}',
                              b'{"success": true, "data": {"people": [{"id": 2}],'
                              b' "total": 3}}'),
    # a Hunter-style domain search: a person in a list under an identifier key says more
    # than an entry (a name, a position, her own phone): she is a record and goes alone
    "a-person-in-an-emails-list": (
        b'{"data": {"domain": "acme.com", "emails": [{"value": "jane@acme.com", "type":'
        b' "personal", "confidence": 94, "first_name": "Jane", "last_name": "Doe", "position":'
        b' "CEO", "phone_number": "+15125550199"}, {"value": "bob@acme.com", "first_name":'
        b' "Bob", "last_name": "Roe", "position": "CTO", "phone_number": null}]}}',
        b'{"data": {"domain": "acme.com", "emails": [{"value": "bob@acme.com", "first_name":'
        b' "Bob", "last_name": "Roe", "position": "CTO", "phone_number": null}]}}'),
    "a-person-in-an-emails-list-beside-meta": (
        b'{"data": {"emails": [{"value": "jane@acme.com", "first_name": "Jane"}, {"value":'
        b' "bob@acme.com", "first_name": "Bob"}]}, "meta": {"results": 2}}',
        b'{"data": {"emails": [{"value": "bob@acme.com", "first_name": "Bob"}]}, "meta":'
        b' {"results": 2}}'),
    "the-last-person-in-an-emails-list": (
        b'{"data": {"emails": [{"value": "bob@acme.com", "first_name": "Bob"}, {"value":'
        b' "jane@acme.com", "first_name": "Jane"}], "domain": "acme.com"}, "ok": true}',
        b'{"data": {"emails": [{"value": "bob@acme.com", "first_name": "Bob"}], "domain":'
        b' "acme.com"}, "ok": true}'),
    # an entry describes its identifier only (type/label/domain/verified…): the holder goes
    "a-typed-entry-beside-a-person": (
        b'{"data": {"emails": [{"value": "bob@acme.com", "first_name": "Bob"}, {"value":'
        b' "jane@acme.com", "type": "work", "verified": true}], "phone": "+15125550199"},'
        b' "ok": true}', b'{"ok": true}'),
    # a list of entries the body itself holds: each entry is a record, the others stay
    "entries-in-the-body": (b'{"emails": [{"email": "jane@acme.com", "domain": "acme.com"},'
                            b' {"email": "bob@acme.com", "domain": "acme.com"}]}',
                            b'{"emails": [{"email": "bob@acme.com", "domain": "acme.com"}]}'),
}
# Ambiguous shapes read the way that removes more (deny by default): an envelope of maps
# (`{"data": {"people": {…}}}`) reads `people` as the record, the whole map goes.
CASES["envelope-of-maps"] = (
    b'{"data": {"people": {"p1": {"email": "jane@acme.com"}, "p2": {"id": 2}}}}', b'{"data": {}}'
)


def spliced(body: bytes, compiled: bool) -> bytes:
    found = (finder.json_structure(body, CONTACT_META_KEYS, 512) if compiled
             else structure.reference(body, CONTACT_META_KEYS))
    denied = [i for i in range(len(found)) if found.token(i).value == E]
    out, _ = (splice.spliced if compiled else splice.spliced_reference)(
        found, body, denied, [], "drop")
    return out


@pytest.mark.parametrize(("body", "expected"), CASES.values(), ids=CASES.keys())
def test_drop_removes_the_record(body: bytes, expected: bytes) -> None:
    assert spliced(body, compiled=False) == expected
    assert json.loads(expected) is not None  # still JSON
    assert redact(json.loads(body), {E: RuleType.EMAIL}, "drop")[0] == json.loads(expected)


@pytest.mark.skipif(finder.BACKEND != "native", reason="rules._native is not built")
@pytest.mark.parametrize(("body", "expected"), CASES.values(), ids=CASES.keys())
def test_the_compiled_splice_removes_the_same_record(body: bytes, expected: bytes) -> None:
    assert spliced(body, compiled=True) == expected


def test_the_scan_says_which_objects_are_objects_of_objects() -> None:
    found = jsonspan.scan(b'{"a": {"p": {"q": {}}, "r": {"x": 1}}, "b": {}, "c": [{}]}')
    assert [n.keyed for n in found.nodes] == [0, 2, 1, 0, 0, 0, 0, 0]
