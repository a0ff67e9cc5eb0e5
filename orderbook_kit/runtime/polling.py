"""Polling a consumer group through broker outages, and when a run ends (for :mod:`.group_loop`).

kafka-python's ``poll`` can raise a retriable error (a refused connection while it looks for the
group coordinator) instead of waiting: the broker may be back a moment later. A service waits and
tries again, and stops with a clear error only once the outage has lasted as long as the kit
waits for any delivery (``KAFKA_DELIVERY_TIMEOUT_S``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TypeAlias

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from orderbook_kit.errors import BrokerUnreachableError, OrderbookKitError
from orderbook_kit.kafka.admin import retry_while_retriable
from orderbook_kit.kafka.confluent.consumer import ConfluentGroupConsumer
from orderbook_kit.kafka.log_offsets import end_offsets_of
from orderbook_kit.settings.environment import Settings
from orderbook_kit.settings.timing import SERVICE_POLL_MS, SESSION_TIMEOUT_MS

__all__ = [
    "OUTAGE_RETRY_S",
    "GroupConsumer",
    "OutageClock",
    "OutageTolerantPoller",
    "RunLimits",
    "offsets_past_the_end",
]

log = logging.getLogger(__name__)

OUTAGE_RETRY_S = 0.5  # between polls while the broker is unreachable
# How long a run waits for its first partitions before --idle starts counting: the session timeout
# of a dead predecessor, and a rebalance, with room to spare.
ASSIGNMENT_GRACE_S = 2 * SESSION_TIMEOUT_MS / 1000 + 10

Batches = dict[TopicPartition, list[ConsumerRecord]]
# A group member of either client: librdkafka's is shaped like kafka-python's (see the adapter).
GroupConsumer: TypeAlias = KafkaConsumer | ConfluentGroupConsumer


def offsets_past_the_end(
    consumer: GroupConsumer, sought: dict[TopicPartition, int], settings: Settings
) -> dict[TopicPartition, tuple[int, int]]:
    """The partitions whose ``sought`` offset (where a service resumes, from its own records) is
    past the partition's end, with both offsets. Such an offset means the topic was deleted and
    created again: the service's records describe the old topic, and must not make it skip the
    new one."""
    if not sought:
        return {}
    ends = retry_while_retriable(
        lambda: end_offsets_of(consumer, list(sought), int(settings.kafka.client_timeout_s * 1000)),
        doing="Reading the end offsets of the partitions it resumes",
        bootstrap_servers=settings.kafka.bootstrap_servers,
        timeout_s=settings.kafka.client_timeout_s,
    )
    return {
        tp: (offset, ends[tp])
        for tp, offset in sorted(sought.items())
        if tp in ends and offset > ends[tp]
    }


class OutageClock:
    """How long something has kept failing: :meth:`failed` starts the clock (logging ``what`` once)
    and returns the seconds since; :meth:`recovered` stops it. The callers raise once that passes
    ``settings.kafka.delivery_timeout_s``, so no outage is waited out without end."""

    def __init__(self, what: str) -> None:
        self.what = what  # "the broker is unreachable", for the log
        self._since: float | None = None

    def failed(self, exc: Exception) -> float:
        now = time.monotonic()
        if self._since is None:
            self._since = now
            log.warning("%s (%s); waiting", self.what, exc)
        return now - self._since

    def recovered(self) -> None:
        self._since = None


class OutageTolerantPoller:
    """``poll(limit)`` on ``consumer``, riding out outages up to
    ``settings.kafka.delivery_timeout_s``.

    ``service`` names the service in messages ("the gate"); ``on_restart`` says what a restart
    after it stopped will do ("a restart checks the rest").
    """

    def __init__(
        self, consumer: GroupConsumer, settings: Settings, *, service: str, on_restart: str
    ) -> None:
        self.consumer = consumer
        self.settings = settings
        self.service = service
        self.on_restart = on_restart
        self._outage = OutageClock("the broker is unreachable")

    def poll(self, limit: int) -> Batches:
        """One poll of at most ``limit`` records; empty while the broker is unreachable."""
        try:
            batches = self.consumer.poll(timeout_ms=SERVICE_POLL_MS, max_records=limit)
        except KafkaError as exc:
            if not exc.retriable:
                raise OrderbookKitError(
                    f"{self.service.capitalize()} could not read from Kafka: {exc}. "
                    "See `make logs`."
                ) from exc
            self._wait_out(exc)
            return {}
        self._outage.recovered()
        return batches

    def _wait_out(self, exc: KafkaError) -> None:
        waited = self._outage.failed(exc)
        if waited > self.settings.kafka.delivery_timeout_s:
            raise BrokerUnreachableError(
                f"The broker at {self.settings.kafka.bootstrap_servers} was unreachable for "
                f"{waited:.0f} s ({exc}), so {self.service} stopped. Every batch it finished is "
                f"committed; {self.on_restart}. Start the broker (`make broker`) or allow a "
                "longer wait with KAFKA_DELIVERY_TIMEOUT_S."
            ) from exc
        time.sleep(OUTAGE_RETRY_S)


class RunLimits:
    """When a service's run ends: after ``count`` messages, ``duration_s`` seconds, ``stop``, or
    on idle - whichever is first; with none, never.

    *Idle* means caught up: no message came for ``idle_s`` seconds **and** the consumer has read
    up to the end offsets of every partition it was assigned. A slow first fetch on a loaded
    machine is not "no more messages", and must not end a run that has not read what is waiting.
    Idle time also does not count while the consumer waits for its first partitions (up to
    ``ASSIGNMENT_GRACE_S``): a service restarted after a crash waits for the group to take the
    partitions away from its dead predecessor. A member that never gets a partition (more members
    than partitions) has nothing to catch up with, and stops after the grace and its idle time.

    Whether the consumer caught up is asked of the broker (``settings.kafka.client_timeout_s`` a
    request); if it cannot be told for ``settings.kafka.delivery_timeout_s``, the run stops with
    BrokerUnreachableError rather than wait without end.
    """

    def __init__(
        self,
        consumer: GroupConsumer,
        *,
        count: int | None = None,
        duration_s: float | None = None,
        idle_s: float | None = None,
        stop: threading.Event | None = None,
        settings: Settings,
    ) -> None:
        self.consumer = consumer
        self.count, self.duration_s, self.idle_s, self.stop = count, duration_s, idle_s, stop
        self.settings = settings
        self.started = self.last_message_at = time.monotonic()
        self._unconfirmed = OutageClock("idle, but the broker cannot say whether all was read")

    def reached(self, processed: int) -> bool:
        now = time.monotonic()
        if now - self.started < ASSIGNMENT_GRACE_S and not self.consumer.assignment():
            self.last_message_at = now
        return (
            (self.stop is not None and self.stop.is_set())
            or (self.count is not None and processed >= self.count)
            or (self.duration_s is not None and now - self.started >= self.duration_s)
            or (
                self.idle_s is not None
                and now - self.last_message_at >= self.idle_s
                and self.caught_up()
            )
        )

    def caught_up(self) -> bool:
        """Has the consumer read up to the end of every partition it is assigned? (True with
        none assigned.) False while the broker cannot tell, up to the delivery timeout."""
        assigned = list(self.consumer.assignment())
        if not assigned:
            return True
        timeout_ms = int(self.settings.kafka.client_timeout_s * 1000)
        try:
            ends = end_offsets_of(self.consumer, assigned, timeout_ms)
            behind = [
                tp
                for tp in assigned
                if tp in ends and self.consumer.position(tp, timeout_ms=timeout_ms) < ends[tp]
            ]
        except KafkaError as exc:
            self._not_confirmed(exc)
            return False
        self._unconfirmed.recovered()
        return not behind

    def _not_confirmed(self, exc: KafkaError) -> None:
        waited = self._unconfirmed.failed(exc)
        if waited > self.settings.kafka.delivery_timeout_s:
            raise BrokerUnreachableError(
                f"The run was idle, but the broker at {self.settings.kafka.bootstrap_servers} "
                "could "
                f"not say for {waited:.0f} s whether everything was read ({exc}), so it "
                "stopped. Every batch it finished is committed. Start the broker "
                "(`make broker`) or allow a longer wait with KAFKA_DELIVERY_TIMEOUT_S."
            ) from exc

    def batch_size(self, processed: int, largest: int) -> int:
        """How many records the next poll may return: ``largest``, or what is left of ``count``."""
        return largest if self.count is None else min(largest, self.count - processed)

    def got_messages(self) -> None:
        self.last_message_at = time.monotonic()
