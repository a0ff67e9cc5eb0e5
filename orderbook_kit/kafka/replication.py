"""Where a topic's partitions live: each one's leader, replicas and in-sync replicas (ISR).

On a cluster every partition has a *leader*, which takes the writes, and *followers*, which copy
it. The followers that are caught up form the in-sync replica set. A producer with ``acks=all``
gets its acknowledgement once every in-sync replica has the message; a topic's
``min.insync.replicas`` says how small that set may become before Kafka refuses such writes
(``NotEnoughReplicas``) rather than keep them on too few brokers.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import pandas as pd
from kafka import errors as kafka_errors
from kafka.errors import KafkaError

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.admin import admin_client, retry_while_retriable, topic_config
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.waiting import poll_until

__all__ = [
    "MIN_INSYNC_CONFIG",
    "partition_replicas",
    "replication_shortfall",
    "wait_for_replicas",
]

log = logging.getLogger(__name__)

MIN_INSYNC_CONFIG = "min.insync.replicas"
NO_LEADER = -1  # what Kafka reports for a partition none of whose replicas is running
DESCRIBE_PATIENCE_S = 15.0
# The diagnosis runs after a failure has already been waited for: it gets only a short look.
DIAGNOSIS_PROBE_S = 0.5
DIAGNOSIS_TIMEOUT_S = 3.0


def partition_replicas(topic: str, settings: Settings | None = None) -> pd.DataFrame:
    """One row per partition of ``topic``: ``leader`` (None without one), ``replicas``,
    ``in_sync`` (node ids, sorted) and ``min_in_sync`` (the topic's ``min.insync.replicas``).

    Nodes that are down may be in the bootstrap list, and a client tries them at random: the
    look is retried for ``DESCRIBE_PATIENCE_S`` (or ``settings.kafka.client_timeout_s`` if longer).
    """
    settings = settings or load_settings()
    described, min_in_sync = retry_while_retriable(
        lambda: _describe(topic, settings, settings.kafka.client_timeout_s),
        doing=f"Describing topic {topic!r}",
        bootstrap_servers=settings.kafka.bootstrap_servers,
        timeout_s=max(settings.kafka.client_timeout_s, DESCRIBE_PATIENCE_S),
    )
    rows = [
        {
            "partition": p["partition_index"],
            "leader": None if p["leader_id"] == NO_LEADER else p["leader_id"],
            "replicas": sorted(p["replica_nodes"]),
            "in_sync": sorted(p["isr_nodes"]),
            "min_in_sync": min_in_sync,
        }
        for p in described["partitions"]
    ]
    columns = ["partition", "leader", "replicas", "in_sync", "min_in_sync"]
    frame = pd.DataFrame(rows, columns=columns).sort_values("partition")
    return frame.astype({"leader": "Int64"}).reset_index(drop=True)


def wait_for_replicas(
    topic: str,
    settings: Settings,
    until: Callable[[pd.DataFrame], bool],
    *,
    what: str,
    timeout_s: float = 60.0,
) -> tuple[pd.DataFrame, float]:
    """Look at :func:`partition_replicas` until ``until(table)`` holds; return the table and
    the seconds waited. ``what`` names the wait in the error raised after ``timeout_s``."""
    return poll_until(
        lambda: partition_replicas(topic, settings),
        until,
        what=f"{what} on {topic!r} (`python -m orderbook_kit.lab.broker status` shows the nodes)",
        timeout_s=timeout_s,
        show=lambda table: table.to_string(index=False),
    )


def replication_shortfall(topic: str, settings: Settings) -> str:
    """Why ``acks=all`` writes to ``topic`` cannot be acknowledged now, as a sentence - or ""
    when every partition has a leader and enough in-sync replicas (or nobody answers: this is a
    diagnosis added to an error, and must never hide it)."""
    # When no broker is there at all (the usual outage), there is nothing to look up: a refused
    # connection says so at once, and the error is not delayed.
    if not _any_listening(settings.kafka.bootstrap_servers):
        return ""
    try:
        described, min_in_sync = _describe(topic, settings, DIAGNOSIS_TIMEOUT_S)
    except (KafkaError, OrderbookKitError, OSError, ValueError) as exc:
        log.debug("no replication diagnosis for %r: %s", topic, exc)
        return ""
    leaderless = []
    short: list[str] = []
    for p in sorted(described["partitions"], key=lambda p: p["partition_index"]):
        index, in_sync = p["partition_index"], sorted(p["isr_nodes"])
        if p["leader_id"] == NO_LEADER:
            leaderless.append(str(index))
        elif len(in_sync) < min_in_sync:
            short.append(f"{index} (in sync: node {', '.join(map(str, in_sync))})")
    if not leaderless and not short:
        return ""
    problems = []
    if short:
        problems.append(
            f"NotEnoughReplicas - partition(s) {'; '.join(short)} of {topic!r} have fewer in-sync "
            f"replicas than its {MIN_INSYNC_CONFIG}={min_in_sync}, so Kafka refuses acks=all "
            "writes rather than keep them on too few brokers"
        )
    if leaderless:
        problems.append(f"partition(s) {', '.join(leaderless)} of {topic!r} have no leader")
    return (
        f"The cause: {'; and '.join(problems)}. Start the stopped brokers "
        "(`python -m orderbook_kit.lab.broker status` shows them); writes go on once enough "
        "replicas are back in sync."
    )


def _any_listening(bootstrap_servers: str) -> bool:
    """Does anything accept a TCP connection at one of ``bootstrap_servers``' addresses?"""
    for address in bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=DIAGNOSIS_PROBE_S).close()
        except (OSError, ValueError):
            continue
        return True
    return False


def _describe(topic: str, settings: Settings, timeout_s: float) -> tuple[dict[str, Any], int]:
    with admin_client(settings.kafka.bootstrap_servers, timeout_s) as admin:
        (described,) = admin.describe_topics([topic])
        min_in_sync = int(topic_config(admin, topic, MIN_INSYNC_CONFIG))
    code = described.get("error_code")
    if code:
        error = kafka_errors.for_code(code)
        if error.retriable:
            # A node that has not caught up with the cluster's metadata (just restarted, or
            # busy) answers "unknown topic" for a topic it will know a moment later: try again.
            raise error(f"describing topic {topic!r}")
        raise OrderbookKitError(f"Kafka could not describe topic {topic!r}: {described}")
    return described, min_in_sync
