"""Reaching the broker: bounded connection attempts and the one "broker unreachable" message.

kafka-python clients connect inside their constructors; these helpers give every connection
a deadline and turn kafka-python's timeout into :class:`BrokerUnreachableError`, naming the fix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError, TopicAlreadyExistsError

from orderbook_kit.errors import BrokerError, BrokerUnreachableError, OrderbookKitError
from orderbook_kit.settings.environment import Settings

__all__ = [
    "admin_client",
    "broker_answers",
    "delete_pipeline",
    "ensure_topic",
    "message_size_limit",
    "raise_message_size_limit",
    "retry_while_retriable",
    "topic_config",
    "unreachable_error",
]

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 2.0
RETRY_PAUSE_S = 0.25
# How long a topic just created may take to be described fully by every broker.
TOPIC_SETTLE_S = 10.0

T = TypeVar("T")


def unreachable_error(bootstrap_servers: str, timeout_s: float) -> BrokerUnreachableError:
    return BrokerUnreachableError(
        f"No Kafka broker answered at {bootstrap_servers} within {timeout_s:g} s. Start one with "
        "`make broker` (or `python -m orderbook_kit.lab.broker start`, or `docker compose up -d "
        "--wait`), or point KAFKA_BOOTSTRAP_SERVERS at a broker that is running."
    )


def client_timeouts(timeout_s: float) -> dict[str, int]:
    """kafka-python settings that bound connecting and each request by ``timeout_s``."""
    timeout_ms = max(int(timeout_s * 1000), 100)
    return {
        "bootstrap_timeout_ms": timeout_ms,
        "request_timeout_ms": max(timeout_ms, 1000),
        # Back off quickly between reconnects so a broker that is starting is found at once.
        "reconnect_backoff_max_ms": 1000,
    }


@contextmanager
def admin_client(bootstrap_servers: str, timeout_s: float) -> Iterator[KafkaAdminClient]:
    """An admin client that has answered a metadata request, closed on exit."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap_servers,
            client_id="orderbook-kit-admin",
            **client_timeouts(timeout_s),
        )
    except KafkaError as exc:
        raise unreachable_error(bootstrap_servers, timeout_s) from exc
    try:
        yield admin
    finally:
        admin.close()


def retry_while_retriable(
    action: Callable[[], T],
    *,
    doing: str,
    bootstrap_servers: str,
    timeout_s: float,
    timeout_variable: str = "KAFKA_CLIENT_TIMEOUT_S",
) -> T:
    """``action()``, tried again for up to ``timeout_s`` while it fails with a retriable error.

    Right after a broker (re)starts it answers some requests before others: the group
    coordinator, for one, replies "not available" while it loads ``__consumer_offsets``. Those
    errors are marked retriable by kafka-python and pass on their own within seconds, as does a
    broker that is briefly unreachable (restarting); anything else, or an outage longer than
    ``timeout_s`` (set by ``timeout_variable``), is raised as the kit's own error.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return action()
        except (KafkaError, BrokerUnreachableError) as exc:
            if isinstance(exc, KafkaError) and not exc.retriable:
                raise BrokerError(f"{doing} at {bootstrap_servers} failed: {exc}") from exc
            if time.monotonic() >= deadline:
                raise BrokerUnreachableError(
                    f"{doing} at {bootstrap_servers} still failed after {timeout_s:g} s ({exc}). "
                    "The broker may be down or restarting: check `make status` and `make logs`, "
                    f"or allow a longer wait with {timeout_variable}."
                ) from exc
            log.debug("%s: %s; trying again", doing, exc)
            time.sleep(RETRY_PAUSE_S)


@contextmanager
def quiet_kafka_logs(*more_loggers: str) -> Iterator[None]:
    """Silence kafka-python's connection errors (and the loggers named in ``more_loggers``, such
    as ``orderbook_kit.kafka.producer``'s report of a failed delivery) while a failure is expected
    and handled - so a notebook shows the explanation, not a log line in red before it."""
    loggers = [logging.getLogger(name) for name in ("kafka", *more_loggers)]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, previous, strict=True):
            logger.setLevel(level)


def broker_answers(bootstrap_servers: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True if a Kafka broker at ``bootstrap_servers`` answers a metadata request in time."""
    try:
        with quiet_kafka_logs(), admin_client(bootstrap_servers, timeout_s) as admin:
            admin.describe_cluster()
    except (BrokerUnreachableError, KafkaError, OSError) as exc:
        log.debug("no broker at %s: %s", bootstrap_servers, exc)
        return False
    return True


def ensure_topic(
    admin: KafkaAdminClient, topic: str, partitions: int, configs: dict[str, str] | None = None
) -> bool:
    """Create ``topic`` with ``partitions`` partitions (and topic ``configs``) unless it exists;
    True if created.

    Topics are created explicitly because an auto-created topic can drop or delay the first
    messages sent to it (and the kit's brokers disable auto-creation anyway).
    """
    if topic in admin.list_topics():
        return False
    try:
        admin.create_topics(
            {
                topic: {
                    "num_partitions": partitions,
                    # The broker's own default.replication.factor: 1 on a single broker, 3 on
                    # the kit's cluster (where min.insync.replicas is 2).
                    "replication_factor": -1,
                    "configs": dict(configs or {}),
                }
            },
            wait_for_metadata=True,
        )
    except TopicAlreadyExistsError:  # created by someone else between our two calls
        return False
    log.info("created topic %r with %d partition(s)", topic, partitions)
    return True


def topic_identity(
    admin: KafkaAdminClient, topic: str, timeout_s: float = TOPIC_SETTLE_S
) -> tuple[str, int]:
    """(id, partition count) of existing ``topic``. The id tells a topic deleted and created
    again under the same name from the one before.

    A topic another client has just created can be described with no partitions yet (two gates
    starting together both create the state topic): it is described again until it has some,
    for up to ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        (described,) = admin.describe_topics([topic])
        if described["partitions"] or time.monotonic() >= deadline:
            return str(described["topic_id"]), len(described["partitions"])
        time.sleep(0.2)


MAX_MESSAGE_BYTES_CONFIG = "max.message.bytes"


def topic_config(
    admin: KafkaAdminClient, topic: str, name: str, timeout_s: float = TOPIC_SETTLE_S
) -> str:
    """The value of topic config ``name`` of ``topic`` (its own, or the broker's default).

    A topic just created (by us or by another client) can be described by a broker that does
    not know it yet, without its configs: it is asked again, for up to ``timeout_s``.
    """
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, {name: None})
    deadline = time.monotonic() + timeout_s
    while True:
        described = admin.describe_configs([resource], config_filter="all")
        value = described.get("topic", {}).get(topic, {}).get(name)
        if value is not None:
            return str(value["value"])
        if time.monotonic() >= deadline:
            raise OrderbookKitError(
                f"Kafka did not say the setting {name!r} of topic {topic!r} within "
                f"{timeout_s:g} s. Does the topic exist? "
                "(`python -m orderbook_kit.lab.broker topics --describe`)"
            )
        time.sleep(0.2)


def message_size_limit(admin: KafkaAdminClient, topic: str) -> int:
    """The largest record batch ``topic`` accepts, in bytes (its ``max.message.bytes``)."""
    return int(topic_config(admin, topic, MAX_MESSAGE_BYTES_CONFIG))


def raise_message_size_limit(admin: KafkaAdminClient, topic: str, limit: int) -> None:
    """Let ``topic`` accept records of up to ``limit`` bytes (an incremental config change)."""
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, {MAX_MESSAGE_BYTES_CONFIG: limit})
    admin.alter_configs([resource])
    log.info("raised %s of topic %r to %d bytes", MAX_MESSAGE_BYTES_CONFIG, topic, limit)


def delete_pipeline(settings: Settings, groups: Iterable[str] = ()) -> None:
    """Delete the raw, clean, dead-letter, gate state and book topics of ``settings``, its
    quality and store groups and the consumer ``groups`` named.

    For runs made with :meth:`Settings.isolated`: Kafka keeps messages until retention ends
    whether or not anyone reads them, and committed offsets for a week after a group empties,
    so a finished run tidies up after itself.
    """
    with admin_client(settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s) as admin:
        existing_groups = {group["group_id"] for group in admin.list_groups()}
        pipeline_groups = {
            settings.gate.group,
            settings.store.group,
            settings.store.candles_group,
            settings.book.group,
            settings.candles.group,
            *groups,
        }
        doomed = [g for g in pipeline_groups if g in existing_groups]
        if doomed:
            admin.delete_groups(sorted(doomed))
        existing = set(admin.list_topics())
        topics = set(settings.topics.named().values())
        # The candles service's changelog topics (Quix Streams names them after its group).
        changelogs = {t for t in existing if t.startswith(f"changelog__{settings.candles.group}--")}
        admin.delete_topics(sorted((topics & existing) | changelogs))
