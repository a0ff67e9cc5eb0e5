"""The kit's own PostgreSQL 16 (no Docker, no system install), for the hot store.

python -m orderbook_kit.lab.postgres start     # create it the first time; wait until it answers
python -m orderbook_kit.lab.postgres ensure    # the one at DATABASE_URL, else start one
python -m orderbook_kit.lab.postgres status    # also: stop, url, logs

Environment: DATABASE_URL (its port on 127.0.0.1), ORDERBOOK_DB_DIR (its data, default ./.postgres).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.lab.postgres import server
from orderbook_kit.lab.postgres.runtime import PGSERVER_VERSION
from orderbook_kit.runtime.command_line import CommandParser
from orderbook_kit.settings.environment import read_setting
from orderbook_kit.settings.rules import redacted_url

EXIT_NOT_RUNNING = 3  # `status`, as the broker's command and pg_ctl say it


def database_url() -> str:
    """Only the one setting the db commands need: a bad TICK_COUNT must not stop `db stop`."""
    return str(read_setting("database_url"))


def db_start() -> int:
    url = database_url()
    print(f"Starting PostgreSQL 16 (from pgserver {PGSERVER_VERSION}) at {redacted_url(url)} ...")
    started = server.start(url, server.default_state_dir())
    print(f"PostgreSQL is up at {redacted_url(url)} (pid {started.pid}).")
    print(f"Data and log: {server.default_state_dir()}. Stop it with `make stop`.")
    return 0


def db_ensure() -> int:
    url = database_url()
    if server.ensure(url, server.default_state_dir()):
        print(f"PostgreSQL started at {redacted_url(url)}.")
    else:
        print(f"Using the PostgreSQL that answers at {redacted_url(url)}.")
    return 0


def db_stop() -> int:
    if server.stop(server.default_state_dir()):
        print("PostgreSQL stopped. Its data is kept; `start` brings every row back.")
    else:
        print(f"No kit PostgreSQL is running from {server.default_state_dir()}.")
    return 0


def db_status() -> int:
    running = server.status(server.default_state_dir())
    if running is None:
        print(f"No kit PostgreSQL is running from {server.default_state_dir()}.")
        return EXIT_NOT_RUNNING
    print(f"PostgreSQL pid {running.pid} on 127.0.0.1:{running.port}. Log: {running.log_file}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = CommandParser(
        prog="python -m orderbook_kit.lab.postgres",
        description="The kit's own PostgreSQL 16 (no Docker), at DATABASE_URL's port on 127.0.0.1.",
        epilog="Environment: DATABASE_URL, ORDERBOOK_DB_DIR (its data, default ./.postgres).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="start it (creating it the first time); wait until ready")
    commands.add_parser(
        "ensure", help="use the PostgreSQL that answers at DATABASE_URL, else start"
    )
    commands.add_parser("stop", help="stop it (its data is kept)")
    commands.add_parser("status", help="is it running?")
    commands.add_parser("url", help="print DATABASE_URL (for psql, pandas, your tools)")
    logs = commands.add_parser("logs", help="print the end of its log")
    logs.add_argument("-n", "--lines", type=int, default=25)
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "start":
            return db_start()
        if arguments.command == "ensure":
            return db_ensure()
        if arguments.command == "stop":
            return db_stop()
        if arguments.command == "status":
            return db_status()
        if arguments.command == "url":
            print(database_url())
            return 0
        print(server.tail_log(server.default_state_dir(), arguments.lines))
        return 0
    except OrderbookKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
