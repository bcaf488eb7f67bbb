"""bench's named lists cell (issue #13): the lists it writes, the wrk workload that asks for
them, the report row comparing it with `small`, and the lists loaded into a real Redis."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bench import report
from bench.data import identifiers, lists_denied, make_data, make_docs
from bench.named_lists import LISTS_KEY, make_lists
from bench.options import parse_args
from bench.results import Findings, Run
from bench.wrk import Workload
from rules.model import (
    DEFAULT_REGION,
    MAX_VALUES_PER_CHANGE,
    ListChange,
    RuleChange,
    RuleType,
    tenant_of,
)
from rules.normalize import normalize_all
from rules.store import RedisStore
from tests.test_bench_table import run, table_blocks


def payload_denied() -> dict[str, RuleType]:
    docs, small, *_ = make_docs(0)
    return lists_denied(docs, small)


def entries_of(batch: list[ListChange | RuleChange]) -> list[str]:
    return [v for c in batch if isinstance(c, RuleChange) for v in c.values]


def test_each_list_has_exactly_the_entries_asked_and_they_are_distinct() -> None:
    lists = make_lists(payload_denied(), 3_000)
    assert lists.count == 5
    every = [entries_of(batch) for batch in lists.batches]
    assert [len(e) for e in every] == [3_000] * 5
    assert len({v for e in every for v in e}) == 15_000


def test_the_lists_deny_the_payload_values_spread_over_every_list() -> None:
    denied = payload_denied()
    assert denied  # about 1 in 8 of the 8-contact results' values
    lists = make_lists(denied, 500)
    normal = {t: set(normalize_all(t, [v for v, vt in denied.items() if vt == t],
                                   DEFAULT_REGION).values) for t in set(denied.values())}
    holding = [{c.type for c in batch if isinstance(c, RuleChange)
                and normal.get(c.type, set()) & set(c.values)} for batch in lists.batches]
    assert all(holding)  # every list holds some of them
    listed = {v for batch in lists.batches for v in entries_of(batch)}
    assert set().union(*normal.values()) <= listed
    assert lists.denied_raw == set(denied)


def test_the_filler_entries_match_no_payload_value() -> None:
    docs, *_ = make_docs(0)
    payload: set[str] = set()
    for doc in docs.values():
        for value, rule_type in identifiers(doc).items():
            payload |= set(normalize_all(rule_type, [value], DEFAULT_REGION).values)
    lists = make_lists({}, 2_000)
    assert not payload & {v for batch in lists.batches for v in entries_of(batch)}


def test_each_list_is_created_filled_in_changes_the_writer_accepts_and_assigned() -> None:
    lists = make_lists(payload_denied(), 25_000, count=2)
    for batch in lists.batches:
        first, last = batch[0], batch[-1]
        assert isinstance(first, ListChange) and first.op == "create"
        assert isinstance(last, ListChange) and last.op == "assign"
        assert last.tenants == (tenant_of(LISTS_KEY),) and last.list_id == first.list_id
        adds = [c for c in batch if isinstance(c, RuleChange)]
        assert all(c.tenant == f"list:{first.list_id}" for c in adds)
        assert max(len(c.values) for c in adds) <= MAX_VALUES_PER_CHANGE


def test_the_lists_payload_asks_the_small_paths_with_the_lists_key_only(tmp_path: Path) -> None:
    data = make_data(tmp_path, filler=10, unique_docs=2, list_entries=100)
    load = Workload.write(tmp_path, data)
    argv = load.argv("http://x", "lists", 2, 16, 1)
    paths, keys = Path(argv[-3]), Path(argv[-2])
    assert paths.read_text().split() == data.small
    assert keys.read_text().split() == [LISTS_KEY]
    assert Path(load.argv("http://x", "small", 2, 16, 1)[-2]).read_text().split() != [LISTS_KEY]


def test_quick_lists_are_smaller_and_0_turns_them_off() -> None:
    assert parse_args([]).list_entries == 100_000
    assert parse_args(["--quick"]).list_entries == 10_000
    assert parse_args(["--quick", "--list-entries", "0"]).list_entries == 0


def lists_run(rps: float, p99: float, cpu: float) -> Run:
    r = run(6, "lists", 16, rps=rps)
    r.p99_ms, r.cpu_us_req = p99, cpu
    return r


def test_the_lists_row_compares_lists_with_small() -> None:
    small = lists_run(1000.0, 2.0, 500.0)
    rows = report.lists_rows(small, lists_run(800.0, 3.0, 600.0), "yes (9 removed)")
    assert rows[1][-1] == "yes (9 removed)"
    assert rows[2][:5] == ["lists ÷ small", "0.80×", "", "1.50×", "1.20×"]


def test_the_report_has_the_lists_table_only_with_a_lists_cell(tmp_path: Path) -> None:
    data = make_data(tmp_path, filler=10, unique_docs=0, list_entries=100)
    opts = parse_args(["--quick", "--results", str(tmp_path)])

    def render(runs: list[Run]) -> str:
        found = Findings(runs, {(6, 1): "yes"}, lists_check="yes (7 removed)")
        return report.render(report.Context(opts, found, data, dict.fromkeys((
            "nproc", "cpu", "memory", "kernel", "python", "aiohttp", "nginx", "wrk", "redis"),
            "?"), dt.datetime(2026, 12, 1, 12, 0), 60.0, ["--quick"]))

    without = render([run(6, "small", 16)])
    text = render([run(6, "small", 16), lists_run(800.0, 3.0, 600.0)])
    assert "Named lists" not in without and "## Named lists: a key with 5 lists of 100" in text
    assert len(table_blocks(text)) == len(table_blocks(without)) + 1
    assert "| lists ÷ small | 0.80× |" in text and "yes (7 removed)" in text


async def test_the_lists_key_is_denied_its_payload_values_through_redis(redis_url: str) -> None:
    denied = payload_denied()
    lists = make_lists(denied, 1_000)
    store = RedisStore.from_url(redis_url, timeout=30.0)
    try:
        for batch in lists.batches:  # fixed list ids: applying twice changes nothing
            await store.apply(batch)
        await store.mark_initialised()
        emails = normalize_all(RuleType.EMAIL, [v for v, t in denied.items()
                                                if t == RuleType.EMAIL], DEFAULT_REGION).values
        query = {RuleType.EMAIL: [*emails, "nobody@acme0.com"]}
        found = await store.lookup(tenant_of(LISTS_KEY), query)
        other = await store.lookup(tenant_of("bench-key-0"), query)
    finally:
        await store.aclose()
    assert emails and found[RuleType.EMAIL] == set(emails)
    assert not other.get(RuleType.EMAIL)
