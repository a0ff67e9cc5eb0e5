"""A cluster of Apache Kafka nodes on this machine, for the replication lessons.

Each node is a broker *and* a controller (KRaft combined mode), so three nodes are also a
controller quorum of three: the cluster keeps working - electing leaders, accepting writes to
partitions with two in-sync replicas - while any one node is down. Every node has its own state
directory (``<cluster dir>/node-<id>``: properties, data, logs), its own port on 127.0.0.1 and a
bounded heap, so three fit on a laptop. ``cluster.json`` remembers the layout (addresses,
controller ports, cluster id), so a node that was stopped or killed restarts as itself.

On real machines it is the same: one node per machine, the same properties, the addresses of
the machines instead of 127.0.0.1 ports.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kafka.errors import KafkaError

from orderbook_kit.errors import BrokerError, BrokerStartTimeoutError
from orderbook_kit.kafka.admin import admin_client, broker_answers, quiet_kafka_logs
from orderbook_kit.lab import jvm
from orderbook_kit.lab.broker import server as process
from orderbook_kit.lab.ports import free_ports
from orderbook_kit.paths import configured_folder

__all__ = [
    "CLUSTER_PROPERTIES",
    "ClusterNode",
    "bootstrap_servers_of",
    "default_cluster_dir",
    "kill_node",
    "node_addresses",
    "read_layout",
    "start_cluster",
    "start_node",
    "status",
    "stop_cluster",
    "stop_node",
]

DEFAULT_NODES = 3
MAX_NODES = 5
LAYOUT_FILE = "cluster.json"
# What makes a cluster durable: every partition on three nodes, and a write acknowledged (with
# acks=all) only once two of them have it - so one node can fail without losing an acked write,
# and with two down, writes are refused rather than kept on one disk only.
CLUSTER_PROPERTIES = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "share.coordinator.state.topic.replication.factor": "3",
    "share.coordinator.state.topic.min.isr": "2",
    # Never elect a replica that missed acknowledged writes (Kafka's default, stated here
    # because notebook 08 explains what it protects).
    "unclean.leader.election.enable": "false",
    # A node that stops heart-beating is fenced, and its leaderships move, after this long
    # (Kafka's defaults: 9 s and 2 s). Shorter, so a lesson sees the failover within seconds.
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
}


def default_cluster_dir() -> Path:
    """``$ORDERBOOK_CLUSTER_DIR``, else ``<kafka home>/cluster`` (next to the single broker)."""
    return configured_folder("ORDERBOOK_CLUSTER_DIR", jvm.default_home() / "cluster")


@dataclass(frozen=True)
class ClusterNode:
    node_id: int
    address: str  # host:port of its broker listener
    controller_port: int

    def directory(self, cluster_dir: Path) -> Path:
        return cluster_dir / f"node-{self.node_id}"


def node_addresses(bootstrap_servers: str, nodes: int) -> list[str]:
    """One address per node: those listed, or the first one's port and the next ones."""
    if not 1 <= nodes <= MAX_NODES:
        raise BrokerError(f"--nodes must be 1-{MAX_NODES}, got {nodes}; use e.g. 3")
    listed = [address.strip() for address in bootstrap_servers.split(",") if address.strip()]
    if len(listed) == nodes:
        return [":".join(map(str, process.parse_address(a))) for a in listed]
    if len(listed) == 1:
        host, port = process.parse_address(listed[0])
        return [f"{host}:{port + i}" for i in range(nodes)]
    raise BrokerError(
        f"KAFKA_CLUSTER_SERVERS lists {len(listed)} addresses for {nodes} nodes; list one "
        "(the nodes take it and the next ports) or one per node."
    )


def bootstrap_servers_of(layout: list[ClusterNode]) -> str:
    """Every node's address: a client that knows all of them can start while any one is down."""
    return ",".join(node.address for node in layout)


def read_layout(cluster_dir: Path) -> list[ClusterNode] | None:
    try:
        data = json.loads((cluster_dir / LAYOUT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return [ClusterNode(n["node_id"], n["address"], n["controller_port"]) for n in data["nodes"]]


def _cluster_id(cluster_dir: Path) -> str:
    return str(json.loads((cluster_dir / LAYOUT_FILE).read_text())["cluster_id"])


def _create_layout(cluster_dir: Path, addresses: list[str]) -> list[ClusterNode]:
    cluster_dir.mkdir(parents=True, exist_ok=True)
    # Each node's controller port: free now, different from each other and from every node's
    # broker port (those are not bound yet either: picked one by one, a controller port once
    # was another node's broker port, and that node could not start).
    brokers = {int(address.rpartition(":")[2]) for address in addresses}
    spare = [p for p in free_ports("127.0.0.1", 2 * len(addresses)) if p not in brokers]
    layout = [ClusterNode(i, address, spare[i - 1]) for i, address in enumerate(addresses, start=1)]
    data = {
        "cluster_id": process.new_cluster_id(),
        "nodes": [
            {"node_id": n.node_id, "address": n.address, "controller_port": n.controller_port}
            for n in layout
        ],
    }
    (cluster_dir / LAYOUT_FILE).write_text(json.dumps(data, indent=2) + "\n")
    return layout


def _node_properties(layout: list[ClusterNode], node: ClusterNode) -> dict[str, str]:
    # Three replicas (fewer on a smaller cluster), and one of them may be missing: 3 -> 2 in sync.
    replicas = min(3, len(layout))
    in_sync = str(max(1, replicas - 1))
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in layout)
    properties = {
        **CLUSTER_PROPERTIES,
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
    }
    for key in CLUSTER_PROPERTIES:
        if key.endswith("replication.factor"):
            properties[key] = str(replicas)
        elif key.endswith(("min.isr", "min.insync.replicas")):
            properties[key] = in_sync
    return properties


def start_cluster(
    bootstrap_servers: str,
    cluster_dir: Path,
    *,
    nodes: int = DEFAULT_NODES,
    home: Path | None = None,
    timeout_s: float = process.DEFAULT_START_TIMEOUT_S,
) -> list[ClusterNode]:
    """Start every node of the cluster in ``cluster_dir`` (creating it the first time, at the
    addresses from ``bootstrap_servers``); return once all of them answer."""
    layout = read_layout(cluster_dir)
    addresses = node_addresses(bootstrap_servers, nodes)
    if layout is None:
        layout = _create_layout(cluster_dir, addresses)
    elif [n.address for n in layout] != addresses:
        raise BrokerError(
            f"The cluster in {cluster_dir} was made with the nodes "
            f"{bootstrap_servers_of(layout)}, not {','.join(addresses)}. Use those addresses, "
            f"or delete {cluster_dir} (and its messages) to make a new cluster."
        )
    launched = {node: _launch(cluster_dir, layout, node, home) for node in layout}
    _wait_for_brokers(launched, len(layout), timeout_s, cluster_dir)
    return layout


def start_node(
    cluster_dir: Path,
    node_id: int,
    *,
    home: Path | None = None,
    timeout_s: float = process.DEFAULT_START_TIMEOUT_S,
) -> ClusterNode:
    """Start one node again (after ``stop_node`` or ``kill_node``); return once it answers."""
    layout, node = _node(cluster_dir, node_id)
    _wait_for_brokers({node: _launch(cluster_dir, layout, node, home)}, 1, timeout_s, cluster_dir)
    return node


def stop_node(cluster_dir: Path, node_id: int) -> bool:
    """Stop one node cleanly (it hands its leaderships over first); False if it was not running."""
    _, node = _node(cluster_dir, node_id)
    return process.stop(node.directory(cluster_dir))


def kill_node(cluster_dir: Path, node_id: int) -> bool:
    """SIGKILL one node: a crash, with no hand-over; False if it was not running."""
    _, node = _node(cluster_dir, node_id)
    return process.kill(node.directory(cluster_dir))


def stop_cluster(cluster_dir: Path) -> list[int]:
    """Stop every running node, all at once; the ids of those that ran. Their data is kept.

    All at once, because a node shuts down cleanly by telling the controller quorum: stopped one
    after the other, the last node finds no quorum left and waits until it is killed.
    """
    layout = read_layout(cluster_dir) or []
    with ThreadPoolExecutor(max_workers=max(len(layout), 1)) as pool:
        stopped = list(pool.map(lambda n: process.stop(n.directory(cluster_dir)), layout))
    return [node.node_id for node, ran in zip(layout, stopped, strict=True) if ran]


def status(cluster_dir: Path) -> list[tuple[ClusterNode, process.BrokerStatus | None]]:
    """Each node of the cluster and its status (None: not running); [] if there is no cluster."""
    layout = read_layout(cluster_dir) or []
    return [(node, process.status(node.directory(cluster_dir))) for node in layout]


def _node(cluster_dir: Path, node_id: int) -> tuple[list[ClusterNode], ClusterNode]:
    layout = read_layout(cluster_dir)
    if layout is None:
        raise BrokerError(
            f"There is no cluster in {cluster_dir}: start one with "
            "`python -m orderbook_kit.lab.broker start --nodes 3`."
        )
    for node in layout:
        if node.node_id == node_id:
            return layout, node
    ids = ", ".join(str(n.node_id) for n in layout)
    raise BrokerError(f"The cluster has no node {node_id}; its nodes are {ids}.")


def _launch(
    cluster_dir: Path, layout: list[ClusterNode], node: ClusterNode, home: Path | None
) -> int:
    """Start ``node`` (unless it runs) without waiting for it; its pid."""
    started = process.start(
        node.address,
        node.directory(cluster_dir),
        home=home,
        extra_properties=_node_properties(layout, node),
        controller_port=node.controller_port,
        cluster_id=_cluster_id(cluster_dir),
        wait=False,
    )
    return started.pid


def _wait_for_brokers(
    launched: dict[ClusterNode, int], expected: int, timeout_s: float, cluster_dir: Path
) -> None:
    """Until each node launched (node -> pid) answers and the cluster has registered
    ``expected`` brokers."""
    nodes = list(launched)
    deadline = time.monotonic() + timeout_s
    bootstrap = bootstrap_servers_of(nodes)
    seen = "no answer yet"
    while time.monotonic() < deadline:
        for node, pid in launched.items():
            if not process.is_alive(pid):
                raise BrokerError(
                    f"Node {node.node_id} of the cluster exited while starting. The end of its "
                    f"log:\n{process.tail_log(node.directory(cluster_dir))}"
                )
        try:
            with quiet_kafka_logs(), admin_client(bootstrap, 2.0) as admin:
                registered = len(admin.describe_cluster()["brokers"])
            if registered >= expected and all(broker_answers(n.address, 2.0) for n in nodes):
                return
            seen = f"{registered} broker(s) registered"
        except (BrokerError, KafkaError) as exc:
            seen = str(exc).splitlines()[0]
        time.sleep(process.READY_POLL_S)
    raise BrokerStartTimeoutError(
        f"The cluster's nodes at {bootstrap} did not all answer within {timeout_s:g} s "
        f"({seen}). See `python -m orderbook_kit.lab.broker logs --node <id>`; on a slow machine "
        "allow more time: `export KAFKA_START_TIMEOUT_S=120`."
    )
