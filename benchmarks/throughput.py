"""The kit against bare kafka-python, side by side: figures and ratios, not assertions.

    make bench                                          # or:
    .venv/bin/python benchmarks/throughput.py --count 100000 --json bench.json

The in-memory figures always run. The Kafka figures need a broker at KAFKA_BOOTSTRAP_SERVERS
(`make bench` starts one), the PostgreSQL ones a database at DATABASE_URL (`make bench` starts
the kit's own). Every comparison uses the same messages, on the same broker, in one run; the
benchmark uses topics and a schema of its own and deletes them afterwards.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import confluent_kafka
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from orderbook_kit.archive.sink import ArchiveSink
from orderbook_kit.book.feed import publish_exchange_feed
from orderbook_kit.database.client import connect, database_answers
from orderbook_kit.kafka.admin import admin_client, broker_answers, delete_pipeline, ensure_topic
from orderbook_kit.kafka.groups import wait_until_read
from orderbook_kit.kafka.offsets import end_offsets
from orderbook_kit.kafka.producer import PRODUCER_TUNING, TickProducer, produce_in_background
from orderbook_kit.kafka.reader import read_records, read_ticks
from orderbook_kit.market.book_messages import BookUpdate
from orderbook_kit.market.checks import QualityChecker
from orderbook_kit.market.depth_simulator import DepthSimulator
from orderbook_kit.market.faults import FaultInjector
from orderbook_kit.market.order_book import OrderBook
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.market.tick import Tick
from orderbook_kit.quality.gate import MAX_BATCH as GATE_BATCH
from orderbook_kit.quality.gate import GateStats, QualityGate
from orderbook_kit.runtime.launcher import start_service
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.store.sink import MAX_BATCH, StoreSink
from orderbook_kit.store.tables import (
    apply_schema,
    drop_schema,
    prepare_session,
    tick_row,
    write_batch,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]
BARE_FETCH_RECORDS = 5000  # max_poll_records of the bare consumer: its best on this machine
PRODUCE_RUNS = 3


@dataclass
class Results:
    """Every figure of one run: throughputs (per second), ratios, latency percentiles (ms)."""

    throughput: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    peak_rss_mib: float = 0.0

    def measure(
        self, name: str, count: int, run: Callable[[], object], *, best_of: int = 1
    ) -> float:
        """Time ``run`` (``best_of`` times, keeping the fastest: the least disturbed run)."""
        timings = []
        for _ in range(best_of):
            started = time.perf_counter()
            run()
            timings.append(time.perf_counter() - started)
        elapsed = min(timings)
        rate = count / elapsed
        self.throughput[name], self.counts[name] = rate, count
        print(f"{name:<52} {count:>8} in {elapsed:7.3f} s  {rate:>10,.0f} /s", flush=True)
        return rate

    def compare(self, name: str, kit: str, bare: str) -> None:
        ratio = self.throughput[kit] / self.throughput[bare]
        self.ratios[name] = ratio
        print(f"  ratio {name:<46} {ratio:5.2f}x", flush=True)


def in_memory(results: Results, count: int) -> None:
    simulator = OrderbookSimulator(SYMBOLS)
    results.measure("simulate ticks", count, lambda: list(simulator.ticks(count, start_time=START)))
    ticks = list(OrderbookSimulator(SYMBOLS).ticks(count, start_time=START))
    results.measure("serialise ticks to JSON", count, lambda: [t.to_json() for t in ticks])
    encoded = [t.to_json() for t in ticks]
    results.measure(
        "parse and validate JSON ticks", count, lambda: [Tick.from_json(v) for v in encoded]
    )
    messages = list(FaultInjector.uniform(0.01).messages(ticks))
    checker = QualityChecker()
    results.measure(
        "quality rules (1% of each fault)",
        len(messages),
        lambda: [checker.check(m.key, m.value) for m in messages],
    )


BOOK_UPDATES = 100_000  # the rebuild the issue asks for: a snapshot and this many updates


def order_book(results: Results, count: int) -> None:
    """The order book in one process: level changes applied, and a book rebuilt from a snapshot
    and its updates - parsed already, and from their JSON - checking every update's checksum."""
    updates_wanted = min(BOOK_UPDATES, max(2 * count, 1000))
    simulator = DepthSimulator("TTF-GAS", updates_per_tick=4)
    for _ in simulator.updates(50, start_time=START):
        pass
    snapshot = simulator.books["TTF-GAS"].snapshot(START)
    updates: list[BookUpdate] = []
    while len(updates) < updates_wanted:
        updates.extend(simulator.updates(1000, start_time=START))
    del updates[updates_wanted:]
    encoded = [update.to_json() for update in updates]
    changes = sum(len(update.changes) for update in updates)

    def apply_only() -> None:
        book = OrderBook.from_snapshot(snapshot)
        for update in updates:
            book.apply(update)

    def rebuild(parse: bool) -> None:
        book = OrderBook.from_snapshot(snapshot)
        for data in encoded if parse else updates:
            update = BookUpdate.from_json(data) if parse else data
            book.apply(update)
            book.verify(update)
        assert book.seq == updates[-1].seq

    print(f"-- the order book: {updates_wanted:,} updates ({changes:,} level changes)")
    results.measure("order book: level changes applied", changes, apply_only, best_of=3)
    label = f"order book: rebuilt from a snapshot and {updates_wanted:,} updates"
    results.measure(f"{label}, checksums", updates_wanted, lambda: rebuild(False), best_of=3)
    results.measure(f"{label} as JSON, checksums", updates_wanted, lambda: rebuild(True))


class _Position:
    """Where a tick was read from, for rows written without Kafka."""

    def __init__(self, offset: int) -> None:
        self.topic, self.partition, self.offset = "bench", 0, offset


def on_postgres(results: Results, count: int, settings: Settings) -> None:
    """Rows per second into PostgreSQL: the store's write path alone, batch by batch."""
    ticks = list(OrderbookSimulator(SYMBOLS).ticks(count, start_time=START))
    rows = [tick_row(tick, _Position(i)) for i, tick in enumerate(ticks)]
    with connect(settings.store.database_url, timeout_s=10, schema=settings.store.schema) as conn:
        apply_schema(conn, settings.store.schema)
        prepare_session(conn)

        def write(batch_rows: list[tuple[object, ...]]) -> None:
            for start in range(0, len(batch_rows), MAX_BATCH):
                batch = batch_rows[start : start + MAX_BATCH]
                offsets = {("bench", 0): start + len(batch)}
                write_batch(conn, settings.store.group, batch, offsets)

        try:
            label = f"PostgreSQL: new rows, {MAX_BATCH} a transaction"
            results.measure(label, count, lambda: write(rows))
            results.measure(
                "PostgreSQL: the same rows again (all skipped)", count, lambda: write(rows)
            )
        finally:
            drop_schema(conn, settings.store.schema)


# --- bare kafka-python: the same work without the kit, as a learner would write it ---------------


def bare_produce(
    settings: Settings, topic: str, messages: list[tuple[bytes, bytes]], **config: Any
) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, **config)
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def bare_serialising(settings: Settings, topic: str, ticks: list[Tick]) -> None:
    """What the kit's send(tick) does per tick (stamp publish_time, pydantic JSON), bare."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, **PRODUCER_TUNING)
    for tick in ticks:
        producer.send(topic, key=tick.symbol.encode(), value=tick.published().to_json())
    producer.flush()
    producer.close()


def bare_records(settings: Settings, topic: str, count: int) -> Iterator[Any]:
    """Every record of ``topic`` from the beginning, until ``count`` were read."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_auto_commit=False,
        max_poll_records=BARE_FETCH_RECORDS,
    )
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    read = 0
    deadline = time.monotonic() + 300
    try:
        while read < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                read += len(records)
                yield from records
    finally:
        consumer.close()


def bare_frame(settings: Settings, topic: str, count: int) -> pd.DataFrame:
    """Records -> json.loads -> DataFrame, no validation at all."""
    rows = [json.loads(record.value) for record in bare_records(settings, topic, count)]
    frame = pd.DataFrame(rows)
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True, format="ISO8601")
    return frame


def bare_forward(settings: Settings, source: str, target: str, count: int) -> None:
    """The floor under the gate: every record copied to another topic, unchecked."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, **PRODUCER_TUNING)
    for record in bare_records(settings, source, count):
        producer.send(target, key=record.key, value=record.value)
    producer.flush()
    producer.close()


def bare_archive(settings: Settings, topic: str, count: int, folder: Path) -> None:
    """The floor under the archive: records parsed into columns and written as one Parquet
    file - no validation, no partitioning by symbol and day, no commit markers."""
    columns: dict[str, list[Any]] = {}
    for record in bare_records(settings, topic, count):
        for name, value in json.loads(record.value).items():
            columns.setdefault(name, []).append(value)
    pq.write_table(pa.table(columns), folder / "bare.parquet", compression="zstd")


def bare_store(settings: Settings, topic: str, count: int) -> None:
    """The floor under the store: records parsed and COPYed into a table, nothing more."""
    with psycopg.connect(settings.store.database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TEMP TABLE bare_ticks (symbol text, seq bigint, bid float8, ask float8)"
        )
        rows = (json.loads(record.value) for record in bare_records(settings, topic, count))
        with conn.cursor().copy("COPY bare_ticks FROM STDIN") as copy:
            for row in rows:
                copy.write_row((row["symbol"], row["seq"], row["bid"], row["ask"]))


# --- the Kafka figures ----------------------------------------------------------------------


# Names of the figures compared (and keys of the JSON output).
KIT_SEND = "produce: kit send(tick)"
KIT_SEND_RAW = "produce: kit send_raw(bytes)"
BARE_SAME = "produce: bare kafka-python, the kit's settings"
BARE_SERIALISING = "produce: bare, the kit's settings, stamping+serialising"
BARE_DEFAULTS = "produce: bare kafka-python, its defaults"
KIT_READ = "read: kit read_ticks (validated) into a DataFrame"
BARE_FETCH = "read: bare fetch alone"
BARE_FRAME = "read: bare fetch + json.loads into a DataFrame"
KIT_GATE = "gate: kit, raw -> clean + dead letters"
BARE_FORWARD = "gate: bare consume -> produce, no checks"
KIT_ARCHIVE = "archive: kit, clean topic -> Parquet files, exactly once"
BARE_ARCHIVE = "archive: bare fetch + json into one Parquet file"
KIT_STORE = "store: kit, clean topic -> PostgreSQL"
BARE_STORE = "store: bare fetch + COPY, no offsets, no dedupe"
FAST_SEND = "produce: kit send(tick), ORDERBOOK_KAFKA_CLIENT=confluent"
FAST_BARE = "produce: bare confluent-kafka, the kit's settings"
FAST_READ = "read: kit read_ticks, ORDERBOOK_KAFKA_CLIENT=confluent"
FAST_FETCH = "read: bare confluent-kafka fetch alone"
FAST_GATE = "gate: kit, ORDERBOOK_KAFKA_CLIENT=confluent"
DELIVERIES = ("at-least-once", "exactly-once")
KAFKA_PYTHON, CONFLUENT = "kafka-python", "confluent"
SMALL_BATCH = 500  # messages a poll: ten times the transactions of the default batch


def on_kafka(results: Results, count: int, settings: Settings, *, with_database: bool) -> None:
    ticks = list(OrderbookSimulator(SYMBOLS).ticks(count, start_time=START))
    values = [(t.symbol.encode(), t.published().to_json()) for t in ticks]
    messages = list(FaultInjector.uniform(0.01).messages(ticks))
    # One topic per producing run, so the first one (valid ticks, once each) can be read back.
    produced = {name: f"{settings.topics.raw}.{i}" for i, name in enumerate(PRODUCING)}
    forwarded = f"{settings.topics.raw}.forwarded"
    scratch = [*produced.values(), forwarded]
    with admin_client(settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s) as admin:
        for topic in (settings.topics.raw, *scratch):
            ensure_topic(admin, topic, settings.topics.partitions)

    def kit_send() -> None:
        with TickProducer(settings, topic=produced[KIT_SEND]) as producer:
            for tick in ticks:
                producer.send(tick)
            producer.flush()

    def kit_send_raw() -> None:
        with TickProducer(settings, topic=produced[KIT_SEND_RAW]) as producer:
            for key, value in values:
                producer.send_raw(key, value)
            producer.flush()

    def kit_faulty() -> None:
        with TickProducer(settings) as producer:
            for message in messages:
                producer.send_raw(message.key, message.value)
            producer.flush()  # acknowledged by Kafka, not just buffered

    try:
        print("-- producing, until acknowledged")
        # Best of three: one run of a few seconds on a 2-core machine is easily disturbed.
        results.measure(KIT_SEND, count, kit_send, best_of=PRODUCE_RUNS)
        results.measure(KIT_SEND_RAW, count, kit_send_raw, best_of=PRODUCE_RUNS)
        tuned = lambda: bare_produce(settings, produced[BARE_SAME], values, **PRODUCER_TUNING)  # noqa: E731
        results.measure(BARE_SAME, count, tuned, best_of=PRODUCE_RUNS)
        serialising = lambda: bare_serialising(settings, produced[BARE_SERIALISING], ticks)  # noqa: E731
        results.measure(BARE_SERIALISING, count, serialising, best_of=PRODUCE_RUNS)
        plain = lambda: bare_produce(settings, produced[BARE_DEFAULTS], values)  # noqa: E731
        results.measure(BARE_DEFAULTS, count, plain, best_of=PRODUCE_RUNS)
        results.compare("kit send(tick) / bare, same settings", KIT_SEND, BARE_SAME)
        results.compare("kit send_raw / bare, same settings", KIT_SEND_RAW, BARE_SAME)
        # The same work per tick, bare: what the kit itself adds around kafka-python.
        results.compare("kit send(tick) / bare doing the same", KIT_SEND, BARE_SERIALISING)

        print("-- reading the produced ticks into a DataFrame")
        ticks_topic = produced[KIT_SEND]
        held = sum(end_offsets(ticks_topic, settings).values())  # every run's ticks
        kit_read = lambda: read_ticks(ticks_topic, settings=settings, timeout_s=300)  # noqa: E731
        results.measure(KIT_READ, held, kit_read)
        fetch = lambda: sum(1 for _ in bare_records(settings, ticks_topic, held))  # noqa: E731
        results.measure(BARE_FETCH, held, fetch)
        results.measure(BARE_FRAME, held, lambda: bare_frame(settings, ticks_topic, held))
        results.compare("kit read_ticks / bare fetch alone", KIT_READ, BARE_FETCH)
        results.compare("kit read_ticks / bare fetch + json", KIT_READ, BARE_FRAME)

        print("-- the quality gate, on a stream with 1% of each kind of fault")
        n = len(messages)
        results.measure("produce the faulty stream", n, kit_faulty)
        gate = QualityGate(settings)
        gated: list[GateStats] = []
        results.measure(KIT_GATE, n, lambda: gated.append(gate.run(count=n, duration_s=600)))
        forward = lambda: bare_forward(settings, settings.topics.raw, forwarded, n)  # noqa: E731
        results.measure(BARE_FORWARD, n, forward)
        results.compare("kit gate / bare forward", KIT_GATE, BARE_FORWARD)

        print("-- the archive (a local folder)")
        # The gate's count, not the clean topic's end offsets: each of its transactions ends
        # with a commit marker, which takes an offset but is no message.
        clean = gated[0].clean
        with tempfile.TemporaryDirectory(prefix="bench-archive-") as folder:
            archiving = settings.replace(archive={"url": f"{folder}/kit"})
            archive = ArchiveSink(archiving)
            results.measure(KIT_ARCHIVE, clean, lambda: archive.run(count=clean, duration_s=600))
            bare = lambda: bare_archive(settings, settings.topics.clean, clean, Path(folder))  # noqa: E731
            results.measure(BARE_ARCHIVE, clean, bare)
        results.compare("kit archive / bare Parquet", KIT_ARCHIVE, BARE_ARCHIVE)

        if with_database:
            print("-- the store")
            store = StoreSink(settings)
            results.measure(KIT_STORE, clean, lambda: store.run(count=clean, duration_s=600))
            copy = lambda: bare_store(settings, settings.topics.clean, clean)  # noqa: E731
            results.measure(BARE_STORE, clean, copy)
            results.compare("kit store / bare COPY", KIT_STORE, BARE_STORE)
    finally:
        delete_pipeline(settings)
        with admin_client(
            settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s
        ) as admin:
            admin.delete_topics(scratch)
        if with_database:
            with connect(settings.store.database_url, timeout_s=10) as conn:
                drop_schema(conn, settings.store.schema)


PRODUCING = [KIT_SEND, KIT_SEND_RAW, BARE_SAME, BARE_SERIALISING, BARE_DEFAULTS]


def bare_confluent_produce(
    settings: Settings, topic: str, messages: list[tuple[bytes, bytes]]
) -> None:
    """confluent-kafka's own example loop: produce, poll(0) to serve reports, one flush."""
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": PRODUCER_TUNING["linger_ms"],
            "batch.size": PRODUCER_TUNING["batch_size"],
            "partitioner": "murmur2_random",
        }
    )
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError("bare confluent producer: messages left unacknowledged")


def bare_confluent_fetch(settings: Settings, topic: str, count: int) -> int:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([confluent_kafka.TopicPartition(topic, p, 0) for p in partitions])
    read, deadline = 0, time.monotonic() + 300
    try:
        while read < count and time.monotonic() < deadline:
            read += sum(1 for m in consumer.consume(5000, 0.5) if m.error() is None)
    finally:
        consumer.close()
    return read


def on_confluent(results: Results, count: int, settings: Settings) -> None:
    """The same producing and reading on librdkafka: the kit's and the bare client's."""
    fast = settings.replace(kafka={"client": "confluent"})
    ticks = list(OrderbookSimulator(SYMBOLS).ticks(count, start_time=START))
    values = [(t.symbol.encode(), t.published().to_json()) for t in ticks]
    kit_topic, bare_topic = f"{settings.topics.raw}.fast", f"{settings.topics.raw}.fastbare"
    # The gate's own pipeline (topics, group), fed the same faulty stream as on kafka-python.
    gated = settings.isolated("gate-fast").replace(kafka={"client": "confluent"})
    messages = list(FaultInjector.uniform(0.01).messages(ticks))
    with admin_client(settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s) as admin:
        for topic in (kit_topic, bare_topic):
            ensure_topic(admin, topic, settings.topics.partitions)

    def kit_send() -> None:
        with TickProducer(fast, topic=kit_topic, create_topic=False) as producer:
            for tick in ticks:
                producer.send(tick)
            producer.flush()

    def faulty_stream() -> None:
        with TickProducer(gated) as producer:
            for message in messages:
                producer.send_raw(message.key, message.value)
            producer.flush()

    try:
        print("-- the same on confluent-kafka (librdkafka)")
        results.measure(FAST_SEND, count, kit_send, best_of=PRODUCE_RUNS)
        bare = lambda: bare_confluent_produce(settings, bare_topic, values)  # noqa: E731
        results.measure(FAST_BARE, count, bare, best_of=PRODUCE_RUNS)
        held = sum(end_offsets(kit_topic, settings).values())
        read = lambda: read_ticks(kit_topic, settings=fast, timeout_s=300)  # noqa: E731
        results.measure(FAST_READ, held, read)
        fetch = lambda: bare_confluent_fetch(settings, kit_topic, held)  # noqa: E731
        results.measure(FAST_FETCH, held, fetch)
        faulty_stream()
        gate = QualityGate(gated)
        n = len(messages)
        results.measure(FAST_GATE, n, lambda: gate.run(count=n, duration_s=600))
        results.compare("kit send(tick) on confluent / bare confluent", FAST_SEND, FAST_BARE)
        results.compare("kit read_ticks on confluent / bare confluent fetch", FAST_READ, FAST_FETCH)
        results.compare("kit send(tick): confluent / kafka-python", FAST_SEND, KIT_SEND)
        results.compare("kit read_ticks: confluent / kafka-python", FAST_READ, KIT_READ)
        results.compare("kit gate: confluent / kafka-python", FAST_GATE, KIT_GATE)
    finally:
        delete_pipeline(gated)
        with admin_client(
            settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s
        ) as admin:
            admin.delete_topics([kit_topic, bare_topic])


def record_latency(results: Results, label: str, frame: pd.DataFrame) -> None:
    """Publish-to-consume latency percentiles of the ticks read into ``frame``, kept and shown."""
    latency_ms = (frame["consume_time"] - frame["publish_time"]).dt.total_seconds() * 1000
    figures = {
        "p50": latency_ms.quantile(0.5),
        "p90": latency_ms.quantile(0.9),
        "p99": latency_ms.quantile(0.99),
        "max": latency_ms.max(),
        "ticks": float(len(frame)),
    }
    results.latency_ms[label] = figures
    shown = "  ".join(f"{k} {v:6.1f}" for k, v in figures.items() if k != "ticks")
    print(f"{label:<40} {shown} ms  ({len(frame)} ticks)", flush=True)


def latency(results: Results, settings: Settings, *, rate: int, seconds: float) -> None:
    """Publish-to-consume latency of a paced stream, read while it is written."""
    print(f"-- publish-to-consume latency at {rate:,} ticks/s for {seconds:g} s")
    for label, linger_ms in (("paced, no linger (the kit's choice)", 0), ("linger_ms=5", 5)):
        topic_settings = settings.isolated(f"latency-{linger_ms}")
        with admin_client(
            settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s
        ) as admin:
            ensure_topic(admin, topic_settings.topics.raw, settings.topics.partitions)
        simulator = OrderbookSimulator(SYMBOLS, interval_s=len(SYMBOLS) / rate)
        stream = simulator.stream(duration_s=seconds)
        try:
            writer = produce_in_background(stream, topic_settings, linger_ms=linger_ms)
            read = read_ticks(
                topic_settings.topics.raw,
                settings=topic_settings,
                until=writer.finished,
                timeout_s=seconds + 60,
            )
            writer.join(60)
        finally:
            delete_pipeline(topic_settings)
        record_latency(results, label, read.frame)


def gate_delivery(results: Results, count: int, settings: Settings, *, seconds: float) -> None:
    """The gate exactly once (a Kafka transaction per batch) against at least once: throughput
    at the default batch and a small one, then the publish-to-clean latency of a paced stream."""
    print("-- the gate: exactly once (transactions) against at least once")
    ticks = OrderbookSimulator(SYMBOLS).ticks(count, start_time=START)
    messages = list(FaultInjector.uniform(0.01).messages(ticks))
    n = len(messages)
    for client, batch in (
        (KAFKA_PYTHON, GATE_BATCH),
        (KAFKA_PYTHON, SMALL_BATCH),
        (CONFLUENT, GATE_BATCH),
    ):
        for delivery in DELIVERIES:
            run = settings.isolated(f"{delivery}-{batch}").replace(
                gate={"delivery": delivery}, kafka={"client": client}
            )
            try:
                with TickProducer(run) as producer:
                    for message in messages:
                        producer.send_raw(message.key, message.value)
                    producer.flush()
                # Connected first (the producers, the transactional id): the work is timed.
                with QualityGate(run, max_batch=batch) as gate:
                    name = f"gate {delivery} on {client}, batches of up to {batch}"
                    results.measure(name, n, lambda g=gate: g.run(count=n, duration_s=600))
            finally:
                delete_pipeline(run)
        results.compare(
            f"exactly / at least once, {client}, batch {batch}",
            f"gate exactly-once on {client}, batches of up to {batch}",
            f"gate at-least-once on {client}, batches of up to {batch}",
        )
    rate = 1000
    print(f"-- publish-to-clean latency through the gate at {rate:,} ticks/s for {seconds:g} s")
    for client, delivery in itertools.product((KAFKA_PYTHON, CONFLUENT), DELIVERIES):
        run = settings.isolated(f"latency-{delivery}").replace(
            gate={"delivery": delivery}, kafka={"client": client}
        )
        simulator = OrderbookSimulator(SYMBOLS, interval_s=len(SYMBOLS) / rate)
        gate, stop, done = QualityGate(run), threading.Event(), threading.Event()
        gating = threading.Thread(target=lambda g=gate, s=stop: g.run(stop=s), daemon=True)
        try:
            gate.connect()
            gating.start()
            stream = simulator.stream(duration_s=seconds)
            writer = produce_in_background(stream, run, topic=run.topics.clean)

            def all_gated(w=writer, r=run, d=done) -> None:
                w.join(seconds + 60)
                wait_until_read(r.gate.group, r.topics.raw, r, timeout_s=120)
                d.set()

            threading.Thread(target=all_gated, daemon=True).start()
            read = read_ticks(run.topics.clean, settings=run, until=done.is_set, timeout_s=300)
        finally:
            stop.set()
            if gating.is_alive():
                gating.join(60)  # it finishes its batch, then the gate can close
            gate.close()
            delete_pipeline(run)
        record_latency(results, f"raw -> gate {delivery} on {client} -> clean", read.frame)


def paced(messages: Iterator[Any], rate: int, seconds: float) -> Iterator[Any]:
    """``messages`` at ``rate`` a second for ``seconds``: each one at its own moment, start +
    i / rate (pacing a feed, not waiting for anything)."""
    start = time.monotonic()
    for index, message in enumerate(messages):
        due = start + index / rate
        if due - start >= seconds:
            return
        ahead = due - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        yield message


def book_service_latency(
    results: Results, settings: Settings, *, rate: int, seconds: float
) -> None:
    """The live book service, in a process of its own as it runs: the exchange's depth feed at
    ``rate`` messages a second into the raw topic; the latency from each raw record's timestamp
    to the moment a read-committed reader of the update topic has it (the service's check, its
    transaction and its commit)."""
    print(f"-- raw -> book service -> updates latency at {rate:,} messages/s for {seconds:g} s")
    run = settings.isolated(f"book-latency-{uuid.uuid4().hex[:6]}")
    simulator = DepthSimulator(SYMBOLS, updates_per_tick=4)
    feed = simulator.exchange_feed(10**9, snapshot_every=500)
    publish_exchange_feed(run, itertools.islice(feed, 100))  # the topics, and a first batch
    service = start_service("book", run, "--quiet")
    done = threading.Event()
    try:
        # Started and caught up (its group joined, its transactional id ready): then the clock.
        wait_until_read(run.book.group, run.topics.book_raw, run, timeout_s=120)
        start_ms = time.time() * 1000

        def write_then_wait() -> None:
            publish_exchange_feed(run, paced(feed, rate, seconds))
            wait_until_read(run.book.group, run.topics.book_raw, run, timeout_s=120)
            done.set()

        threading.Thread(target=write_then_wait, daemon=True).start()
        read = read_records(
            run.topics.book_updates, settings=run, until=done.is_set, timeout_s=seconds + 180
        )
    finally:
        service.stop()
        delete_pipeline(run)
    timed = [
        (r, at)
        for r, at in zip(read.records, read.received_at, strict=True)
        if r.timestamp >= start_ms
    ]
    frame = pd.DataFrame(
        {
            "publish_time": pd.to_datetime([r.timestamp for r, _ in timed], unit="ms", utc=True),
            "consume_time": pd.to_datetime([at for _, at in timed], utc=True),
        }
    )
    record_latency(results, "raw -> book service -> updates", frame)


# --- the candles service (Quix Streams) ---------------------------------------------------------

CANDLES = "candles: kit processor (Quix Streams), 3 windows, exactly once"
QUIX_BARE = "candles: bare Quix Streams, consume + produce, exactly once"
RDKAFKA_FORWARD = "candles: bare librdkafka consume + produce loop"
CANDLE_SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2", "THE-GAS", "PEG-GAS"]


def _steady_rate(read: Callable[[], int], total: int, timeout_s: float) -> tuple[float, int]:
    """Messages a second from the first one read to the ``total``-th, by looking at ``read()``
    every 20 ms (the start-up - a group to join, topics to check - is not the engine's speed)."""
    deadline = time.monotonic() + timeout_s
    waiting_since = time.perf_counter()
    while read() == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("nothing was read in time")
        time.sleep(0.02)  # sampling a counter, not synchronising
    started, first = time.perf_counter(), read()
    if first >= total:  # all of it between two looks: the rate, start-up included (a floor)
        return total / (started - waiting_since), total
    while read() < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {read()} of {total} read in time")
        time.sleep(0.02)
    return (total - first) / (time.perf_counter() - started), total - first


def candles_throughput(results: Results, count: int, settings: Settings) -> None:
    """The candles processor against the engine's bare pass-through and a bare librdkafka loop,
    each reading the same ``count`` ticks from the same clean topic."""
    from orderbook_kit.candles.engine import Application
    from orderbook_kit.candles.service import CandlesService

    print("-- candles in the stream: clean ticks -> 1 s and 1 min candles, 5 min spreads")
    run = settings.isolated(f"candles-{uuid.uuid4().hex[:6]}")
    state = Path(tempfile.mkdtemp(prefix="bench-candles-"))
    run = run.replace(candles={"state_dir": str(state)})
    steps = max(count // len(CANDLE_SYMBOLS), 1)
    simulator = OrderbookSimulator(CANDLE_SYMBOLS, interval_s=600 / steps)  # ten minutes
    ticks = list(simulator.ticks(steps * len(CANDLE_SYMBOLS)))
    total = len(ticks)
    target = f"{run.topics.candles_1s}.forward"
    with admin_client(run.kafka.bootstrap_servers, run.kafka.client_timeout_s) as admin:
        ensure_topic(admin, run.topics.clean, run.topics.partitions)
        ensure_topic(admin, target, run.topics.partitions)
    with TickProducer(run, topic=run.topics.clean, create_topic=False) as producer:
        for tick in ticks:
            producer.send(tick)
    try:
        service = CandlesService(run)
        with service:
            runner = threading.Thread(
                target=lambda: _measure_into(results, CANDLES, service.counts, total), daemon=True
            )
            runner.start()
            service.run(count=total)
            runner.join(30)
        processed: list[int] = []
        app = Application(
            broker_address=run.kafka.bootstrap_servers,
            consumer_group=f"{run.candles.group}.bare",
            auto_offset_reset="earliest",
            processing_guarantee="exactly-once",
            state_dir=state / "bare",
            loglevel="WARNING",
            on_message_processed=lambda *_: processed.append(1),
        )
        app.dataframe(app.topic(run.topics.clean, value_deserializer="bytes")).to_topic(
            app.topic(target, value_serializer="bytes")
        )
        watcher = threading.Thread(
            target=lambda: (
                _measure(results, QUIX_BARE, lambda: len(processed), total),
                app.stop(),
            ),
            daemon=True,
        )
        watcher.start()
        app.run()
        watcher.join(30)
        forwarded: list[int] = [0]
        forward = threading.Thread(
            target=_rdkafka_forward, args=(run, target, total, forwarded), daemon=True
        )
        forward.start()
        _measure(results, RDKAFKA_FORWARD, lambda: forwarded[0], total)
        forward.join(60)
        results.compare("kit candles / bare librdkafka consume + produce", CANDLES, RDKAFKA_FORWARD)
        results.compare("kit candles / bare Quix Streams pass-through", CANDLES, QUIX_BARE)
    finally:
        delete_pipeline(run)
        with admin_client(run.kafka.bootstrap_servers, run.kafka.client_timeout_s) as admin:
            existing = set(admin.list_topics())
            admin.delete_topics([t for t in (target,) if t in existing])


def _measure(results: Results, name: str, read: Callable[[], int], total: int) -> None:
    rate, counted = _steady_rate(read, total, timeout_s=600)
    results.throughput[name], results.counts[name] = rate, counted
    print(f"{name:<52} {counted:>8} at steady rate  {rate:>10,.0f} /s", flush=True)


def _measure_into(results: Results, name: str, counts: Any, total: int) -> None:
    _measure(results, name, lambda: counts.windowed + sum(counts.skipped.values()), total)


def _rdkafka_forward(run: Settings, target: str, total: int, forwarded: list[int]) -> None:
    """confluent-kafka's example loop: consume a batch, produce each, poll(0), one flush."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": run.kafka.bootstrap_servers,
            "group.id": f"bench-forward-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": run.kafka.bootstrap_servers, "enable.idempotence": True}
    )
    consumer.subscribe([run.topics.clean])
    deadline = time.monotonic() + 600
    try:
        while forwarded[0] < total and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                if message.error() is None:
                    while True:
                        try:
                            producer.produce(target, message.value(), message.key())
                            break
                        except BufferError:
                            producer.poll(0.05)
                    producer.poll(0)
                    forwarded[0] += 1
        producer.flush(60)
    finally:
        consumer.close()


def candles_delay(results: Results, settings: Settings, *, rate: int, seconds: float) -> None:
    """The live candles service, in a process of its own: a paced market (event time = now) at
    ``rate`` ticks a second into the clean topic; for each 1-second candle, the delay from its
    window's end to a read-committed reader having it (the grace period, the commit interval and
    the work)."""
    grace, commit = settings.candles.grace_s, settings.candles.commit_interval_s
    print(
        f"-- window end -> candle on its topic, at {rate:,} ticks/s for {seconds:g} s "
        f"(grace {grace:g} s, commits every {commit:g} s)"
    )
    run = settings.isolated(f"candles-delay-{uuid.uuid4().hex[:6]}")
    run = run.replace(candles={"state_dir": tempfile.mkdtemp(prefix="bench-candles-")})
    simulator = OrderbookSimulator(CANDLE_SYMBOLS, interval_s=len(CANDLE_SYMBOLS) / rate)
    with admin_client(run.kafka.bootstrap_servers, run.kafka.client_timeout_s) as admin:
        ensure_topic(admin, run.topics.clean, run.topics.partitions)
    with TickProducer(run, topic=run.topics.clean, create_topic=False) as producer:
        producer.send(next(simulator.stream(count=1)))
    service = start_service("candles", run, "--quiet")
    done = threading.Event()
    try:
        wait_until_read(run.candles.group, run.topics.clean, run, timeout_s=120)
        started = time.time()

        def write() -> None:
            stream = simulator.stream(duration_s=seconds)
            writer = produce_in_background(stream, run, topic=run.topics.clean)
            writer.join(seconds + 60)
            time.sleep(grace + 2 * commit + 1)  # the last windows close and are committed
            done.set()

        threading.Thread(target=write, daemon=True).start()
        read = read_records(
            run.topics.candles_1s, settings=run, until=done.is_set, timeout_s=seconds + 120
        )
    finally:
        service.stop()
        delete_pipeline(run)
    if not read.records:
        raise RuntimeError(f"no candle was read; the service said:\n{service.output()}")
    ends = pd.to_datetime([json.loads(r.value)["end"] for r in read.records], utc=True)
    frame = pd.DataFrame(
        {"publish_time": ends, "consume_time": pd.to_datetime(read.received_at, utc=True)}
    )
    # The windows of the stream (not the one of the tick sent first, to start the service).
    frame = frame[frame["publish_time"] > pd.Timestamp(started, unit="s", tz="UTC")]
    record_latency(results, "1 s window end -> candle read committed", frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000, help="ticks (default %(default)s)")
    parser.add_argument(
        "--latency-seconds", type=float, default=10.0, help="paced stream (default %(default)s)"
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    arguments = parser.parse_args()
    count = arguments.count
    settings = load_settings().isolated(f"bench-{uuid.uuid4().hex[:8]}")
    results = Results()
    in_memory(results, count)
    order_book(results, count)
    with_database = database_answers(settings.store.database_url)
    if with_database:
        on_postgres(results, count, settings)
    else:
        print("(no PostgreSQL at DATABASE_URL: its figures skipped; `make bench` starts one)")
    if broker_answers(settings.kafka.bootstrap_servers):
        on_kafka(results, count, settings, with_database=with_database)
        on_confluent(results, count, settings)
        latency(results, settings, rate=1000, seconds=arguments.latency_seconds)
        gate_delivery(results, count, settings, seconds=arguments.latency_seconds)
        book_service_latency(results, settings, rate=5000, seconds=arguments.latency_seconds)
        # At least 5,000: the engines read a few hundred at once, too few for a steady rate.
        candles_throughput(results, max(count, 5_000), settings)
        candles_delay(results, settings, rate=2000, seconds=max(arguments.latency_seconds, 3))
    else:
        where = settings.kafka.bootstrap_servers
        print(f"(no broker at {where}: Kafka figures skipped; `make broker`)")
    results.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS) of this process: {results.peak_rss_mib:.0f} MiB")
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(asdict(results), indent=2) + "\n")
        print(f"figures written to {arguments.json}")


if __name__ == "__main__":
    main()
