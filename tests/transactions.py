"""Catching a transactional service at the moment that matters most for exactly once: frozen with
its transaction open and records of it already in the log."""

from __future__ import annotations

import time
from collections.abc import Collection

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import TransactionState
from kafka.errors import KafkaError

from orderbook_kit.kafka.admin import admin_client
from orderbook_kit.kafka.reader import open_consumer
from orderbook_kit.runtime.launcher import ServiceProcess
from orderbook_kit.settings.environment import Settings

SETTLE_S = 1.0  # how long a frozen service's transaction must stay open to count as open


def pause_mid_transaction(
    service: ServiceProcess,
    settings: Settings,
    transactional_id: str,
    timeout_s: float = 60,
    *,
    outputs: Collection[str] | None = None,
) -> list[TopicPartition]:
    """Freeze ``service`` (SIGSTOP) at a moment its transaction is open and holds records in the
    log: the broker says the transaction is ongoing, and a partition it writes ends past its last
    stable offset. Other moments are let go (SIGCONT) and the next one tried, for ``timeout_s``.
    The partitions that hold its uncommitted records; with ``outputs``, only a moment when some
    of them are in those topics counts (a transaction that holds only its consumer offsets -
    Kafka writes them to ``__consumer_offsets`` in the transaction - leaves no aborted record
    in the service's own topics)."""
    deadline = time.monotonic() + timeout_s
    with (
        admin_client(settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s) as admin,
        open_consumer(settings, isolation_level="read_uncommitted") as log_ends,
        open_consumer(settings) as stable_ends,
    ):
        while time.monotonic() < deadline:
            service.pause()
            try:
                found = admin.describe_transactions([transactional_id])[transactional_id]
                written = [
                    tp for tp in found.topic_partitions if outputs is None or tp.topic in outputs
                ]
                if found.state == TransactionState.ONGOING and written:
                    ends, stable = log_ends.end_offsets(written), stable_ends.end_offsets(written)
                    holding = [tp for tp in written if stable[tp] < ends[tp]]
                    if holding and still_ongoing(admin, transactional_id):
                        return holding  # frozen, the transaction open, its records in the log
            except (KafkaError, KeyError):
                # The coordinator is moving (a node was killed), or the consumer does not know
                # a new partition yet (kafka-python 3.0.12's end_offsets raises KeyError): again.
                pass
            service.resume()
    raise AssertionError(f"no open transaction of {transactional_id!r} in {timeout_s:g} s")


def still_ongoing(admin: KafkaAdminClient, transactional_id: str) -> bool:
    """Whether the transaction stays open for a second while its producer is frozen. A commit
    the producer sent just before it froze may still be on its way: the broker says *Ongoing*
    until it has written the commit's first step to its (replicated) log, and then commits."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        found = admin.describe_transactions([transactional_id])[transactional_id]
        if found.state != TransactionState.ONGOING:
            return False
    return True


def gate_outputs(settings: Settings) -> set[str]:
    """The topics the quality gate writes in its transactions."""
    topics = settings.topics
    return {topics.clean, topics.dead_letters, topics.gate_state}
