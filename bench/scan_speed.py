"""How many MB/s the text scanner reads: a 93 kB Openmart-like JSON (200 contacts), 1 MB of prose.

Not a test: `python bench/scan_speed.py` prints the figures (best of five, caches warm and
cold) for the report; the machine is shared, so read them as orders of magnitude.
"""

from __future__ import annotations

import json
import random
import time

from rules import normalize
from rules.phonescan import _readings
from rules.scan import scan


def openmart_json(contacts: int = 200) -> str:
    rng = random.Random(1)
    people = [
        {
            "id": f"p_{i:06d}", "name": f"Person {i}", "title": "Head of Sales",
            "email": f"person{i}@company{i % 37}.com", "verified": True,
            "phones": [{"phone_number": f"+1 512 555 {i:04d}", "line_type": "mobile"}],
            "linkedin_url": f"https://www.linkedin.com/in/person-{i}",
            "company": {"name": f"Company {i % 37}", "domain": f"company{i % 37}.com",
                        "employees": rng.randint(10, 5000), "revenue": rng.randint(10**5, 10**9),
                        "lat": 30.2672, "lng": -97.7431, "founded": 2001},
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


def rate(text: str, cold: bool) -> float:
    best = float("inf")
    for _ in range(5):
        if cold:
            for cached in (normalize.email, normalize.phone, normalize.linkedin, _readings):
                cached.cache_clear()
        start = time.perf_counter()
        scan(text, "US")
        best = min(best, time.perf_counter() - start)
    return len(text.encode()) / best / 1e6


if __name__ == "__main__":
    doc, text = openmart_json(), prose()
    print(f"JSON {len(doc.encode()) / 1000:.0f} kB, {len(scan(doc, 'US'))} candidates")
    for name, body in (("JSON 200 contacts", doc), ("prose 1 MB", text)):
        print(f"{name}: {rate(body, False):.2f} MB/s warm, {rate(body, True):.2f} MB/s cold")
