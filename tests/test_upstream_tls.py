"""Upstream HTTPS: certificates are always verified; a private CA comes from --upstream-ca-file.

The fake Openmart is served over TLS with certificates made at test time. A certificate the
proxy cannot trust is a 502 with a detail, and the upstream never sees the request: there is
no fallback to an unverified connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from proxy.settings import Settings, SettingsError, from_sources
from tests.harness import fake_upstream, running_proxy
from tests.tls_certs import CertificateAuthority, Leaf

KEY = {"X-API-Key": "test-key-tls"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | Leaf]:
    d = tmp_path_factory.mktemp("upstream-tls")
    ca = CertificateAuthority.create(d / "ca")
    rogue = CertificateAuthority.create(d / "rogue", "someone else's CA")
    return {
        "ca": ca.cert,
        "rogue_ca": rogue.cert,
        "good": ca.issue(d / "ca", "127.0.0.1", "localhost"),
        "other_host": ca.issue(d / "ca", "other.example"),
    }


async def _get(settings: Settings, path: str) -> tuple[int, dict[str, str], bytes]:
    async with (
        running_proxy(settings) as proxy,
        aiohttp.ClientSession() as client,
        client.get(f"{proxy.url}{path}", headers=KEY) as r,
    ):
        return r.status, dict(r.headers), await r.read()


@pytest.fixture
async def tls_upstream(certs: dict[str, Path | Leaf]) -> AsyncIterator[tuple[object, str]]:
    leaf = certs["good"]
    assert isinstance(leaf, Leaf)
    async with fake_upstream(ssl_context=leaf.server_context()) as (fake, url):
        yield fake, url


async def test_upstream_trusted_through_the_ca_file_is_forwarded_and_filtered(
    certs, tls_upstream
) -> None:
    fake, url = tls_upstream
    assert url.startswith("https://")
    settings = Settings(upstream=url, upstream_ca_file=str(certs["ca"]))
    status, headers, body = await _get(settings, "/api/v2/credit-balance")
    assert status == 200, body
    assert headers["X-Denyproxy-Suppressed"] == "0"  # went through the filtered path
    assert [seen.path_qs for seen in fake.requests] == ["/api/v2/credit-balance"]


@pytest.mark.parametrize("ca", [None, "rogue_ca"], ids=["system-trust", "another-ca"])
async def test_untrusted_certificate_is_502_and_nothing_reaches_the_upstream(
    certs, tls_upstream, ca
) -> None:
    fake, url = tls_upstream
    settings = Settings(upstream=url, upstream_ca_file=str(certs[ca]) if ca else None)
    status, headers, body = await _get(settings, "/api/v2/credit-balance")
    assert status == 502
    assert headers["Content-Type"].startswith("application/json")
    assert orjson.loads(body)["detail"].startswith("upstream TLS certificate not trusted (")
    assert fake.requests == []  # no second, unverified attempt


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_certificate_for_another_host_is_502(certs, host: str) -> None:
    leaf = certs["other_host"]
    async with fake_upstream(ssl_context=leaf.server_context()) as (fake, url):
        url = url.replace("127.0.0.1", host)
        settings = Settings(upstream=url, upstream_ca_file=str(certs["ca"]))
        status, _, body = await _get(settings, "/api/v2/credit-balance")
    assert status == 502
    assert orjson.loads(body) == {
        "detail": "upstream TLS certificate does not match the upstream host"
    }
    assert fake.requests == []


def test_ca_file_comes_from_flag_or_environment(certs) -> None:
    path = str(certs["ca"])
    env = {"DENYPROXY_UPSTREAM_CA_FILE": path}
    assert from_sources({}, env).upstream_ca_file == path
    assert from_sources({"upstream_ca_file": path}, {}).upstream_ca_file == path
    assert from_sources({}, {}).upstream_ca_file is None


def test_missing_or_unreadable_ca_file_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"DENYPROXY_UPSTREAM_CA_FILE=.*no such file"):
        from_sources({}, {"DENYPROXY_UPSTREAM_CA_FILE": str(tmp_path / "absent.pem")})
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(SettingsError, match=r"--upstream-ca-file=.*not a PEM CA bundle"):
        from_sources({"upstream_ca_file": str(junk)}, {})
