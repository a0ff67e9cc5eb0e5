"""Command line for the pipeline's Prometheus (where a ``prometheus`` program is installed).

    python -m orderbook_kit.lab.prometheus start | ensure | stop | status | logs
    python -m orderbook_kit.lab.prometheus target quality http://127.0.0.1:41234/metrics

Environment: ORDERBOOK_PROMETHEUS_URL (default http://127.0.0.1:9090), ORDERBOOK_PROMETHEUS_DIR
(its configuration, data and log; default ./.prometheus).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from orderbook_kit.lab.commands import ServerCommands, Subcommands
from orderbook_kit.lab.prometheus import server as prometheus
from orderbook_kit.runtime.command_line import CommandParser
from orderbook_kit.settings.environment import read_setting


def start(arguments: argparse.Namespace, directory: Path) -> int:
    url = str(read_setting("lab.prometheus_url"))
    if arguments.command == "start":
        url, started = prometheus.start(url, directory), True
    else:
        url, started = prometheus.ensure(url, directory)
    where = f"data and log: {directory}" if started else "not the kit's"
    print(f"Prometheus is up at {url} ({where}).")
    print("Stop it with `python -m orderbook_kit.lab.prometheus stop`.")
    return 0


def describe(directory: Path) -> str | None:
    found = prometheus.status(directory)
    if found is None:
        return None
    state = "ready" if found.ready else "starting"
    return f"Prometheus is {state} at {found.url} (pid {found.pid}), log {found.log_file}"


def add_target(arguments: argparse.Namespace, directory: Path) -> int:
    written = prometheus.register_target(directory, arguments.service, arguments.url)
    print(f"Prometheus scrapes {arguments.url} as {arguments.service} ({written}).")
    return 0


def tail_log(directory: Path, lines: int) -> str:
    return prometheus.PrometheusServer(directory).tail_log(lines)


COMMANDS = ServerCommands(
    prog="python -m orderbook_kit.lab.prometheus",
    description="The pipeline's Prometheus (where a `prometheus` program is installed).",
    epilog="Environment: ORDERBOOK_PROMETHEUS_URL, ORDERBOOK_PROMETHEUS_DIR (its data, default "
    "./.prometheus).",
    server="Prometheus",
    state_dir=prometheus.default_state_dir,
    stop=prometheus.stop,
    describe=describe,
    tail_log=tail_log,
)


def add_target_command(commands: Subcommands[CommandParser]) -> None:
    target = commands.add_parser("target", help="have it scrape a service's /metrics")
    target.add_argument("service", help="label for the service: ingest, quality, store...")
    target.add_argument("url", help="the URL the service printed")


def main(argv: Sequence[str] | None = None) -> int:
    actions = {"start": start, "ensure": start, "target": add_target}
    return COMMANDS.main(argv, actions, add_target_command)


if __name__ == "__main__":
    sys.exit(main())
