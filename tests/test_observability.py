"""deploy/observability: alert rules pass promtool's check and unit tests, and every PromQL
expression (alerts and dashboard) names only metrics a running proxy and consumer export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from proxy import metrics
from proxy.metrics import ReadinessMetric
from proxy.settings import Settings
from tests.harness import eventually, fake_upstream, running_proxy
from tests.services import REPO_ROOT

HERE = REPO_ROOT / "deploy" / "observability"
ALERTS = HERE / "alerts.yaml"
ALERT_TESTS = HERE / "alerts.test.yaml"
DASHBOARD = HERE / "dashboard.json"

# Metrics other branches are adding right now: allowed in alerts and dashboard although this
# branch does not export them yet. The lead empties this set once those branches are merged
# (the live test below fails as soon as one of them is exported, to say so).
PENDING: set[str] = set()  # metrics queried before they are exported: none now

GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$job": ".*"}
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right"}


def promtool(*args: str, cwd: Path = HERE) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:  # scripts/test installs it (Debian's prometheus package)
        pytest.fail("promtool not found: run scripts/test, which installs Debian's prometheus")
    return subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard, Grafana's variables filled in."""
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            match = re.fullmatch(r"label_values\(([^,]+),\s*\w+\)", var["query"]["query"])
            assert match, f"variable {var['name']}: only label_values(metric, label) is used"
            exprs.append(match.group(1))
    for name, value in GRAFANA_VARIABLES.items():
        exprs = [e.replace(name, value) for e in exprs]
    return exprs


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions, keywords,
    label names (inside {} or by (...)), strings or durations."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = _GROUPING.sub(" ", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if expr[match.end() :].lstrip().startswith("(") or match.group() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def exported_names(exposition: str) -> set[str]:
    """Series names /metrics can carry, from its TYPE lines (labelled metrics with no child
    yet still declare their family)."""
    suffixes = {"counter": ("", "_created"), "gauge": ("",),
                "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("", "_sum", "_count", "_created")}
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            base = name.removesuffix("_total") if kind == "counter" else name
            names |= {name} | {base + s for s in suffixes.get(kind, ("",)) if s}
    return names


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", ALERT_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_shown_firing_by_a_unit_test() -> None:
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert fired == {rule["alert"] for rule in alert_rules()}


def test_dashboard_expressions_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses them as recording rules: a typo in a panel fails here, not in Grafana."""
    queries = dashboard_queries()
    rules = [{"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(queries)]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_metric_names_are_extracted_from_promql() -> None:
    expr = ('histogram_quantile(0.99, sum by (job, le) (rate(a_bucket{status=~"5.."}[5m])))'
            " / on (job) group_left b_total > bool 0.5 and max without (x) (c)")
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


async def test_every_queried_metric_is_exported_by_a_live_proxy_and_consumer(
    redis_url: str, kafka_bootstrap: str
) -> None:
    queried = {n for e in dashboard_queries() for n in metric_names(e)}
    queried |= {n for rule in alert_rules() for n in metric_names(rule["expr"])}
    assert all(n.startswith("denyproxy_") for n in queried), queried
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, kafka=kafka_bootstrap,
                            topic=f"obs-{uuid.uuid4().hex[:8]}")
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as http:
            await eventually(lambda: _ready(http, proxy.admin), "the proxy's consumer ready")
            async with http.get(f"{proxy.url}/api/v2/credit-balance",
                                headers={"X-API-Key": "obs"}) as r:
                assert r.status == 200
            async with http.get(f"{proxy.admin}/metrics") as r:
                exposition = await r.text()
    exported = exported_names(exposition)
    assert sorted(queried - exported - PENDING) == []
    assert sorted(PENDING & exported) == [], "exported now: remove these from PENDING"
    assert 'denyproxy_http_requests_total{method="GET",status="200"}' in exposition
    assert "denyproxy_ready 1.0" in exposition


async def _ready(http: aiohttp.ClientSession, admin: str) -> bool:
    async with http.get(f"{admin}/readyz") as r:
        return r.status == 200


def test_readiness_changes_count_changes_not_probes() -> None:
    readiness = ReadinessMetric()
    before = metrics.READINESS_CHANGES._value.get()
    for ready in (True, True, False, False, False, True, True):
        readiness.observe(ready)
    assert metrics.READINESS_CHANGES._value.get() - before == 2
    assert metrics.READY._value.get() == 1
