"""Consumer-group services that keep their progress outside Kafka: the store (offsets in its
database, with the rows) and the archive (commit markers, after the files).

What they share is how such a service meets Kafka - the KafkaConsumer documentation's "Storing
Offsets Outside Kafka":

- when the group gives it partitions, a rebalance listener seeks each one to where the service's
  own records say (the beginning if they say nothing), never where Kafka's group offset is;
- a failure in that listener (which runs inside a poll) is raised by the service after the poll,
  in words of its own;
- an offset resumed at that lies past its partition's end means the topic was deleted and
  created again: the service stops rather than skip the new topic;
- after its own commit it commits the same offsets to Kafka, only so that lag tools see them.

A subclass implements :meth:`_resume_points`, :meth:`_listener_error` and :meth:`_past_the_end`.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.admin import (
    admin_client,
    broker_answers,
    ensure_topic,
    retry_while_retriable,
    unreachable_error,
)
from orderbook_kit.kafka.reader import open_consumer
from orderbook_kit.runtime.polling import (
    SESSION_TIMEOUT_MS,
    OutageTolerantPoller,
    PollingService,
    StatsT,
    offsets_past_the_end,
)

__all__ = ["ResumingService"]

log = logging.getLogger(__name__)


class _ResumeListener(ConsumerRebalanceListener):
    def __init__(self, service: ResumingService[Any]) -> None:
        self.service = service
        self.failure: Exception | None = None  # raised by the service after the poll

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.service._revoked(revoked)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        try:
            self.service._seek_to_resume_points(assigned)
        except Exception as exc:
            self.failure = exc
            raise


class ResumingService(PollingService[StatsT]):
    """A :class:`PollingService` reading ``settings.clean_topic`` as a group, resuming where its
    own records say. Subclasses call :meth:`_join_group` in ``connect`` and
    :meth:`_leave_group` in ``close``."""

    client_id: str  # "orderbook-kit-store": how the broker and its tools name it

    def _join_group(self, group: str) -> None:
        """Join ``group`` on ``settings.clean_topic`` (creating the topic if needed), waiting out
        a broker that is still starting up to ``settings.delivery_timeout_s``."""
        settings = self.settings
        if not broker_answers(settings.bootstrap_servers, settings.client_timeout_s):
            raise unreachable_error(settings.bootstrap_servers, settings.client_timeout_s)
        self._listener = _ResumeListener(self)
        self._to_check: dict[TopicPartition, int] = {}  # resumed at, checked after the poll
        self._consumer = retry_while_retriable(
            lambda: self._subscribe(group),
            doing=f"Starting {self.service_name}",
            bootstrap_servers=settings.bootstrap_servers,
            timeout_s=settings.delivery_timeout_s,
            timeout_variable="KAFKA_DELIVERY_TIMEOUT_S",
        )

    def _subscribe(self, group: str) -> KafkaConsumer:
        settings = self.settings
        with admin_client(settings.bootstrap_servers, settings.client_timeout_s) as admin:
            ensure_topic(admin, settings.clean_topic, settings.partitions)
        consumer = open_consumer(
            settings,
            group_id=group,
            client_id=self.client_id,
            # Only for a partition the service has no record of: the listener seeks to the
            # beginning anyway.
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_TIMEOUT_MS,
        )
        consumer.subscribe([settings.clean_topic], listener=self._listener)
        return consumer

    def _leave_group(self) -> None:
        """Leave the group (safe to call twice, or before joining)."""
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        try:
            consumer.close(autocommit=False)
        except KafkaError as exc:
            log.warning("could not leave the group cleanly (it times out by itself): %s", exc)

    def _poll(
        self, poller: OutageTolerantPoller, limit: int
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        try:
            batches = poller.poll(limit)
        finally:
            self._raise_listener_failure()
        self._check_resume_points()  # before a record of the poll is handled
        return batches

    # --- rebalances (inside a poll: no blocking Kafka request here) ---------------------------

    def _revoked(self, revoked: set[TopicPartition]) -> None:
        log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

    def _resume_points(self, assigned: set[TopicPartition]) -> dict[int, int]:
        """{partition: the next offset to read}, from the service's own records, for the
        partitions just ``assigned``; a partition left out is read from its beginning."""
        raise NotImplementedError

    def _seek_to_resume_points(self, assigned: set[TopicPartition]) -> None:
        assert self._consumer is not None
        points = self._resume_points(assigned)
        for tp in assigned:
            offset = points.get(tp.partition)
            if offset is None:
                # No record of it: the whole partition, whatever Kafka's group offset says (it
                # may be ahead of the service's records, if those were emptied).
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, offset)
                self._to_check[tp] = offset
        log.info("resuming at %s", {tp.partition: points.get(tp.partition) for tp in assigned})

    def _raise_listener_failure(self) -> None:
        failure, self._listener.failure = self._listener.failure, None
        if failure is None:
            return
        if isinstance(failure, OrderbookKitError):
            raise failure
        raise self._listener_error(failure) from failure

    def _listener_error(self, failure: Exception) -> OrderbookKitError:
        """The error to stop with when reading the resume points failed unexpectedly."""
        raise NotImplementedError

    def _check_resume_points(self) -> None:
        if not self._to_check:
            return
        assert self._consumer is not None
        sought, self._to_check = self._to_check, {}
        for tp, (offset, end) in offsets_past_the_end(
            self._consumer, sought, self.settings
        ).items():
            raise self._past_the_end(tp, offset, end)

    def _past_the_end(self, tp: TopicPartition, offset: int, end: int) -> OrderbookKitError:
        """The error to stop with when the records say ``offset`` but the partition ends at
        ``end`` (the topic was deleted and created again)."""
        raise NotImplementedError

    # --- after the service's own commit -------------------------------------------------------

    def _commit_to_kafka(self, next_offsets: dict[TopicPartition, int]) -> None:
        """Tell Kafka too. Advisory: only lag tools read it, so a failure is only logged (the
        group's lag looks larger until the next commit)."""
        assert self._consumer is not None
        offsets = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in next_offsets.items()}
        try:
            self._consumer.commit(offsets, timeout_ms=int(self.settings.client_timeout_s * 1000))
        except (CommitFailedError, KafkaError) as exc:
            log.warning("offsets committed by %s, but not to Kafka (%s)", self.service_name, exc)
