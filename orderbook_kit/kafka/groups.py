"""Consumer groups at work: members that share a topic's partitions, each in a thread of its own.

Each :class:`GroupMember` is what one instance of a real service is: a ``KafkaConsumer`` that
subscribes with a ``group_id`` and polls in a loop. The group's coordinator (a broker) hands
each member some of the partitions, and hands them out again - a **rebalance** - whenever a
member joins or leaves. :func:`wait_until_balanced` waits, with a bound, until that is done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.admin import admin_client, retry_while_retriable
from orderbook_kit.kafka.offsets import group_lag
from orderbook_kit.kafka.reader import open_consumer
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.settings.timing import (
    HEARTBEAT_MS,
    METADATA_MAX_AGE_MS,
    POLL_MS,
    SESSION_TIMEOUT_MS,
)
from orderbook_kit.waiting import poll_until

__all__ = [
    "GroupMember",
    "group_members",
    "wait_for_members",
    "wait_until_balanced",
    "wait_until_empty",
    "wait_until_read",
]

log = logging.getLogger(__name__)


class GroupMember:
    """One member of consumer group ``group_id`` reading ``topic``; it commits after each batch.

    ``assignment`` is the partitions it owns now; ``read`` counts the messages it read per
    partition. Start it with :meth:`start`; :meth:`leave` closes the consumer, which tells the
    coordinator at once (the others then share its partitions).
    """

    def __init__(
        self, name: str, topic: str, group_id: str, settings: Settings | None = None
    ) -> None:
        self.name = name
        self.topic = topic
        self.group_id = group_id
        self.settings = settings or load_settings()
        self.assignment: list[int] = []
        self.read: Counter[int] = Counter()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"member-{name}", daemon=True)

    def start(self) -> GroupMember:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def leave(self, timeout_s: float = 10.0) -> None:
        """Stop polling and leave the group; raises what stopped the member, if anything did."""
        self._stop.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise OrderbookKitError(f"Group member {self.name!r} did not stop in {timeout_s:g} s.")
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            consumer = open_consumer(
                self.settings,
                group_id=self.group_id,
                client_id=self.name,
                auto_offset_reset="earliest",
                heartbeat_interval_ms=HEARTBEAT_MS,
                session_timeout_ms=SESSION_TIMEOUT_MS,
                metadata_max_age_ms=METADATA_MAX_AGE_MS,
            )
        except OrderbookKitError as exc:
            self.error = exc
            return
        try:
            consumer.subscribe([self.topic])
            while not self._stop.is_set():
                batches = consumer.poll(timeout_ms=POLL_MS)
                for tp, records in batches.items():
                    self.read[tp.partition] += len(records)
                if batches:
                    consumer.commit()
                self.assignment = sorted(tp.partition for tp in consumer.assignment())
        except KafkaError as exc:  # kept for leave(), which raises it where it is seen
            self.error = exc
        finally:
            self.assignment = []
            consumer.close()


def wait_until_balanced(
    members: Sequence[GroupMember], settings: Settings | None = None, timeout_s: float = 30.0
) -> dict[str, list[int]]:
    """Wait until the group of ``members`` is stable with exactly them, each owning what the
    coordinator assigned it, and every partition of their topic owned by one of them; return
    {member name: its partitions}.

    "Every partition owned" matters right after a topic is created: a group leader that does
    not know the topic's partitions yet assigns nothing, the group is Stable all the same, and
    it rebalances once the leader's metadata arrives.

    Raises :class:`OrderbookKitError` after ``timeout_s``, saying what the group looked like.
    """
    settings = settings or load_settings()
    (group_id,) = {member.group_id for member in members}
    (topic,) = {member.topic for member in members}
    deadline = time.monotonic() + timeout_s
    seen = "not described yet"
    with admin_client(settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s) as admin:
        partitions = _partitions_of(admin, topic)
        while time.monotonic() < deadline:
            for member in members:
                if member.error is not None:
                    raise OrderbookKitError(f"Group member {member.name!r} stopped: {member.error}")
            group = _describe(admin, group_id, settings, deadline)
            assigned = _assigned_by_coordinator(group)
            seen = f"state {group['group_state']}, assignment {assigned}"
            owned = {member.name: member.assignment for member in members}
            everything = sorted(p for owned_by in assigned.values() for p in owned_by)
            if group["group_state"] == "Stable" and assigned == owned and everything == partitions:
                return assigned
            time.sleep(0.2)
    raise OrderbookKitError(
        f"Group {group_id!r} did not settle within {timeout_s:g} s ({seen}). Check the broker "
        "(`make status`); a member that stopped polling holds up every rebalance."
    )


def _partitions_of(admin: KafkaAdminClient, topic: str) -> list[int]:
    described = admin.describe_topics([topic])
    return sorted(
        p["partition_index"]
        for found in described
        if found.get("name") == topic and not found.get("error_code")
        for p in found.get("partitions", ())
    )


def group_members(group_id: str, settings: Settings | None = None) -> dict[str, list[int]]:
    """{member: the partitions its coordinator assigned it} of ``group_id`` now, by client id
    (the kit's services put their process id in it). Empty lists while a rebalance is under way.
    """
    settings = settings or load_settings()
    deadline = time.monotonic() + settings.kafka.client_timeout_s
    with admin_client(settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s) as admin:
        return _assigned_by_coordinator(_describe(admin, group_id, settings, deadline))


def wait_for_members(
    group_id: str,
    until: Callable[[dict[str, list[int]]], bool],
    settings: Settings | None = None,
    *,
    what: str,
    timeout_s: float = 60.0,
) -> tuple[dict[str, list[int]], float]:
    """Look at :func:`group_members` until ``until(members)`` holds; return them and the
    seconds waited. ``what`` names the wait in the error raised after ``timeout_s``."""
    settings = settings or load_settings()
    return poll_until(
        lambda: group_members(group_id, settings),
        until,
        what=f"{what} in group {group_id!r}",
        timeout_s=timeout_s,
    )


def wait_until_empty(
    group_id: str, settings: Settings | None = None, timeout_s: float = 30.0
) -> float:
    """Wait until ``group_id`` has no members; return the seconds waited.

    A member that was killed (SIGKILL, a crash) stays in the group until the broker stops
    hearing its heartbeats - its session timeout - and only an empty group's offsets can be
    moved. Raises :class:`OrderbookKitError` after ``timeout_s``.
    """
    settings = settings or load_settings()
    started = time.monotonic()
    deadline = started + timeout_s
    state = "not described yet"
    with admin_client(settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s) as admin:
        while time.monotonic() < deadline:
            group = _describe(admin, group_id, settings, deadline)
            state = f"state {group['group_state']}, {len(group['members'])} member(s)"
            if not group["members"]:
                return time.monotonic() - started
            time.sleep(0.2)
    raise OrderbookKitError(
        f"Group {group_id!r} still had members after {timeout_s:g} s ({state}). Stop them, or "
        "wait for their session timeout to pass."
    )


def wait_until_read(
    group_id: str, topic: str, settings: Settings | None = None, timeout_s: float = 30.0
) -> None:
    """Wait until ``group_id`` has committed every message of ``topic`` (its lag is 0)."""
    settings = settings or load_settings()
    deadline = time.monotonic() + timeout_s
    while (lag := int(group_lag(group_id, topic, settings)["lag"].sum())) > 0:
        if time.monotonic() >= deadline:
            raise OrderbookKitError(
                f"Group {group_id!r} is still {lag} message(s) behind on {topic!r} after "
                f"{timeout_s:g} s. Are its members running (and polling)?"
            )
        time.sleep(0.2)


def _describe(
    admin: KafkaAdminClient, group_id: str, settings: Settings, deadline: float
) -> dict[str, Any]:
    """The group as its coordinator describes it. The coordinator may still be loading right
    after a (re)start: it is asked again then, until ``deadline``."""
    return retry_while_retriable(
        lambda: admin.describe_groups([group_id])[group_id],
        doing=f"Describing group {group_id!r}",
        bootstrap_servers=settings.kafka.bootstrap_servers,
        timeout_s=max(deadline - time.monotonic(), 0),
    )


def _assigned_by_coordinator(group: dict[str, Any]) -> dict[str, list[int]]:
    assigned = {}
    for member in group["members"]:
        assignment = member["member_assignment"]  # '' while a rebalance is under way
        topics = assignment["assigned_partitions"] if isinstance(assignment, dict) else []
        partitions = (p for topic in topics for p in topic["partitions"])
        name = member["client_id"]
        if name in assigned:  # two members with one client id: tell them apart
            name = f"{name} ({member['member_id'][-8:]})"
        assigned[name] = sorted(partitions)
    return dict(sorted(assigned.items()))
