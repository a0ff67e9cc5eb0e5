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
from pathlib import Path

from orderbook_kit.lab.commands import ServerCommands, Subcommands
from orderbook_kit.lab.postgres import server
from orderbook_kit.lab.postgres.runtime import PGSERVER_VERSION
from orderbook_kit.runtime.command_line import CommandParser
from orderbook_kit.settings.environment import read_setting
from orderbook_kit.settings.rules import redacted_url


def database_url() -> str:
    """Only the one setting the db commands need: a bad TICK_COUNT must not stop `stop`."""
    return str(read_setting("store.database_url"))


def start(arguments: argparse.Namespace, state_dir: Path) -> int:
    url = database_url()
    if arguments.command == "ensure" and not server.ensure(url, state_dir):
        print(f"Using the PostgreSQL that answers at {redacted_url(url)}.")
        return 0
    if arguments.command == "start":
        print(f"Starting PostgreSQL 16 (pgserver {PGSERVER_VERSION}) at {redacted_url(url)} ...")
        started = server.start(url, state_dir)
        print(f"PostgreSQL is up at {redacted_url(url)} (pid {started.pid}).")
    else:
        print(f"PostgreSQL started at {redacted_url(url)}.")
    print(f"Data and log: {state_dir}. Stop it with `make stop`.")
    return 0


def describe(state_dir: Path) -> str | None:
    running = server.status(state_dir)
    if running is None:
        return None
    return f"PostgreSQL pid {running.pid} on 127.0.0.1:{running.port}. Log: {running.log_file}"


def print_url(_arguments: argparse.Namespace, _state_dir: Path) -> int:
    print(database_url())
    return 0


COMMANDS = ServerCommands(
    prog="python -m orderbook_kit.lab.postgres",
    description="The kit's own PostgreSQL 16 (no Docker), at DATABASE_URL's port on 127.0.0.1.",
    epilog="Environment: DATABASE_URL, ORDERBOOK_DB_DIR (its data, default ./.postgres).",
    server="PostgreSQL",
    state_dir=server.default_state_dir,
    stop=server.stop,
    describe=describe,
    tail_log=server.tail_log,
)


def add_url_command(commands: Subcommands[CommandParser]) -> None:
    commands.add_parser("url", help="print DATABASE_URL (for psql, pandas, your tools)")


def main(argv: Sequence[str] | None = None) -> int:
    actions = {"start": start, "ensure": start, "url": print_url}
    return COMMANDS.main(argv, actions, add_url_command)


if __name__ == "__main__":
    sys.exit(main())
