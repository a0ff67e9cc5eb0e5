"""The confluent-kafka option without a broker: settings translated, never silently dropped, and
clear errors when the package is missing or the choice is misspelt."""

from __future__ import annotations

import sys

import pytest
from kafka.errors import CommitFailedError

from orderbook_kit.errors import OrderbookKitError, SettingsError
from orderbook_kit.kafka.admin import client_timeouts
from orderbook_kit.kafka.confluent import loading
from orderbook_kit.kafka.confluent.consumer import as_kafka_error, consumer_config
from orderbook_kit.kafka.confluent.producer import SAME_PARTITIONS_AS_JAVA, producer_config
from orderbook_kit.kafka.producer import PRODUCER_TUNING
from orderbook_kit.settings.environment import load_settings


def test_the_kits_producer_settings_mean_the_same_to_librdkafka() -> None:
    config = producer_config(
        {
            "bootstrap_servers": "127.0.0.1:9092",
            **PRODUCER_TUNING,
            "acks": 1,
            "delivery_timeout_ms": 30_000,
            "max_block_ms": 10_000,  # applied by the adapter itself
            "bootstrap_timeout_ms": 10_000,
            "queue.buffering.max.kbytes": 4096,  # librdkafka's own name passes as it is
        }
    )
    assert config == {
        "bootstrap.servers": "127.0.0.1:9092",
        "linger.ms": PRODUCER_TUNING["linger_ms"],
        "batch.size": PRODUCER_TUNING["batch_size"],
        "acks": "1",
        "enable.idempotence": True,
        "delivery.timeout.ms": 30_000,
        "queue.buffering.max.kbytes": 4096,
    }


def test_a_setting_librdkafka_has_no_name_for_is_refused_not_dropped() -> None:
    with pytest.raises(OrderbookKitError, match=r"'api_version' has no confluent-kafka equivalent"):
        producer_config({"api_version": (3, 0)})


def test_the_partitioner_is_the_java_clients() -> None:
    # The one that puts a key where kafka-python and the Java client put it (checked against a
    # broker in tests/integration/test_clients.py).
    assert SAME_PARTITIONS_AS_JAVA == "murmur2_random"


def test_a_missing_package_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # import now fails: not installed
    with pytest.raises(OrderbookKitError, match=r"pip install -e \.\[fast\]"):
        loading.confluent_kafka()


def test_the_client_is_chosen_by_one_variable_any_case() -> None:
    assert load_settings({}).kafka.client == "kafka-python"
    assert load_settings({"ORDERBOOK_KAFKA_CLIENT": " Confluent "}).kafka.client == "confluent"
    with pytest.raises(SettingsError, match="ORDERBOOK_KAFKA_CLIENT"):
        load_settings({"ORDERBOOK_KAFKA_CLIENT": "rdkafka"})


def test_the_group_loops_consumer_settings_mean_the_same_to_librdkafka() -> None:
    config = consumer_config(
        {
            "bootstrap_servers": "127.0.0.1:9092",
            "group_id": "g",
            "client_id": "c",
            "auto_offset_reset": "earliest",
            "enable_auto_commit": False,
            "session_timeout_ms": 10_000,
            "metadata_max_age_ms": 2_000,
            "isolation_level": "read_committed",
            "max_poll_records": 5000,  # applied by the adapter itself
            **client_timeouts(10),
        }
    )
    assert config == {
        "bootstrap.servers": "127.0.0.1:9092",
        "group.id": "g",
        "client.id": "c",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 10_000,
        "topic.metadata.refresh.interval.ms": 2_000,
        "isolation.level": "read_committed",
        "socket.timeout.ms": 10_000,
        "reconnect.backoff.max.ms": 1000,
    }
    with pytest.raises(OrderbookKitError, match=r"'fetch_max_wait_ms'.*kafka-python"):
        consumer_config({"fetch_max_wait_ms": 100})


def test_librdkafkas_errors_keep_their_meaning_in_kafka_pythons_words() -> None:
    module = loading.confluent_kafka()
    codes = module.KafkaError
    lost = as_kafka_error(codes(codes.UNKNOWN_MEMBER_ID))
    assert isinstance(lost, CommitFailedError)  # the group moved on: join again
    outage = as_kafka_error(codes(codes._TRANSPORT))  # a local error: waited out
    assert outage.retriable and "_TRANSPORT" in str(outage)
    refused = as_kafka_error(codes(codes.TOPIC_AUTHORIZATION_FAILED))
    assert not refused.retriable and not isinstance(refused, CommitFailedError)
