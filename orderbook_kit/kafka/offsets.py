"""Where each consumer group is in the log: committed offsets, end offsets and lag."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pandas as pd
from kafka import TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.admin import admin_client, retry_while_retriable
from orderbook_kit.kafka.log_offsets import end_offsets_of
from orderbook_kit.kafka.reader import READ_UNCOMMITTED, open_consumer
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.waiting import poll_until

__all__ = [
    "committed_total",
    "end_offsets",
    "group_lag",
    "set_group_offsets",
    "wait_for_committed_reads",
    "wait_for_messages",
]

log = logging.getLogger(__name__)


def end_offsets(
    topic: str, settings: Settings | None = None, *, isolation_level: str = "read_committed"
) -> dict[int, int]:
    """{partition: offset the next message will get} for every partition of ``topic``: as readers
    of committed data see it (the default: the *last stable offset*, where the oldest open
    transaction begins), or with ``isolation_level="read_uncommitted"`` the log's end."""
    settings = settings or load_settings()
    consumer = open_consumer(settings, isolation_level=isolation_level)
    timeout_ms = int(settings.kafka.client_timeout_s * 1000)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = retry_while_retriable(
            lambda: end_offsets_of(consumer, partitions, timeout_ms),
            doing=f"Reading the end offsets of {topic!r}",
            bootstrap_servers=settings.kafka.bootstrap_servers,
            timeout_s=settings.kafka.client_timeout_s,
        )
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        consumer.close()


def group_lag(group_id: str, topic: str, settings: Settings | None = None) -> pd.DataFrame:
    """Per partition: the group's committed offset, the log's end offset, and the lag between.

    On a topic written in transactions (the clean topic) the end offset counts each
    transaction's commit marker, which is no message: a reader that commits its consumer's
    position, past the markers, is at lag 0 at the end. A transaction still open shows as lag
    too - ``read_committed`` readers cannot read past its start, the *last stable offset*."""
    settings = settings or load_settings()
    with admin_client(settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s) as admin:
        committed = retry_while_retriable(
            lambda: admin.list_group_offsets({group_id: None}).get(group_id, {}),
            doing=f"Reading the committed offsets of group {group_id!r}",
            bootstrap_servers=settings.kafka.bootstrap_servers,
            timeout_s=settings.kafka.client_timeout_s,
        )
    rows = []
    for partition, end in sorted(end_offsets(topic, settings).items()):
        mark = committed.get(TopicPartition(topic, partition))
        position = mark.offset if mark is not None and mark.offset >= 0 else 0
        row = {"group": group_id, "partition": partition, "committed": position, "end": end}
        rows.append({**row, "lag": end - position})
    # Named columns even with no rows (a topic not created yet), so sums and filters still work.
    return pd.DataFrame(rows, columns=["group", "partition", "committed", "end", "lag"])


def committed_total(group_id: str, topic: str, settings: Settings | None = None) -> int:
    """How far ``group_id`` has come through ``topic``: its committed offsets summed over the
    partitions (0 before its first commit), or -1 while the broker cannot say - a busy or
    restarting broker, so that a wait on a group's progress asks again rather than fail."""
    try:
        return int(group_lag(group_id, topic, settings)["committed"].sum())
    except (KafkaError, OrderbookKitError):
        return -1


def set_group_offsets(
    group_id: str, topic: str, offsets: dict[int, int], settings: Settings | None = None
) -> None:
    """Move ``group_id``'s committed offsets on ``topic`` to ``offsets`` ({partition: offset}).

    What `kafka-consumer-groups --reset-offsets` does: the group's next member starts there. The
    group must have no running member (the coordinator refuses otherwise).
    """
    settings = settings or load_settings()
    wanted = {TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()}
    with admin_client(settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s) as admin:
        results = admin.alter_group_offsets(group_id, wanted)
    failed = {tp.partition: error for tp, error in results.items() if error.errno != 0}
    if failed:
        raise OrderbookKitError(
            f"Could not move group {group_id!r} on {topic!r}: {failed}. Stop its members first "
            "(a group with running members keeps its own offsets)."
        )


def wait_for_messages(
    topic: str, count: int, settings: Settings | None = None, *, timeout_s: float = 60.0
) -> int:
    """Wait until ``topic`` holds at least ``count`` messages (over all its partitions); return
    how many it holds then. Raises :class:`OrderbookKitError` after ``timeout_s``."""
    settings = settings or load_settings()
    held, _ = poll_until(
        lambda: sum(end_offsets(topic, settings).values()),
        lambda held: held >= count,
        what=f"{count} messages in {topic!r}",
        timeout_s=timeout_s,
    )
    return held


def wait_for_committed_reads(
    topics: Iterable[str], settings: Settings | None = None, *, timeout_s: float = 10.0
) -> bool:
    """Wait until readers of committed data can read every record ``topics`` hold now: each
    partition's last stable offset reaches its end as it is now. The broker answers a
    transaction's commit before it has written the commit markers that make the records readable
    (a read right after the commit may find none of them); this waits for the markers. False
    (and logged) if, after ``timeout_s``, another producer's open transaction still holds a
    partition back."""
    settings = settings or load_settings()
    ends = open_consumer(settings, isolation_level=READ_UNCOMMITTED)
    stable = open_consumer(settings)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(ends.partitions_for_topic(topic) or ())
        ]
        timeout_ms = int(settings.kafka.client_timeout_s * 1000)
        targets = end_offsets_of(ends, partitions, timeout_ms)
        behind = lambda: {  # noqa: E731
            tp: end
            for tp, end in end_offsets_of(stable, partitions, timeout_ms).items()
            if end < targets[tp]
        }
        poll_until(behind, lambda left: not left, what="committed reads", timeout_s=timeout_s)
    except (KafkaError, OrderbookKitError) as exc:
        log.warning("readers of committed data may still be held back: %s", exc)
        return False
    finally:
        ends.close()
        stable.close()
    return True
