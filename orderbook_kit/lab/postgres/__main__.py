"""The kit's own PostgreSQL 16 (no Docker, no system install), for the hot store.

python -m orderbook_kit.lab.postgres start     # create it the first time; wait until it answers
python -m orderbook_kit.lab.postgres ensure    # the one at DATABASE_URL, else start one
python -m orderbook_kit.lab.postgres status    # also: stop, url, logs

Environment: DATABASE_URL (its port on 127.0.0.1), ORDERBOOK_DB_DIR (its data, default ./.postgres).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from orderbook_kit.lab.commands import ServerCommands, run_command
from orderbook_kit.lab.postgres import server
from orderbook_kit.lab.postgres.runtime import PGSERVER_VERSION
from orderbook_kit.settings.environment import read_setting
from orderbook_kit.settings.rules import redacted_url

COMMANDS = ServerCommands(
    prog="python -m orderbook_kit.lab.postgres",
    description="The kit's own PostgreSQL 16 (no Docker), at DATABASE_URL's port on 127.0.0.1.",
    epilog="Environment: DATABASE_URL, ORDERBOOK_DB_DIR (its data, default ./.postgres).",
    server="PostgreSQL",
)


def database_url() -> str:
    """Only the one setting the db commands need: a bad TICK_COUNT must not stop `stop`."""
    return str(read_setting("store.database_url"))


def command(arguments: argparse.Namespace) -> int:
    url, state_dir = database_url(), server.default_state_dir()
    if arguments.command == "start":
        print(f"Starting PostgreSQL 16 (pgserver {PGSERVER_VERSION}) at {redacted_url(url)} ...")
        started = server.start(url, state_dir)
        print(f"PostgreSQL is up at {redacted_url(url)} (pid {started.pid}).")
        print(f"Data and log: {state_dir}. Stop it with `make stop`.")
    elif arguments.command == "ensure":
        if server.ensure(url, state_dir):
            print(f"PostgreSQL started at {redacted_url(url)}.")
        else:
            print(f"Using the PostgreSQL that answers at {redacted_url(url)}.")
    elif arguments.command == "stop":
        return COMMANDS.stopped(server.stop(state_dir), state_dir)
    elif arguments.command == "status":
        running = server.status(state_dir)
        found = None
        if running is not None:
            found = (
                f"PostgreSQL pid {running.pid} on 127.0.0.1:{running.port}. Log: {running.log_file}"
            )
        return COMMANDS.status(found, state_dir)
    elif arguments.command == "url":
        print(url)
    else:
        print(server.tail_log(state_dir, arguments.lines))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = COMMANDS.parser()
    commands.add_parser("url", help="print DATABASE_URL (for psql, pandas, your tools)")
    arguments = parser.parse_args(argv)
    return run_command(lambda: command(arguments))


if __name__ == "__main__":
    sys.exit(main())
