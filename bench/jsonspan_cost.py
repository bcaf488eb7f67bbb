"""CPU cost of the byte-level JSON scan (rules/detect/jsonspan.py) against today's parse + walk.

`scan` is the pure-Python reference, `native` the compiled scan rules/detect/finder.py selects
(`rules._native.json_scan`, every token as a Python object; the reference again when the
extension is not built), `flat` the flat contract the filter uses (`finder.json_structure` and
its `sites()`: Python objects only for the tokens that may hold an identifier).

    .venv/bin/python bench/jsonspan_cost.py [--repeat 2000]

Payloads are bench/bench.py's task documents (8 and 200 contacts, orjson-serialised like the
benchmark's upstream). Figures are µs per body, the best of 5 rounds (warm caches: the walk's
normaliser caches hold every value, as they do for repeated contacts under load).
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from bench.data import contacts, task_doc
from rules.detect import finder
from rules.detect import match as flt
from rules.detect.jsonspan import scan
from rules.detect.splice import splice


def best_us(fn: Callable[[], object], repeat: int) -> float:
    return min(timeit.repeat(fn, number=repeat, repeat=5)) / repeat * 1e6


def row(name: str, count: int, repeat: int) -> str:
    meta = flt.CONTACT_META_KEYS
    body = orjson.dumps(task_doc("t1", contacts(1, count, "acme.com")))
    found = scan(body, meta)
    flt.collect(orjson.loads(body), "US")  # warm the normaliser caches
    emails = [t for t in found.tokens if t.key == "email"]
    denied = emails[::8]  # one person in eight: strip their email contact point
    parse = best_us(lambda: orjson.loads(body), repeat)
    walk = best_us(lambda: flt.collect(orjson.loads(body), "US"), repeat)
    tokens = best_us(lambda: scan(body, meta), repeat)
    native = best_us(lambda: finder.scan_json(body, meta, 512), repeat)
    flat = best_us(lambda: finder.json_structure(body, meta, 512).sites(), repeat)
    out = best_us(lambda: splice(body, found, denied, "strip"), repeat)
    return (f"{name:<12}{len(body):>8}{len(found.tokens):>8}{parse:>10.1f}{walk:>10.1f}"
            f"{tokens:>10.1f}{native:>10.1f}{flat:>10.1f}{out:>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=500, help="bodies per round (8-contact)")
    args = parser.parse_args()
    print(f"{'payload':<12}{'bytes':>8}{'tokens':>8}{'orjson':>10}{'+collect':>10}{'scan':>10}"
          f"{'native':>10}{'flat':>10}{'splice':>10}")
    for name, count in (("8-contact", 8), ("200-contact", 200)):
        print(row(name, count, max(1, args.repeat * 8 // count)))


if __name__ == "__main__":
    main()
