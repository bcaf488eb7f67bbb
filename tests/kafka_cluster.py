"""Kafka brokers a fault test owns: one it can stop and restart, or a 3-node KRaft cluster
whose partition leader it can kill. Built on tests/services.py's KafkaBroker (same jars,
same launch), kept free of pytest like it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from tests.services import KafkaBroker, ServiceError, _spawn, free_ports, kafka_cluster_id


@dataclass
class ClusterNode(KafkaBroker):
    """One node (broker + controller) of a KRaft cluster with a static quorum of voters."""

    node_id: int = 1
    voters: str = ""
    cluster_id: str = ""
    replication: int = 3

    def server_properties(self) -> dict[str, str]:
        props = super().server_properties()
        rf = str(self.replication)
        props.update({
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": "2",
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": "2",
            "default.replication.factor": rf,
            "min.insync.replicas": "2",
            "replica.lag.time.max.ms": "5000",
            # a killed leader is noticed in seconds, not the default 9 s session
            "broker.session.timeout.ms": "3000",
            "broker.heartbeat.interval.ms": "500",
        })
        return props

    def _format_storage(self) -> None:
        """Every node of one cluster is formatted with the same cluster id."""
        argv = self._java_argv(
            "kafka.tools.StorageTool", "format", "-t", self.cluster_id,
            "-c", str(self.config_path),
        )
        res = subprocess.run(
            argv, check=False, cwd=self.workdir, capture_output=True, text=True, timeout=60
        )
        if res.returncode != 0:
            raise ServiceError(f"kafka storage format failed:\n{res.stdout}\n{res.stderr}")

    def kill(self) -> None:
        """SIGKILL: the node dies without a controlled shutdown (no leader hand-over)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@dataclass
class KafkaCluster:
    """`size` KRaft nodes, each broker and controller; a topic can have replication factor 3."""

    workdir: Path
    size: int = 3
    nodes: list[ClusterNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        ports = free_ports(2 * self.size)
        voters = ",".join(
            f"{i + 1}@127.0.0.1:{ports[self.size + i]}" for i in range(self.size)
        )
        cid = kafka_cluster_id()
        self.nodes = [
            ClusterNode(
                workdir=self.workdir / f"node-{i + 1}", port=ports[i],
                controller_port=ports[self.size + i], node_id=i + 1, voters=voters,
                cluster_id=cid, replication=self.size, heap=("128m", "384m"),
            )
            for i in range(self.size)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def start(self) -> None:
        """Launch every node first (a quorum needs a majority), then wait for each."""
        for node in self.nodes:
            node._check_libs()
            node.workdir.mkdir(parents=True, exist_ok=True)
            node.log_path.parent.mkdir(parents=True, exist_ok=True)
            if not (node.workdir / "data" / "meta.properties").exists():
                node._write_config()
                node._format_storage()
        for node in self.nodes:
            argv = node._java_argv("kafka.Kafka", str(node.config_path), heap=node.heap)
            node.proc = _spawn(argv, node.stdout_path, node.workdir)
        for node in self.nodes:
            node._wait_ready()

    def node(self, node_id: int) -> ClusterNode:
        return next(n for n in self.nodes if n.node_id == node_id)

    def stop(self) -> None:
        """SIGKILL every node: the data is thrown away, and a controlled shutdown of a
        cluster missing a node waits for hand-overs that never come (~15 s)."""
        for node in self.nodes:
            node.kill()


async def restart(broker: KafkaBroker) -> None:
    """Start a stopped broker again (same ports, same data) without blocking the event loop:
    spawned from this (long-lived) thread, waited for in a worker thread."""
    argv = broker._java_argv("kafka.Kafka", str(broker.config_path), heap=broker.heap)
    broker.proc = _spawn(argv, broker.stdout_path, broker.workdir)
    await asyncio.to_thread(broker._wait_ready)


async def stop(broker: KafkaBroker) -> None:
    """Controlled shutdown (SIGTERM) in a worker thread: the event loop keeps running."""
    await asyncio.to_thread(broker.stop)


async def partition_leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """partition → node id of its leader (-1 while it has none), from fresh metadata."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {p["partition"]: p["leader"] for p in described["partitions"]}


async def wait_leader_moved(bootstrap: str, topic: str, partition: int, gone: int) -> int:
    """The new leader of `partition` once it is no longer `gone` (polls metadata)."""
    while True:
        try:
            leader = (await partition_leaders(bootstrap, topic)).get(partition, -1)
        except Exception:  # a node just died: metadata may time out once
            leader = -1
        if leader not in (-1, gone):
            return leader
        await asyncio.sleep(0.2)
