"""bench's detection workload (bench/data.py `detect_row`): what it plants, the JSON filter finds.

The payload exists to measure the cost of deny by default; it is only a fair measurement if
the filter really has to find every planted copy. So: with an email and a phone of one
contact denied, no copy of either is left in the output (free text, unknown keys, object
keys, typed points, a phone written as a number), on both implementations of the structural
scan, and the other contacts' values stay.
"""

from __future__ import annotations

import orjson
import pytest

from bench.data import contacts, detect_row, task_doc
from rules.detect import finder, pipeline, structure
from rules.model import RuleType

REGION = "US"


@pytest.fixture(params=["compiled", "reference"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "reference":
        monkeypatch.setattr(finder, "json_structure", structure.reference)
    elif finder.BACKEND != "native":
        pytest.skip("rules._native is not built")
    return str(request.param)


def test_every_planted_copy_of_a_denied_contact_is_removed(backend: str) -> None:
    rows = [detect_row(r) for r in contacts(1, 8, "acme.com")]
    body = orjson.dumps(task_doc("t1", rows))
    email, phone = rows[2]["email"]["email"], rows[2]["phones"][0]["phone_number"]
    kept_email = rows[3]["email"]["email"]
    inspection = pipeline.inspect(body, REGION)
    answer = {RuleType.EMAIL: {email}, RuleType.PHONE: {phone}}
    result = pipeline.filtered(inspection, answer, "strip")
    out = result.body.decode()
    assert email not in out and phone not in out and phone.lstrip("+") not in out
    assert out.count(kept_email) == body.decode().count(kept_email) > 4
    verdict = pipeline.verify(result.body, REGION, answer, inspection.query())
    assert not verdict.leaked
    orjson.loads(result.body)  # still JSON


def test_the_workload_holds_more_sites_than_the_plain_payload() -> None:
    plain = contacts(1, 8, "acme.com")
    detect = [detect_row(r) for r in plain]
    sites = [
        len(finder.json_structure(orjson.dumps(task_doc("t", rows)), frozenset(), 512).sites())
        for rows in (plain, detect)
    ]
    assert sites[1] > 2 * sites[0]
