"""How many MB/s the text scanner reads: a 93 kB Openmart-like JSON (200 contacts), 1 MB of prose.

Not a test: `python bench/scan_speed.py` prints, for each finder backend (the compiled core
rules._native when built, and the pure-Python reference), the MB/s of finding alone and of
`scan.scan_bytes()` end to end (finding + normalising), caches warm and cold; best of five. The
machine is shared, so read them as orders of magnitude.
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import Callable

from rules.detect import finder, readings, scan, textfind

Finders = tuple[Callable[[str], list[textfind.Raw]], Callable[[bytes], list[textfind.Raw]]]


def backends() -> dict[str, Finders]:
    found: dict[str, Finders] = {"python": (textfind.find_text, textfind.find_bytes)}
    if finder.BACKEND == "native":
        found["native"] = (finder.find_text, finder.find_bytes)
    return found


def openmart_json(contacts: int = 200) -> str:
    rng = random.Random(1)
    people = [
        {
            "id": f"p_{i:06d}",
            "name": f"Person {i}",
            "title": "Head of Sales",
            "email": f"person{i}@company{i % 37}.com",
            "verified": True,
            "phones": [{"phone_number": f"+1 512 555 {i:04d}", "line_type": "mobile"}],
            "linkedin_url": f"https://www.linkedin.com/in/person-{i}",
            "company": {
                "name": f"Company {i % 37}",
                "domain": f"company{i % 37}.com",
                "employees": rng.randint(10, 5000),
                "revenue": rng.randint(10**5, 10**9),
                "lat": 30.2672,
                "lng": -97.7431,
                "founded": 2001,
            },
            "bio": f"Reach me at person{i}@company{i % 37}.com or (512) 555-{i:04d}.",
        }
        for i in range(contacts)
    ]
    return json.dumps({"data": people, "total": contacts})


def prose(size: int = 1_000_000) -> str:
    words = ["the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for",
             "on", "are", "with", "as", "I", "his", "they"]
    rng = random.Random(2)
    out: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(words) if rng.random() > 0.002 else "mail jane.doe@example.org today"
        out.append(word)
        length += len(word) + 1
    return " ".join(out)[:size]


def best_seconds(work: Callable[[], object], cold: bool) -> float:
    best = float("inf")
    for _ in range(5):
        if cold:
            readings.clear_caches()
            finder.forget()
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def report(name: str, body: bytes) -> None:
    fused = finder.FUSED
    for backend, (find_text, find_bytes) in backends().items():
        finder.find_text, finder.find_bytes = find_text, find_bytes
        finder.FUSED = fused if backend == "native" else None  # the compiled scan, or none
        mb = len(body) / 1e6
        find = mb / best_seconds(functools.partial(find_bytes, body), cold=False)
        warm = mb / best_seconds(lambda: scan.scan_bytes(body, "US"), cold=False)
        cold = mb / best_seconds(lambda: scan.scan_bytes(body, "US"), cold=True)
        print(f"| {name} | {backend} | {find:8.2f} | {warm:8.2f} | {cold:8.2f} |")


if __name__ == "__main__":
    doc, text = openmart_json().encode(), prose().encode()
    print(
        f"JSON {len(doc) / 1000:.0f} kB, {len(scan.scan_bytes(doc, 'US'))} candidates; "
        f"backend in use: {finder.BACKEND}"
    )
    print("| body | finder | find MB/s | scan warm MB/s | scan cold MB/s |")
    print("|---|---|--:|--:|--:|")
    for name, body in (("JSON 200 contacts", doc), ("prose 1 MB", text)):
        report(name, body)
