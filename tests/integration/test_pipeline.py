"""Producer, DataFrame reader and ingestion service against the real test broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer, TopicPartition

from orderbook_kit.errors import BrokerUnreachableError
from orderbook_kit.kafka.admin import admin_client, ensure_topic
from orderbook_kit.kafka.offsets import end_offsets
from orderbook_kit.kafka.partitioning import partition_of
from orderbook_kit.kafka.producer import Delivery, TickProducer, produce_in_background
from orderbook_kit.kafka.reader import read_ticks
from orderbook_kit.market.frames import COLUMNS
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.quality.gate import QualityGate
from orderbook_kit.settings.environment import Settings, load_settings

# Every test here runs with both clients the kit can produce and read with.
pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("kafka_client")]


START = datetime(2026, 1, 1, tzinfo=UTC)


def new_topic() -> str:
    return f"test.{uuid.uuid4().hex[:10]}"


def test_producer_keys_by_symbol_and_sends_json(bootstrap_servers: str) -> None:
    topic = new_topic()
    deliveries: list[Delivery] = []
    ticks = list(OrderbookSimulator(["TTF-GAS", "NBP-GAS"]).ticks(20, start_time=START))
    with TickProducer(topic=topic, on_delivery=deliveries.append) as producer:
        metadata = producer.send(ticks[0]).get(timeout=10)
        producer.send_all(ticks[1:])
    assert (metadata.topic, metadata.offset) == (topic, 0)
    assert len(deliveries) == 20 and producer.delivered == 20

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers, consumer_timeout_ms=3000, enable_auto_commit=False
    )
    consumer.assign([TopicPartition(topic, p) for p in range(3)])
    consumer.seek_to_beginning()
    records = list(consumer)
    consumer.close()
    assert len(records) == 20
    partition_of: dict[bytes, set[int]] = {}
    for record in records:
        body = json.loads(record.value)
        assert record.key == body["symbol"].encode()
        assert body["publish_time"] is not None
        partition_of.setdefault(record.key, set()).add(record.partition)
    assert all(len(partitions) == 1 for partitions in partition_of.values())


def test_reader_dtypes_and_derived_columns() -> None:
    topic = new_topic()
    with TickProducer(topic=topic) as producer:
        producer.send_all(OrderbookSimulator().ticks(30, start_time=START))
    result = read_ticks(topic, timeout_s=20)
    frame = result.frame
    assert len(frame) == 30 and not result.timed_out
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == COLUMNS
    assert (frame["mid"] == (frame["bid"] + frame["ask"]) / 2).all()
    assert (frame["spread"] > 0).all()
    assert frame["seq"].tolist() == list(range(30))


def test_empty_topic_gives_empty_frame_with_columns() -> None:
    topic = new_topic()
    with TickProducer(topic=topic):
        pass  # creates the topic, sends nothing
    started = time.monotonic()
    result = read_ticks(topic, timeout_s=10)
    assert result.frame.empty
    assert {name: str(dtype) for name, dtype in result.frame.dtypes.items()} == COLUMNS
    assert time.monotonic() - started < 10  # it stopped at the end, not at the time limit


def test_reader_is_bounded_by_count_and_time() -> None:
    topic = new_topic()
    with TickProducer(topic=topic) as producer:
        producer.send_all(OrderbookSimulator().ticks(50, start_time=START))
    assert len(read_ticks(topic, max_messages=10).frame) == 10
    started = time.monotonic()
    waiting = read_ticks(topic, max_messages=1000, until_end=False, timeout_s=2)
    assert waiting.timed_out and len(waiting.frame) == 50
    assert time.monotonic() - started < 6


def test_bad_messages_are_counted_not_fatal() -> None:
    topic = new_topic()
    good = list(OrderbookSimulator().ticks(5, start_time=START))
    crossed = good[0].model_dump(mode="json") | {"bid": 40.0, "ask": 39.0}
    with TickProducer(topic=topic) as producer:
        producer.send_all(good[:3])
        producer.send_raw("TTF-GAS", b"this is not json {")
        producer.send_raw("TTF-GAS", json.dumps(crossed).encode())
        producer.send_all(good[3:])
    result = read_ticks(topic)
    assert len(result.frame) == 5
    assert dict(result.skipped) == {"not_json": 1, "crossed_book": 1}
    assert "2 message(s) skipped (1 crossed_book, 1 not_json)" in result.report()
    assert any("crossed book" in example for example in result.examples)


def test_reader_leaves_no_group_behind_unless_asked() -> None:
    topic = new_topic()
    with TickProducer(topic=topic) as producer:
        producer.send_all(OrderbookSimulator().ticks(10, start_time=START))
    read_ticks(topic)
    first = read_ticks(topic, group_id=f"group-{topic}", timeout_s=15)
    again = read_ticks(topic, group_id=f"group-{topic}", until_end=False, timeout_s=2)
    assert len(first.frame) == 10
    assert len(again.frame) == 0  # the group committed its offsets: nothing new to read


def test_ingest_count_gives_exactly_n_contiguous_rows(bootstrap_servers: str) -> None:
    topic, n = new_topic(), 40
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers, "ORDERBOOK_TOPIC": topic}
    run = subprocess.run(
        [sys.executable, "-m", "orderbook_kit.ingest", "--count", str(n), "--interval", "0.01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"Connecting to Kafka at {bootstrap_servers}"
    assert lines[1] == f"TTF-GAS: a new feed in '{topic}', from seq 0"
    assert lines[2].startswith("Producing ticks for symbol 'TTF-GAS' every 0.01 seconds")
    assert sum(line.startswith("Sending tick: {") for line in lines) == n
    assert lines[-1] == f"Sent {n} ticks ({n} acknowledged by Kafka)."
    frame = read_ticks(topic).frame
    assert len(frame) == n
    assert frame["seq"].tolist() == list(range(n))
    assert not frame.duplicated(["symbol", "seq"]).any()


def run_ingest(settings: Settings, *arguments: str) -> list[str]:
    environment = {**os.environ, **settings.as_environment()}
    run = subprocess.run(
        [sys.executable, "-m", "orderbook_kit.ingest", "--quiet", "--interval", "0.01", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout.splitlines()


def test_a_restarted_feed_continues_each_sequence_and_every_tick_stays_clean() -> None:
    # The case: ingest stopped and started again numbered every symbol from 0, and the
    # gate, which remembers the sequence, rejected every new tick as out_of_order.
    settings = load_settings().isolated(f"restart-{uuid.uuid4().hex[:8]}")
    symbols = ["--symbol", "TTF-GAS", "--symbol", "NBP-GAS", "--symbol", "EUA-CO2"]
    first = run_ingest(settings, "--count", "60", *symbols)
    gate = QualityGate(settings)
    with gate:
        assert gate.run(count=60, duration_s=60).clean == 60  # the gate now knows the sequences
        second = run_ingest(settings, "--count", "90", *symbols)
        stats = gate.run(count=90, duration_s=60)

    assert stats.clean == 90, stats.summary()  # every tick of the restarted feed is clean
    assert "TTF-GAS: a new feed" in "\n".join(first)
    raw = read_ticks(settings.topics.raw, settings=settings).frame
    raw = raw.sort_values(["partition", "offset"])  # each symbol's ticks in the order sent
    for symbol in ("TTF-GAS", "NBP-GAS", "EUA-CO2"):
        continued = f"{symbol}: continuing the feed in '{settings.topics.raw}' from seq 20"
        assert any(line.startswith(continued) for line in second), second
        assert raw.loc[raw["symbol"] == symbol, "seq"].tolist() == list(range(50))
        # Ingest looks for a symbol only in the partition its key hashes to, with either client.
        assert set(raw.loc[raw["symbol"] == symbol, "partition"]) == {partition_of(symbol, 3)}
    # The price goes on too: the first new mid is within the gate's jump limit of the last one.
    ttf = raw.loc[raw["symbol"] == "TTF-GAS", "mid"].tolist()
    assert abs(ttf[20] / ttf[19] - 1) < settings.gate.price_jump_limit


@pytest.fixture
def nowhere(free_address: str) -> str:
    return free_address  # a free port: nothing listens there


def test_unreachable_broker_producer_and_reader(nowhere: str) -> None:
    settings = load_settings().replace(kafka={"bootstrap_servers": nowhere, "client_timeout_s": 3})
    for attempt in (
        lambda: TickProducer(settings).connect(),
        lambda: read_ticks("orderbook.raw", settings=settings),
    ):
        started = time.monotonic()
        with pytest.raises(BrokerUnreachableError, match=f"No Kafka broker answered at {nowhere}"):
            attempt()
        assert time.monotonic() - started < 10


@pytest.mark.parametrize("kafka_client", ["kafka-python"], indirect=True)  # services: one is enough
@pytest.mark.parametrize("service", ["orderbook_kit.ingest", "orderbook_kit.quality"])
def test_unreachable_broker_services(service: str, nowhere: str) -> None:
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", service, "--bootstrap-servers", nowhere],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "KAFKA_CLIENT_TIMEOUT_S": "5"},
    )
    assert run.returncode == 2
    assert f"error: No Kafka broker answered at {nowhere} within 5 s" in run.stderr
    assert time.monotonic() - started < 10 + 5  # + interpreter start-up


def test_a_live_read_started_before_the_producer_misses_nothing_and_ends_with_it() -> None:
    # Where to start is fixed before the first tick is written (the end offsets of the topic),
    # so no tick can slip in before the reader looks; the read ends once the producer is done.
    settings = load_settings()
    topic = new_topic()
    with admin_client(settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s) as admin:
        ensure_topic(admin, topic, settings.topics.partitions)
    start = end_offsets(topic, settings)
    simulator = OrderbookSimulator(["TTF-GAS", "NBP-GAS"], interval_s=0.01, seed=5)
    began = time.monotonic()
    writer = produce_in_background(simulator.stream(count=300), settings, topic=topic)
    result = read_ticks(topic, offsets=start, until=writer.finished, timeout_s=60)
    took = time.monotonic() - began
    assert writer.join(timeout_s=10) == 300
    assert not result.timed_out, "the read ran to its time limit instead of ending with the feed"
    assert took < 30
    assert len(result.frame) == 300
    for symbol, rows in result.frame.groupby("symbol"):
        assert sorted(rows["seq"]) == list(range(150)), f"{symbol}: a tick is missing"
