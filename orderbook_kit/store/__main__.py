"""The store service: write clean ticks to PostgreSQL, effectively once.

python -m orderbook_kit.store                   # run until Ctrl-C (or SIGTERM)
python -m orderbook_kit.store --idle 5 -q       # or once no message came for 5 seconds
python -m orderbook_kit.store candles           # the streamed 1-minute candles, into `candles`
python -m orderbook_kit.store reset --yes       # delete its tables (ORDERBOOK_DB_SCHEMA)

The kit's own PostgreSQL is a lab server: ``python -m orderbook_kit.lab.postgres start``.

Ctrl-C (or SIGTERM) finishes the current batch (one transaction) and prints a summary; a second
Ctrl-C, or kill -9, stops at once: the batch in flight is then not stored, and is read again on
the next start.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Sequence

from orderbook_kit.database.client import connect
from orderbook_kit.runtime.command_line import CommandParser
from orderbook_kit.runtime.service import ConsumerCommand, print_skipped, run_service
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.settings.rules import redacted_url
from orderbook_kit.store.metrics import StoreMetrics
from orderbook_kit.store.sink import CANDLE_SOURCE, StoreSink
from orderbook_kit.store.tables import drop_schema


def announce(settings: Settings) -> str:
    return (
        f"Storing '{settings.topics.clean}' (Kafka at {settings.kafka.bootstrap_servers}) as group "
        f"'{settings.store.group}' into PostgreSQL at {redacted_url(settings.store.database_url)}, "
        f"schema '{settings.store.schema}'"
    )


COMMAND = ConsumerCommand(
    prog="python -m orderbook_kit.store",
    description=__doc__.splitlines()[0],
    topic_key="topics.clean",
    reads="topic to store",
    group_key="store.group",
    flags=[
        ("--database-url", "store.database_url", "PostgreSQL to write to"),
        ("--schema", "store.schema", "PostgreSQL schema of the store's tables"),
    ],
    announce=announce,
    new_metrics=StoreMetrics,
    service=StoreSink,
    reporter="on_skipped",
    printer=print_skipped,
)


def announce_candles(settings: Settings) -> str:
    return (
        f"Storing '{settings.topics.candles_1m}' (Kafka at {settings.kafka.bootstrap_servers}) "
        f"as group '{settings.store.candles_group}' into PostgreSQL at "
        f"{redacted_url(settings.store.database_url)}, schema '{settings.store.schema}', "
        "table candles"
    )


# The candles service's 1-minute candles, effectively once, as the ticks are.
CANDLES_COMMAND = dataclasses.replace(
    COMMAND,
    prog="python -m orderbook_kit.store candles",
    description="The store for streamed candles: write them to PostgreSQL, effectively once.",
    topic_key="topics.candles_1m",
    reads="candle topic to store",
    group_key="store.candles_group",
    announce=announce_candles,
    service=functools.partial(StoreSink, source=CANDLE_SOURCE),
)


# --- reset: delete the store's tables ----------------------------------------------------------


def reset(argv: Sequence[str]) -> int:
    parser = CommandParser(
        prog="python -m orderbook_kit.store reset",
        description="Delete the store's tables (ORDERBOOK_DB_SCHEMA at DATABASE_URL).",
    )
    parser.add_argument("--yes", action="store_true", help="yes, delete them")
    confirmed = parser.parse_args(argv).yes
    settings = load_settings()
    if not confirmed:
        print(
            f"error: this deletes every table in schema '{settings.store.schema}' at "
            f"{redacted_url(settings.store.database_url)}; add --yes to do it",
            file=sys.stderr,
        )
        return 2
    with connect(settings.store.database_url, timeout_s=settings.kafka.client_timeout_s) as conn:
        drop_schema(conn, settings.store.schema)
    print(f"Schema '{settings.store.schema}' deleted; the store creates it again when it starts.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["reset"]:
        return run_service(lambda: reset(arguments[1:]))
    if arguments[:1] == ["candles"]:
        return CANDLES_COMMAND.main(arguments[1:], load_settings)
    return COMMAND.main(argv, load_settings)


if __name__ == "__main__":
    sys.exit(main())
