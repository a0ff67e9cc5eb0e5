"""The book service: keep every symbol's order book from the raw depth feed, publish it.

python -m orderbook_kit.book                    # run until Ctrl-C (or SIGTERM)
python -m orderbook_kit.book --idle 5 --quiet   # or once no message came for 5 seconds
python -m orderbook_kit.book --snapshot-every 100 --snapshot-interval 1

Updates that continue a book go to the update topic, the books to the snapshot topic (every N
updates or T seconds), the rest to the dead-letter topic with the reason. Exactly once: Ctrl-C
finishes the batch and commits it; killed, a restart goes on from the last committed batch.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from orderbook_kit.book.metrics import BookMetrics
from orderbook_kit.book.service import BookService, Judged
from orderbook_kit.market.book_messages import BookSnapshot
from orderbook_kit.runtime.service import ConsumerCommand
from orderbook_kit.settings.environment import Settings, load_settings


def print_judged(judged: Judged) -> None:
    verdict, record = judged.verdict, judged.record
    where = f"{record.topic}/{record.partition}@{record.offset}"
    message = verdict.message
    if verdict.reason is not None:
        print(f"set aside {where} {verdict.reason}: {verdict.detail}", flush=True)
    elif isinstance(message, BookSnapshot):
        taken = "taken: the book again" if verdict.resynced else "not needed"
        print(f"snapshot  {where} {message.symbol} seq {message.seq} ({taken})", flush=True)
    elif message is not None:
        print(f"update    {where} {message.symbol} seq {message.seq}", flush=True)


def announce(settings: Settings) -> str:
    topics = settings.topics
    return (
        f"Connecting to Kafka at {settings.kafka.bootstrap_servers}\n"
        f"Keeping the books of '{topics.book_raw}' as group '{settings.book.group}': updates to "
        f"'{topics.book_updates}', snapshots to '{topics.book_snapshots}', the rest to "
        f"'{topics.book_dead_letters}'"
    )


COMMAND = ConsumerCommand(
    prog="python -m orderbook_kit.book",
    description=__doc__.splitlines()[0],
    topic_key="topics.book_raw",
    reads="raw depth topic to read",
    group_key="book.group",
    flags=[
        ("--updates-topic", "topics.book_updates", "where updates that continue a book go"),
        ("--snapshots-topic", "topics.book_snapshots", "where the books go (compacted)"),
        ("--dlq-topic", "topics.book_dead_letters", "where messages set aside go"),
        ("--instance", "book.instance", "this service's name in its group; one per running copy"),
        ("--snapshot-every", "book.snapshot_every", "updates of a symbol between its snapshots"),
        ("--snapshot-interval", "book.snapshot_interval_s", "seconds between a symbol's snapshots"),
    ],
    announce=announce,
    new_metrics=BookMetrics,
    service=BookService,
    reporter="on_judged",
    printer=print_judged,
)


def main(argv: Sequence[str] | None = None) -> int:
    return COMMAND.main(argv, load_settings)


if __name__ == "__main__":
    sys.exit(main())
