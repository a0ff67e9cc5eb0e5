"""The store service: write clean ticks to PostgreSQL, effectively once.

python -m orderbook_kit.store                   # run until Ctrl-C (or SIGTERM)
python -m orderbook_kit.store --idle 5 -q       # or once no message came for 5 seconds
python -m orderbook_kit.store db start          # the kit's own PostgreSQL (also: stop, status,
                                                #   ensure, url, logs, reset --yes)

Ctrl-C (or SIGTERM) finishes the current batch (one transaction) and prints a summary; a second
Ctrl-C, or kill -9, stops at once: the batch in flight is then not stored, and is read again on
the next start.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..command_line import CommandParser
from ..config import load_settings, read_setting
from ..database import connect
from ..errors import OrderbookKitError
from ..monitoring.metrics import StoreMetrics
from ..postgres import server
from ..postgres.runtime import PGSERVER_VERSION
from ..service import ServiceParser, StopSignal, print_skipped, run_consumer_service, run_service
from ..validation import redacted_url
from .sink import StoreSink
from .tables import drop_schema

EXIT_NOT_RUNNING = 3  # `db status`, as `broker status` and pg_ctl say it


def build_parser() -> ServiceParser:
    parser = ServiceParser(
        "python -m orderbook_kit.store", __doc__.splitlines()[0], load_settings()
    )
    parser.add_idle_flag()
    parser.add_setting("--source-topic", "clean_topic", "topic to store")
    parser.add_setting("--group", "store_group", "consumer group")
    parser.add_setting("--database-url", "database_url", "PostgreSQL to write to")
    parser.add_setting("--schema", "db_schema", "PostgreSQL schema of the store's tables")
    return parser


def store(argv: Sequence[str] | None) -> int:
    stop = StopSignal().install()  # until connected, Ctrl-C interrupts at once
    parser = build_parser()
    arguments = parser.parse_args(argv)
    settings = parser.settings(arguments, argv)
    print(
        f"Storing '{settings.clean_topic}' (Kafka at {settings.bootstrap_servers}) as group "
        f"'{settings.store_group}' into PostgreSQL at {redacted_url(settings.database_url)}, "
        f"schema '{settings.db_schema}'",
        flush=True,
    )
    metrics = StoreMetrics()
    metrics.watch_lag(settings, settings.store_group, settings.clean_topic)
    sink = StoreSink(
        settings,
        on_skipped=None if arguments.quiet else print_skipped,
        # Counted only when exported: histograms cost a little per tick.
        metrics=metrics if arguments.metrics_port is not None else None,
    )
    return run_consumer_service(sink, stop, arguments, metrics, parser)


# --- db: the kit's own PostgreSQL ---------------------------------------------------------------


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
        print("PostgreSQL stopped. Its data is kept; `db start` brings every row back.")
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


def db_reset(confirmed: bool) -> int:
    settings = load_settings()
    if not confirmed:
        print(
            f"error: this deletes every table in schema '{settings.db_schema}' at "
            f"{redacted_url(settings.database_url)}; add --yes to do it",
            file=sys.stderr,
        )
        return 2
    with connect(settings.database_url, timeout_s=settings.client_timeout_s) as conn:
        drop_schema(conn, settings.db_schema)
    print(f"Schema '{settings.db_schema}' deleted; the store creates it again when it starts.")
    return 0


def db(argv: Sequence[str]) -> int:
    parser = CommandParser(
        prog="python -m orderbook_kit.store db",
        description="The kit's own PostgreSQL 16 (no Docker), at DATABASE_URL's port on 127.0.0.1.",
        epilog="Environment: DATABASE_URL, ORDERBOOK_DB_DIR (its data, default ./.postgres), "
        "ORDERBOOK_DB_SCHEMA (reset).",
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
    reset = commands.add_parser("reset", help="delete the store's tables (ORDERBOOK_DB_SCHEMA)")
    reset.add_argument("--yes", action="store_true", help="yes, delete them")
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
        if arguments.command == "logs":
            print(server.tail_log(server.default_state_dir(), arguments.lines))
            return 0
        return db_reset(arguments.yes)
    except OrderbookKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["db"]:
        return db(arguments[1:])
    return run_service(lambda: store(argv))


if __name__ == "__main__":
    sys.exit(main())
