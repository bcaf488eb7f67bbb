"""A CSV of mixed opt-out rows (emails, phones, domains, LinkedIn profiles, garbage) of any
size that is a multiple of 10,000, with the counts an import of it must report.

Kept free of pytest: tests/test_import.py imports 100,000 rows, bench/import_rows.py the
million (the figure a release is measured at).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

GARBAGE_SAMPLES = ('""', "N/A", "not a value", "12 34", "@@", "foo@", "x", "-")
KINDS = ["email"] * 4 + ["phone"] * 2 + ["domain"] * 2 + ["linkedin", "garbage"]
"""Every 10 rows: 4 emails, 2 phones, 2 domains, 1 profile, 1 garbage row."""

_AREA_CODES = (201, 202, 203, 205, 206, 207, 208, 209, 212, 213, 214, 215, 216, 217, 218, 219,
               224, 225)
"""Assigned US area codes: a phone rule must be a valid number."""


@dataclass(frozen=True)
class Mix:
    """What `rows` mixed rows hold: distinct values per type and the duplicates among them
    (an email in capitals with a space, a phone written the national way)."""

    rows: int

    def __post_init__(self) -> None:
        if self.rows % 10_000 or not 0 < self.rows <= 1_000_000:
            raise ValueError("rows: a multiple of 10,000 up to 1,000,000")

    @property
    def emails(self) -> int:
        return self.rows * 35 // 100

    @property
    def email_dupes(self) -> int:
        return self.rows * 5 // 100

    @property
    def phones(self) -> int:
        return self.rows * 18 // 100

    @property
    def phone_dupes(self) -> int:
        return self.rows * 2 // 100

    @property
    def domains(self) -> int:
        return self.rows * 2 // 10

    @property
    def linkedins(self) -> int:
        return self.rows // 10

    @property
    def garbage(self) -> int:
        return self.rows // 10


def letters(n: int) -> str:
    """A digit-free name per number, so no domain or profile looks like a phone."""
    out = []
    while True:
        n, r = divmod(n, 26)
        out.append(chr(97 + r))
        if n == 0:
            return "".join(out)


def _email(j: int, mix: Mix) -> str:
    if j < mix.emails:
        return f"{letters(j)}.{j}@corp{j % 50}.example.com"
    k = j - mix.emails
    return f" {letters(k).upper()}.{k}@CORP{k % 50}.example.com"


def _phone(j: int, mix: Mix) -> str:
    k = j if j < mix.phones else j - mix.phones
    area, line = _AREA_CODES[k // 10_000], k % 10_000
    return f"+1 {area} 555 {line:04d}" if j < mix.phones else f"({area}) 555-{line:04d}"


def _row(kind: str, j: int, mix: Mix) -> str:
    if kind == "email":
        return _email(j, mix)
    if kind == "phone":
        return _phone(j, mix)
    if kind == "domain":
        return f"www.{letters(j)}.example.org" if j % 2 else f"https://{letters(j)}.example.org/"
    if kind == "linkedin":
        return f"https://www.linkedin.com/in/{letters(j)}-x/"
    return GARBAGE_SAMPLES[j % len(GARBAGE_SAMPLES)]


def write_mixed(path: Path, mix: Mix) -> set[int]:
    """`mix.rows` mixed rows (plus a header); returns the line numbers of the garbage rows."""
    counters = dict.fromkeys(("email", "phone", "domain", "linkedin", "garbage"), 0)
    garbage_lines: set[int] = set()
    with path.open("w") as out:
        out.write("value\n")
        for i in range(mix.rows):
            kind = KINDS[i % 10]
            j = counters[kind]
            counters[kind] += 1
            out.write(_row(kind, j, mix) + "\n")
            if kind == "garbage":
                garbage_lines.add(i + 2)
    return garbage_lines


def expected_summary(mix: Mix) -> list[str]:
    """Lines `rules import` must print for `mix` (every value sent, in events of at most
    10,000 values of one type)."""
    emails, phones = mix.emails + mix.email_dupes, mix.phones + mix.phone_dupes
    per_type = (emails, phones, mix.domains, mix.linkedins)
    published, events = sum(per_type), sum(-(-n // 10_000) for n in per_type)
    return [
        f"{mix.rows:,} rows",
        "header row skipped",
        f"published: {published:,} values in {events} add events "
        f"(email {emails:,}, phone {phones:,}, domain {mix.domains:,}, "
        f"linkedin {mix.linkedins:,})",
        f"rejected:  {mix.garbage:,} rows",
    ]
