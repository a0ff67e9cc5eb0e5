"""Command line for the pipeline's Prometheus (where a ``prometheus`` program is installed).

    python -m orderbook_kit.lab.prometheus start | stop | status
    python -m orderbook_kit.lab.prometheus target quality http://127.0.0.1:41234/metrics

Environment: ORDERBOOK_PROMETHEUS_URL (default http://127.0.0.1:9090), ORDERBOOK_PROMETHEUS_DIR
(its configuration, data and log; default ./.prometheus).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.lab.prometheus import server as prometheus
from orderbook_kit.runtime.command_line import CommandParser
from orderbook_kit.settings.environment import read_setting

EXIT_NOT_RUNNING = 3  # `status`, as the broker's and the database's commands say it


def main(argv: Sequence[str] | None = None) -> int:
    parser = CommandParser(
        prog="python -m orderbook_kit.lab.prometheus", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="start it (or say where it runs)")
    commands.add_parser("stop", help="stop it (its data is kept)")
    commands.add_parser("status", help="is it running? (exit code 3 if not)")
    target = commands.add_parser("target", help="have it scrape a service's /metrics")
    target.add_argument("service", help="label for the service: ingest, quality, store...")
    target.add_argument("url", help="the URL the service printed")
    arguments = parser.parse_args(argv)
    directory = prometheus.default_state_dir()
    try:
        if arguments.command == "start":
            url = prometheus.start(str(read_setting("prometheus_url")), directory)
            print(f"Prometheus is up at {url} (data and log: {directory}).")
            print("Stop it with `python -m orderbook_kit.lab.prometheus stop`.")
        elif arguments.command == "stop":
            stopped = prometheus.stop(directory)
            print("Prometheus stopped." if stopped else "No Prometheus of the kit was running.")
        elif arguments.command == "status":
            found = prometheus.status(directory)
            if found is None:
                print("Prometheus is not running.")
                return EXIT_NOT_RUNNING
            state = "ready" if found.ready else "starting"
            print(f"Prometheus is {state} at {found.url} (pid {found.pid}), log {found.log_file}")
        else:
            written = prometheus.register_target(directory, arguments.service, arguments.url)
            print(f"Prometheus scrapes {arguments.url} as {arguments.service} ({written}).")
    except OrderbookKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
