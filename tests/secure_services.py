"""Secured variants of the test services: Kafka over SASL_SSL (SCRAM-SHA-512, ACLs) and Redis
over TLS with ACL users, with a private CA made at test time by the `openssl` CLI.

Each is started once per session (tests/secure_fixtures.py); the plaintext ones stay as they are.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from rules.kafka import KafkaOptions, dead_letter_topic
from tests.services import KafkaBroker, ServiceError, _spawn, _terminate, free_port, tail

SCRAM = "SCRAM-SHA-512"
ACL_TOOL = Path(__file__).parent / "java" / "KafkaAcls.java"


def _openssl(*args: str, cwd: Path) -> None:
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise ServiceError(f"openssl {args[0]} failed:\n{res.stderr}")


@dataclass(frozen=True)
class TestCA:
    """A throw-away CA and one server certificate for 127.0.0.1/localhost, signed by it."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def cert(self) -> Path:
        return self.dir / "server.pem"

    @property
    def key(self) -> Path:
        """PKCS#8, unencrypted: what Kafka's PEM keystore and Redis both read."""
        return self.dir / "server.key"

    @property
    def keystore(self) -> Path:
        """Kafka's PEM keystore: the private key, then the certificate chain."""
        return self.dir / "server-keystore.pem"

    @classmethod
    def make(cls, directory: Path) -> TestCA:
        directory.mkdir(parents=True, exist_ok=True)
        ca = cls(directory)
        ec = ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
        _openssl("genpkey", *ec, "-out", "ca.key", cwd=directory)
        _openssl("req", "-x509", "-new", "-key", "ca.key", "-out", "ca.pem", "-days", "2",
                 "-subj", "/CN=denyproxy test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
        _openssl("genpkey", *ec, "-out", "server.key", cwd=directory)
        _openssl("req", "-new", "-key", "server.key", "-out", "server.csr",
                 "-subj", "/CN=localhost", cwd=directory)
        (directory / "server.ext").write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n"
        )
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", "server.pem", "-days", "2",
                 "-extfile", "server.ext", cwd=directory)
        ca.keystore.write_text(ca.key.read_text() + ca.cert.read_text())
        return ca


# --------------------------------------------------------------------------------------- Kafka


@dataclass
class SecureKafkaBroker(KafkaBroker):
    """KRaft broker whose only client listener is SASL_SSL (SCRAM-SHA-512), with the
    StandardAuthorizer denying everything no ACL allows. `admin` is the super user; the
    CONTROLLER listener stays plaintext on 127.0.0.1 (the broker's own path to its controller,
    never advertised)."""

    tls: TestCA | None = None
    users: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("admin", "publisher", "consumer", "stranger"):
            self.users.setdefault(name, secrets.token_urlsafe(12))

    def options(self, user: str, password: str | None = None) -> KafkaOptions:
        """Client options for one of the SCRAM users (a wrong `password` to test failures)."""
        assert self.tls is not None
        return KafkaOptions(
            self.bootstrap, security_protocol="SASL_SSL", sasl_mechanism=SCRAM,
            sasl_username=user, sasl_password=password or self.users[user],
            ssl_cafile=str(self.tls.ca),
        )

    def server_properties(self) -> dict[str, str]:
        assert self.tls is not None
        props = super().server_properties()
        jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                f'username="admin" password="{self.users["admin"]}";')
        props.update({
            "listeners": f"SASL_SSL://127.0.0.1:{self.port},"
                         f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "SASL_SSL",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": SCRAM,
            "sasl.mechanism.inter.broker.protocol": SCRAM,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.tls.keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.tls.ca),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin;User:ANONYMOUS",  # ANONYMOUS: the plaintext CONTROLLER
            "allow.everyone.if.no.acl.found": "false",
            "auto.create.topics.enable": "false",
        })
        return props

    def format_args(self) -> list[str]:
        return [arg for name, password in self.users.items()
                for arg in ("--add-scram", f"{SCRAM}=[name={name},password={password}]")]

    def probe(self) -> bool:
        return _run_async(_describe_cluster(self.options("admin")))

    def allow(self, *acls: str) -> None:
        """Create ALLOW ACLs as the super user: `principal,OPERATION,TYPE,name,PATTERN`."""
        assert self.tls is not None
        props = self.workdir / "admin-client.properties"
        props.write_text(
            f"bootstrap.servers={self.bootstrap}\nsecurity.protocol=SASL_SSL\n"
            f"sasl.mechanism={SCRAM}\nssl.truststore.type=PEM\n"
            f"ssl.truststore.location={self.tls.ca}\n"
            f"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule "
            f'required username="admin" password="{self.users["admin"]}";\n'
        )
        argv = self._java_argv(str(ACL_TOOL), str(props), *acls)
        res = subprocess.run(argv, cwd=self.workdir, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise ServiceError(f"creating ACLs failed:\n{res.stdout}\n{res.stderr}")


def least_privilege_acls(topic: str, group: str) -> list[str]:
    """The publisher writes the rule topic; the consumer reads it, writes its dead letters and
    uses its group. Nothing else (WRITE and READ imply DESCRIBE; WRITE implies idempotence)."""
    return [
        f"User:publisher,WRITE,TOPIC,{topic},LITERAL",
        f"User:consumer,READ,TOPIC,{topic},LITERAL",
        f"User:consumer,WRITE,TOPIC,{dead_letter_topic(topic)},LITERAL",
        f"User:consumer,READ,GROUP,{group},LITERAL",
    ]


async def _describe_cluster(options: KafkaOptions) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(request_timeout_ms=3000, **options.client_kwargs())
    try:
        await admin.start()
        return bool((await admin.describe_cluster()).get("brokers"))
    except Exception:
        return False
    finally:
        await admin.close()


def _run_async(probe: object) -> bool:
    """Run a probe coroutine in a worker thread, away from any event loop of the caller."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return bool(pool.submit(asyncio.run, probe).result())  # type: ignore[arg-type]  # a coroutine


# --------------------------------------------------------------------------------------- Redis


@dataclass
class TlsRedisServer:
    """redis-server on a TLS port only; the `default` user is off, `admin` may do anything.
    Tests add the least-privilege users from docs/redis.md through admin()."""

    workdir: Path
    tls: TestCA
    port: int = field(default_factory=free_port)
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    start_timeout: float = 10.0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def url(self, user: str, password: str) -> str:
        """A denyproxy --redis URL for one ACL user, verifying the server against our CA."""
        return f"rediss://{user}:{password}@127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls.ca}"

    def admin(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, username="admin", password=self.admin_password,
            ssl=True, ssl_ca_certs=str(self.tls.ca), decode_responses=True, socket_timeout=5,
        )

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise ServiceError("redis-server not found on PATH; run scripts/test to install it")
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            exe, "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
            "--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key),
            "--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no",
            "--user", "default", "off",
            "--user", "admin", "on", f">{self.admin_password}", "~*", "&*", "+@all",
            "--dir", str(self.workdir), "--save", "", "--appendonly", "no",
        ]
        self.proc = _spawn(argv, self.workdir / "redis.log", self.workdir)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with self.admin() as client:
                    if client.ping():
                        return
            except redis.RedisError:
                pass
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServiceError(f"TLS redis-server did not start:\n"
                                   f"{tail(self.workdir / 'redis.log')}")
            time.sleep(0.05)

    def stop(self) -> None:
        _terminate(self.proc, timeout=5.0)
        self.proc = None
