"""TLS to the upstream: certificates are always verified, never a silent downgrade.

There is deliberately no switch to turn verification off. A private CA (`--upstream-ca-file`)
replaces the system trust store rather than adding to it: an upstream behind a private CA
should not also be reachable with any public certificate for its name.
"""

from __future__ import annotations

import ssl

import aiohttp

NAME_MISMATCH = (62, 64)
"""OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH."""
CERT_EXPIRED = 10
"""OpenSSL's X509_V_ERR_CERT_HAS_EXPIRED."""


def upstream_ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """Hostname checked, chain verified (CERT_REQUIRED), TLS 1.2 or newer."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def readable_ca_file(value: str) -> str:
    """A CA bundle that exists and parses, checked at start-up rather than at the first request."""
    try:
        ssl.create_default_context(cafile=value)
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"not a PEM CA bundle ({type(exc).__name__})") from None
    return value


def tls_problem(exc: aiohttp.ClientSSLError) -> str:
    """The `detail` of a TLS failure aiohttp reports (doctor.py): never a secret."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return certificate_problem(exc.certificate_error)
    return "upstream TLS handshake failed"


def certificate_problem(error: Exception) -> str:
    """What is wrong with the upstream's certificate (the proxy's client and doctor.py)."""
    code = getattr(error, "verify_code", None)
    if code in NAME_MISMATCH:
        return "upstream TLS certificate does not match the upstream host"
    if code == CERT_EXPIRED:
        return "upstream TLS certificate expired"
    reason = getattr(error, "verify_message", None)
    return "upstream TLS certificate not trusted" + (f" ({reason})" if reason else "")
