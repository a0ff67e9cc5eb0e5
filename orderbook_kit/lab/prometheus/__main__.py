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

from orderbook_kit.lab.commands import ServerCommands, run_command
from orderbook_kit.lab.prometheus import server as prometheus
from orderbook_kit.settings.environment import read_setting

COMMANDS = ServerCommands(
    prog="python -m orderbook_kit.lab.prometheus",
    description="The pipeline's Prometheus (where a `prometheus` program is installed).",
    epilog="Environment: ORDERBOOK_PROMETHEUS_URL, ORDERBOOK_PROMETHEUS_DIR (its data, default "
    "./.prometheus).",
    server="Prometheus",
)


def command(arguments: argparse.Namespace) -> int:
    url, directory = str(read_setting("lab.prometheus_url")), prometheus.default_state_dir()
    if arguments.command in {"start", "ensure"}:
        if arguments.command == "start":
            url, started = prometheus.start(url, directory), True
        else:
            url, started = prometheus.ensure(url, directory)
        where = f"data and log: {directory}" if started else "not the kit's"
        print(f"Prometheus is up at {url} ({where}).")
        print("Stop it with `python -m orderbook_kit.lab.prometheus stop`.")
    elif arguments.command == "stop":
        return COMMANDS.stopped(prometheus.stop(directory), directory)
    elif arguments.command == "status":
        found = prometheus.status(directory)
        line = None
        if found is not None:
            state = "ready" if found.ready else "starting"
            line = f"Prometheus is {state} at {found.url} (pid {found.pid}), log {found.log_file}"
        return COMMANDS.status(line, directory)
    elif arguments.command == "target":
        written = prometheus.register_target(directory, arguments.service, arguments.url)
        print(f"Prometheus scrapes {arguments.url} as {arguments.service} ({written}).")
    else:
        print(prometheus.PrometheusServer(directory).tail_log(arguments.lines))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = COMMANDS.parser()
    target = commands.add_parser("target", help="have it scrape a service's /metrics")
    target.add_argument("service", help="label for the service: ingest, quality, store...")
    target.add_argument("url", help="the URL the service printed")
    arguments = parser.parse_args(argv)
    return run_command(lambda: command(arguments))


if __name__ == "__main__":
    sys.exit(main())
