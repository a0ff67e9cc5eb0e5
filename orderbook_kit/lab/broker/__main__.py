"""Command line for the JVM broker (or a cluster of them) and Apache Kafka's own tools.

    python -m orderbook_kit.lab.broker start | stop | status | logs | ensure
    python -m orderbook_kit.lab.broker start --nodes 3   # a three-node cluster
    python -m orderbook_kit.lab.broker kill --node 2     # SIGKILL one node; `start --node 2` again
    python -m orderbook_kit.lab.broker topics --list
    python -m orderbook_kit.lab.broker topics --cluster --describe --topic orderbook.raw
    python -m orderbook_kit.lab.broker console-consumer --topic orderbook.raw --from-beginning

Environment: KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092), KAFKA_CLUSTER_SERVERS (the cluster's
nodes, default 127.0.0.1:9192,127.0.0.1:9193,127.0.0.1:9194), ORDERBOOK_KAFKA_HOME (jar cache and
default broker, default ./.kafka), ORDERBOOK_BROKER_DIR (the broker's state, default
<home>/broker), ORDERBOOK_CLUSTER_DIR (the cluster's, default <home>/cluster),
KAFKA_START_TIMEOUT_S (default 60), KAFKA_METRICS_PORT (serve the broker's JMX metrics for
Prometheus on this port of 127.0.0.1; 0: any free one).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.admin import broker_answers
from orderbook_kit.lab.broker import cluster
from orderbook_kit.lab.broker import server as process
from orderbook_kit.lab.jvm import KAFKA_VERSION
from orderbook_kit.runtime.command_line import CommandParser, flag_type
from orderbook_kit.settings import rules as validation
from orderbook_kit.settings.environment import read_setting

# Kafka's command-line tools, by the name of their kafka-*.sh script.
TOOLS = {
    "topics": "org.apache.kafka.tools.TopicCommand",
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
}


def start_timeout() -> float:
    """How long a node may take to answer (KAFKA_START_TIMEOUT_S)."""
    return float(read_setting("lab.start_timeout_s"))  # type: ignore[arg-type]


def bootstrap_servers(*, on_cluster: bool = False) -> str:
    """Only the one setting the broker commands need: a bad TICK_COUNT must not stop `stop`."""
    return str(read_setting("kafka.cluster_servers" if on_cluster else "kafka.bootstrap_servers"))


def metrics_port(flag: int | None) -> int | None:
    """The broker's metrics port: ``--metrics-port``, else KAFKA_METRICS_PORT, else none."""
    if flag is not None:
        return flag
    port = read_setting("lab.broker_metrics_port")
    return None if port is None else int(port)  # type: ignore[call-overload]


def cmd_start(bootstrap: str, port: int | None = None) -> int:
    print(f"Starting Apache Kafka {KAFKA_VERSION} on the JVM at {bootstrap} ...", flush=True)
    started = process.start(
        bootstrap, process.default_state_dir(), timeout_s=start_timeout(), metrics_port=port
    )
    print(f"Kafka broker is up at {started.bootstrap_servers} (pid {started.pid}).")
    if started.metrics_url is not None:
        print(f"Metrics (Prometheus's JMX exporter) at {started.metrics_url}")
    print(f"Log: {started.log_file}. Stop it with `python -m orderbook_kit.lab.broker stop`.")
    return 0


def cmd_start_cluster(bootstrap: str, nodes: int) -> int:
    directory = cluster.default_cluster_dir()
    print(f"Starting a {nodes}-node Apache Kafka {KAFKA_VERSION} cluster in {directory} ...")
    layout = cluster.start_cluster(bootstrap, directory, nodes=nodes, timeout_s=start_timeout())
    addresses = cluster.bootstrap_servers_of(layout)
    print(f"The cluster is up: nodes {', '.join(str(n.node_id) for n in layout)} at {addresses}.")
    print("Clients list every node, so they start while any one is down: the kit's settings")
    print("have them as settings.on_cluster() (KAFKA_CLUSTER_SERVERS); for a service, run it with")
    print(f"  KAFKA_BOOTSTRAP_SERVERS={addresses}")
    return 0


def cmd_node(action: str, node_id: int) -> int:
    directory = cluster.default_cluster_dir()
    if action == "start":
        node = cluster.start_node(directory, node_id, timeout_s=start_timeout())
        print(f"Node {node.node_id} is up again at {node.address}.")
    elif action == "stop":
        done = cluster.stop_node(directory, node_id)
        print(f"Node {node_id} stopped cleanly." if done else f"Node {node_id} was not running.")
    else:
        done = cluster.kill_node(directory, node_id)
        print(f"Node {node_id} killed (SIGKILL)." if done else f"Node {node_id} was not running.")
    return 0


def cmd_ensure(bootstrap: str) -> int:
    """Use the broker that answers at ``bootstrap`` (Docker, yours, ours), else start ours."""
    if broker_answers(bootstrap):
        print(f"Using the Kafka broker that answers at {bootstrap}.")
        return 0
    return cmd_start(bootstrap)


def cmd_stop() -> int:
    if process.stop(process.default_state_dir()):
        print("Kafka broker stopped. Its data is kept; `start` brings every message back.")
    else:
        print(f"No kit broker is running from {process.default_state_dir()}.")
    stopped = cluster.stop_cluster(cluster.default_cluster_dir())
    if stopped:
        print(f"Cluster nodes {', '.join(map(str, stopped))} stopped. Their data is kept.")
    return 0


def cmd_status() -> int:
    """The single broker's status, and the cluster's if it has a running node. Exit code: 0 all
    that runs answers, 1 something does not, 3 nothing runs."""
    running = process.status(process.default_state_dir())
    nodes = cluster.status(cluster.default_cluster_dir())
    cluster_runs = any(node_status is not None for _, node_status in nodes)
    codes = [cmd_cluster_status(nodes)] if cluster_runs else []
    if running is not None:
        health = "answers" if running.answers else "does NOT answer metadata requests"
        print(f"Kafka broker pid {running.pid} at {running.bootstrap_servers}: {health}.")
        print(f"Log: {running.log_file}")
        if running.metrics_url is not None:
            print(f"Metrics: {running.metrics_url}")
        codes.append(0 if running.answers else 1)
    elif not cluster_runs:
        print(f"No kit broker is running from {process.default_state_dir()}.")
        return 3
    return max(codes, default=0)


def cmd_cluster_status(nodes: list[tuple[cluster.ClusterNode, process.BrokerStatus | None]]) -> int:
    healthy = 0
    for node, running in nodes:
        if running is None:
            state = "not running"
        else:
            state = f"pid {running.pid}, " + ("answers" if running.answers else "does NOT answer")
            healthy += running.answers
        print(f"node {node.node_id} at {node.address}: {state}")
    print(f"{healthy} of {len(nodes)} cluster nodes answer. Leaders and in-sync replicas: ", end="")
    print("`python -m orderbook_kit.lab.broker topics --cluster --describe`.")
    return 0 if healthy == len(nodes) else 1


def cmd_tool(name: str, arguments: list[str], bootstrap: str) -> int:
    if not any(a == "--bootstrap-server" or a.startswith("--bootstrap-server=") for a in arguments):
        arguments = ["--bootstrap-server", bootstrap, *arguments]
    try:
        return process.run_tool(TOOLS[name], arguments).returncode
    except KeyboardInterrupt:  # the console consumer runs until Ctrl-C
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(
        prog="python -m orderbook_kit.lab.broker",
        description=f"Run Apache Kafka {KAFKA_VERSION} on the JVM (no Docker) and its tools.",
        epilog=__doc__.split("Environment:")[1].join(["Environment:", ""]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser(
        "start", help="start the broker in the background; wait until it answers"
    )
    start.add_argument("--nodes", type=int, help="start a cluster of this many nodes (1-5)")
    start.add_argument("--node", type=int, help="start one node of the cluster again")
    start.add_argument(
        "--metrics-port",
        type=flag_type(validation.metrics_port),
        help="serve the broker's metrics (JMX exporter) on 127.0.0.1 (0: any port; env "
        "KAFKA_METRICS_PORT)",
    )
    stop = commands.add_parser("stop", help="stop the broker (or cluster) cleanly; data is kept")
    stop.add_argument("--node", type=int, help="stop only this node of the cluster")
    kill = commands.add_parser("kill", help="SIGKILL one node of the cluster (a crash)")
    kill.add_argument("--node", type=int, required=True, help="the node's id")
    commands.add_parser("status", help="is the broker running and answering?")
    logs = commands.add_parser("logs", help="print the end of the broker's log")
    logs.add_argument("-n", "--lines", type=int, default=50)
    logs.add_argument("--node", type=int, help="the log of this node of the cluster")
    commands.add_parser("ensure", help="use the broker that answers, else start one")
    for name, main_class in TOOLS.items():
        tool = commands.add_parser(
            name,
            help=f"Kafka's kafka-{name}.sh ({main_class}); --bootstrap-server is added",
            add_help=False,
        )
        tool.add_argument(
            "--cluster", action="store_true", help="talk to the cluster (KAFKA_CLUSTER_SERVERS)"
        )
    arguments, rest = parser.parse_known_args(argv)
    if rest and arguments.command not in TOOLS:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        if arguments.command == "start" and arguments.node is not None:
            return cmd_node("start", arguments.node)
        if arguments.command == "start" and arguments.nodes is not None:
            return cmd_start_cluster(bootstrap_servers(on_cluster=True), arguments.nodes)
        if arguments.command == "start":
            return cmd_start(bootstrap_servers(), metrics_port(arguments.metrics_port))
        if arguments.command == "kill" or (arguments.command == "stop" and arguments.node):
            return cmd_node(arguments.command, arguments.node)
        if arguments.command == "ensure":
            return cmd_ensure(bootstrap_servers())
        if arguments.command == "stop":
            return cmd_stop()
        if arguments.command == "status":
            return cmd_status()
        if arguments.command == "logs":
            directory = process.default_state_dir()
            if arguments.node is not None:
                directory = cluster.default_cluster_dir() / f"node-{arguments.node}"
            print(process.tail_log(directory, arguments.lines))
            return 0
        return cmd_tool(arguments.command, rest, bootstrap_servers(on_cluster=arguments.cluster))
    except OrderbookKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except subprocess.TimeoutExpired as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
