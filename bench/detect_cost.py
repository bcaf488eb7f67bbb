"""CPU µs (process time) per filtered body through the pure response pipeline, no HTTP or store.

    .venv/bin/python bench/detect_cost.py [--repeat 400]

`before`: main's path before the deny-by-default work (orjson parse → tree walk → lookup
stub → redact → orjson dumps). `after`: `rules.detect.pipeline` (flat structural scan → sites
+ text scanner → lookup stub → splice → verify around the joins), when that module exists,
with the JSON scan rules/detect/finder.py selects (`after`: the compiled one when built) and
with the pure-Python reference of the same contract (`after-py`, rules/detect/structure.py).
The lookup stub intersects the query with an in-memory rule set (one contact in eight denied
by email). Payloads: 8 and 200 contacts, and `detect` (bench/data.py `detect_row`: 8 contacts
whose identifiers also stand in free text, unknown keys, object keys, typed points and
numbers). Figures are the best of 5 rounds of CPU time (a shared box's other processes do not
count), warm (repeated contacts) and cold (per-value caches cleared; constant tables such as
the public suffix list stay loaded).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import timeit
from collections.abc import Callable
from functools import _lru_cache_wrapper
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# E402 below: the imports need the repo root on sys.path first (run as a script)
import orjson  # noqa: E402

from bench.data import contacts, detect_row, task_doc  # noqa: E402
from rules.detect import finder  # noqa: E402
from rules.detect import match as flt  # noqa: E402
from rules.model import Lookup, RuleType  # noqa: E402

REGION = "US"


def stub(query: Lookup, rules: dict[RuleType, set[str]]) -> dict[RuleType, set[str]]:
    return {t: set(values) & rules.get(t, set()) for t, values in query.items()}


def before(body: bytes, rules: dict[RuleType, set[str]]) -> bytes:
    doc = orjson.loads(body)
    found = flt.collect(doc, REGION)
    denied = found.denied(stub(found.query(), rules))
    if not denied:
        return body
    out, _ = flt.redact(doc, denied, "strip")
    return orjson.dumps(out)


def after(body: bytes, rules: dict[RuleType, set[str]]) -> bytes:
    from rules.detect import pipeline

    inspection = pipeline.inspect(body, REGION)
    answer = stub(inspection.query(), rules)
    result = pipeline.filtered(inspection, answer, "strip")
    pipeline.verify_filtered(inspection, result, REGION, answer)
    return result.body


def after_py(body: bytes, rules: dict[RuleType, set[str]]) -> bytes:
    """`after` with the pure-Python reference (rules/detect/structure.py) in the pipeline."""
    from rules.detect import structure

    compiled = finder.json_structure  # the name the pipeline calls, swapped for this body only
    finder.json_structure = structure.reference
    try:
        return after(body, rules)
    finally:
        finder.json_structure = compiled


def clear_caches() -> None:
    finder.forget()  # the compiled scan's memo of normal forms
    for module in list(sys.modules.values()):
        if module is None or not (module.__name__.startswith("rules")):
            continue
        for value in vars(module).values():
            if isinstance(value, _lru_cache_wrapper) and _per_value(value):
                value.cache_clear()


def _per_value(cached: _lru_cache_wrapper[object]) -> bool:
    """A cache of values a request brings (not a constant table loaded once: the public suffix
    list, cleanco's legal forms, `maxsize=1`; reparsing those is no cost a request pays)."""
    maxsize = cached.cache_parameters()["maxsize"]
    return maxsize is None or maxsize > 1


def best_us(fn: Callable[[], object], repeat: int, cold: bool) -> float:
    def once() -> None:
        if cold:
            clear_caches()
        fn()

    # CPU time of this process: on a shared box, wall time counts the other processes too
    rounds = timeit.repeat(once, number=repeat, repeat=5, timer=time.process_time)
    return min(rounds) / repeat * 1e6


def row(name: str, count: int, repeat: int, path: Callable[..., bytes]) -> str:
    people = contacts(1, count, "acme.com")
    doc = task_doc("t1", [detect_row(p) for p in people] if name == "detect" else people)
    body = orjson.dumps(doc)
    emails = [p["email"]["email"].lower() for p in doc["data"]][::8]
    rules = {RuleType.EMAIL: set(emails)}
    assert path(body, rules) != body  # something is filtered
    warm = best_us(lambda: path(body, rules), repeat, cold=False)
    cold = best_us(lambda: path(body, rules), max(1, repeat // 10), cold=True)
    return f"{name:<12}{len(body):>8}{warm:>12.0f}{cold:>12.0f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=400, help="bodies per round (8-contact)")
    args = parser.parse_args()
    have_after = importlib.util.find_spec("rules.detect.pipeline") is not None
    paths = [("before", before)] + (
        [("after", after), ("after-py", after_py)] if have_after else []
    )
    for label, path in paths:
        print(f"{label}: {'payload':<12}{'bytes':>8}{'warm µs':>12}{'cold µs':>12}")
        for name, count in (("8-contact", 8), ("200-contact", 200), ("detect", 8)):
            print("        " + row(name, count, max(1, args.repeat * 8 // count), path))


if __name__ == "__main__":
    main()
