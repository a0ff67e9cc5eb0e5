"""The JVM broker for real: keyed messages in, read back two ways, survive a restart; the errors
that need a running broker or JVM; the cached jars used offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from orderbook_kit.errors import BrokerExitedError, BrokerStartTimeoutError, PortInUseError
from orderbook_kit.kafka.admin import admin_client, ensure_topic
from orderbook_kit.lab import jvm as runtime
from orderbook_kit.lab.broker import server as process

pytestmark = pytest.mark.kafka

N = 50
TOPIC = "broker.roundtrip"


def read_all_with_kafka_python(bootstrap: str, topic: str, partitions: int) -> list[tuple]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, consumer_timeout_ms=5000, enable_auto_commit=False
    )
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        consumer.seek_to_beginning()
        return [(m.key, m.value) for m in consumer]
    finally:
        consumer.close()


def read_all_with_console_consumer(bootstrap: str, topic: str, count: int) -> list[str]:
    result = process.run_tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        [
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--from-beginning",
            "--max-messages",
            str(count),
            "--timeout-ms",
            "20000",
            "--formatter-property",
            "print.key=true",
            "--formatter-property",
            "key.separator=|",
        ],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_keyed_messages_survive_a_restart(own_broker: tuple[str, Path]) -> None:
    bootstrap, state = own_broker
    with admin_client(bootstrap, 10) as admin:
        ensure_topic(admin, TOPIC, partitions=2)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    sent = {(f"key-{i % 3}".encode(), f"message-{i}".encode()) for i in range(N)}
    for key, value in sorted(sent):
        producer.send(TOPIC, key=key, value=value)
    producer.flush(30)
    producer.close()

    def check_everything_is_there() -> None:
        assert set(read_all_with_kafka_python(bootstrap, TOPIC, 2)) == sent
        console = read_all_with_console_consumer(bootstrap, TOPIC, N)
        assert {tuple(line.encode().split(b"|", 1)) for line in console} == sent

    check_everything_is_there()
    assert process.stop(state)
    assert process.status(state) is None
    process.start(bootstrap, state)
    check_everything_is_there()


def test_port_taken_by_a_kafka_broker(bootstrap_servers: str, tmp_path: Path) -> None:
    with pytest.raises(PortInUseError) as error:
        process.start(bootstrap_servers, tmp_path / "second")
    message = str(error.value)
    assert "is already in use, and a Kafka broker answers there" in message
    assert f"export KAFKA_BOOTSTRAP_SERVERS={bootstrap_servers}" in message


def test_broker_exiting_during_start_shows_its_log(own_broker: tuple[str, Path]) -> None:
    # A data directory that belongs to another node (say, copied from elsewhere): the broker
    # starts, reads it, and exits.
    bootstrap, state = own_broker
    process.stop(state)
    meta = state / "data" / "meta.properties"
    meta.write_text(meta.read_text().replace("node.id=1", "node.id=7"))
    with pytest.raises(BrokerExitedError) as error:
        process.start(bootstrap, state)
    message = str(error.value)
    assert message.startswith("The Kafka broker exited during start (exit code")
    # The broker's own complaint, from its log, comes first.
    assert "Stored node id 7 doesn't match previous node id 1" in message.splitlines()[0]
    assert process.status(state) is None


def test_start_timeout_stops_the_broker(tmp_path: Path, free_address: str) -> None:
    with pytest.raises(BrokerStartTimeoutError) as error:
        process.start(free_address, tmp_path / "b", timeout_s=0.2)
    assert f"did not answer at {free_address} within 0.2 s, so it was stopped" in str(error.value)
    assert "KAFKA_START_TIMEOUT_S" in str(error.value)
    assert process.status(tmp_path / "b") is None


def test_cli_status_topics_and_tools(bootstrap_servers: str) -> None:
    with admin_client(bootstrap_servers, 10) as admin:
        ensure_topic(admin, "cli.check", partitions=1)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers}
    run = [sys.executable, "-m", "orderbook_kit.lab.broker"]
    status = subprocess.run([*run, "status"], env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "answers" in status.stdout
    topics = subprocess.run(
        [*run, "topics", "--list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert topics.returncode == 0, topics.stderr
    assert "cli.check" in topics.stdout.split()


def test_cached_jars_need_no_maven(monkeypatch: pytest.MonkeyPatch, fake_bin: Path) -> None:
    # The session broker already resolved the jars; a later start must not need `mvn` at all.
    monkeypatch.setenv("PATH", str(fake_bin))
    folder = runtime.resolve_jars(runtime.default_home())
    assert (folder / f"kafka_2.13-{runtime.KAFKA_VERSION}.jar").exists()
    assert (folder / f"kafka-tools-{runtime.KAFKA_VERSION}.jar").exists()
