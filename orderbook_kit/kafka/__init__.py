"""Kafka plumbing: admin and topics, producing, reading, consumer groups, offsets, replication.

- :mod:`.admin`: the admin client, topics, and retrying while the broker starts;
- :mod:`.producer`: ``TickProducer`` (acknowledged sends, bounded waits);
- :mod:`.reader`: bounded reads of a topic into records, ticks or frames;
- :mod:`.records`, :mod:`.serialization`: records and tick (de)serialising;
- :mod:`.groups`, :mod:`.offsets`, :mod:`.replication`: groups, lag, replicas;
- :mod:`.confluent`: the same producer and reader on confluent-kafka (librdkafka).

Imports: settings, errors, paths and :mod:`orderbook_kit.market` - never a stage.
(Inside this package, ``import kafka`` is still kafka-python: imports are absolute.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook_kit.exports import lazy_exports

if TYPE_CHECKING:
    from orderbook_kit.kafka.admin import admin_client as admin_client
    from orderbook_kit.kafka.admin import delete_pipeline as delete_pipeline
    from orderbook_kit.kafka.admin import ensure_topic as ensure_topic
    from orderbook_kit.kafka.admin import quiet_kafka_logs as quiet_kafka_logs
    from orderbook_kit.kafka.groups import GroupMember as GroupMember
    from orderbook_kit.kafka.groups import group_members as group_members
    from orderbook_kit.kafka.groups import wait_for_members as wait_for_members
    from orderbook_kit.kafka.groups import wait_until_balanced as wait_until_balanced
    from orderbook_kit.kafka.groups import wait_until_empty as wait_until_empty
    from orderbook_kit.kafka.groups import wait_until_read as wait_until_read
    from orderbook_kit.kafka.offsets import end_offsets as end_offsets
    from orderbook_kit.kafka.offsets import group_lag as group_lag
    from orderbook_kit.kafka.offsets import set_group_offsets as set_group_offsets
    from orderbook_kit.kafka.offsets import wait_for_messages as wait_for_messages
    from orderbook_kit.kafka.producer import TickProducer as TickProducer
    from orderbook_kit.kafka.producer import produce_in_background as produce_in_background
    from orderbook_kit.kafka.reader import read_records as read_records
    from orderbook_kit.kafka.reader import read_ticks as read_ticks
    from orderbook_kit.kafka.replication import partition_replicas as partition_replicas
    from orderbook_kit.kafka.replication import wait_for_replicas as wait_for_replicas
    from orderbook_kit.kafka.serialization import TickSerializer as TickSerializer

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "orderbook_kit.kafka.admin": [
            "admin_client",
            "delete_pipeline",
            "ensure_topic",
            "quiet_kafka_logs",
        ],
        "orderbook_kit.kafka.producer": ["TickProducer", "produce_in_background"],
        "orderbook_kit.kafka.reader": ["read_records", "read_ticks"],
        "orderbook_kit.kafka.offsets": [
            "end_offsets",
            "group_lag",
            "set_group_offsets",
            "wait_for_messages",
        ],
        "orderbook_kit.kafka.groups": [
            "GroupMember",
            "group_members",
            "wait_for_members",
            "wait_until_balanced",
            "wait_until_empty",
            "wait_until_read",
        ],
        "orderbook_kit.kafka.replication": ["partition_replicas", "wait_for_replicas"],
        "orderbook_kit.kafka.serialization": ["TickSerializer"],
    },
)
