"""Throughput of the kit's pieces, printed as figures (not asserted: machines differ).

    make bench                                   # or:
    .venv/bin/python benchmarks/throughput.py --count 20000

The in-memory figures always run. The Kafka figures need a broker at KAFKA_BOOTSTRAP_SERVERS
(`make broker` starts one), the PostgreSQL ones a database at DATABASE_URL (`make bench` starts
the kit's own); they use topics and a schema of their own and delete them afterwards.
"""

from __future__ import annotations

import argparse
import resource
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from orderbook_kit.config import Settings, load_settings
from orderbook_kit.connection import broker_answers, delete_pipeline
from orderbook_kit.consumer import read_ticks
from orderbook_kit.database import connect, database_answers
from orderbook_kit.faults import FaultInjector
from orderbook_kit.models import Tick
from orderbook_kit.offsets import end_offsets
from orderbook_kit.producer import TickProducer
from orderbook_kit.quality.checks import QualityChecker
from orderbook_kit.quality.gate import QualityGate
from orderbook_kit.simulator import OrderbookSimulator
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


def report(name: str, count: int, run: Callable[[], object]) -> None:
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    print(f"{name:<44} {count:>8} in {elapsed:7.3f} s  {count / elapsed:>10,.0f} /s", flush=True)


def in_memory(count: int) -> None:
    simulator = OrderbookSimulator(SYMBOLS)
    report("simulate ticks", count, lambda: list(simulator.ticks(count, start_time=START)))
    ticks = list(OrderbookSimulator(SYMBOLS).ticks(count, start_time=START))
    report("serialise ticks to JSON", count, lambda: [t.to_json() for t in ticks])
    encoded = [t.to_json() for t in ticks]
    report("parse and validate JSON ticks", count, lambda: [Tick.from_json(v) for v in encoded])
    messages = list(FaultInjector.uniform(0.01).messages(ticks))
    checker = QualityChecker()
    report(
        "quality rules (1% of each fault)",
        len(messages),
        lambda: [checker.check(m.key, m.value) for m in messages],
    )


class _Position:
    """Where a tick was read from, for rows written without Kafka."""

    def __init__(self, offset: int) -> None:
        self.topic, self.partition, self.offset = "bench", 0, offset


def on_postgres(count: int, settings: Settings) -> None:
    """Rows per second into PostgreSQL: the store's write path alone, batch by batch."""
    ticks = list(OrderbookSimulator(SYMBOLS).ticks(count, start_time=START))
    rows = [tick_row(tick, _Position(i)) for i, tick in enumerate(ticks)]
    with connect(settings.database_url, timeout_s=10, schema=settings.db_schema) as conn:
        apply_schema(conn, settings.db_schema)
        prepare_session(conn)

        def write(batch_rows: list[tuple[object, ...]]) -> None:
            for start in range(0, len(batch_rows), MAX_BATCH):
                batch = batch_rows[start : start + MAX_BATCH]
                offsets = {("bench", 0): start + len(batch)}
                write_batch(conn, settings.store_group, batch, offsets)

        try:
            label = f"PostgreSQL: new rows, {MAX_BATCH} a transaction"
            report(label, count, lambda: write(rows))
            report("PostgreSQL: the same rows again (all skipped)", count, lambda: write(rows))
        finally:
            drop_schema(conn, settings.db_schema)


def on_kafka(count: int, settings: Settings, *, with_database: bool) -> None:
    ticks = list(OrderbookSimulator(SYMBOLS).ticks(count, start_time=START))
    messages = list(FaultInjector.uniform(0.01).messages(ticks))

    def produce() -> None:
        with TickProducer(settings) as producer:
            for message in messages:
                producer.send_raw(message.key, message.value)
            producer.flush()  # acknowledged by Kafka, not just buffered

    try:
        report("produce to Kafka, until acknowledged", len(messages), produce)
        read = lambda: read_ticks(settings.raw_topic, settings=settings, timeout_s=120)  # noqa: E731
        report("read back into a DataFrame", len(messages), read)
        gate = QualityGate(settings)
        report(
            "quality gate, raw -> clean + dead letters",
            len(messages),
            lambda: gate.run(count=len(messages), duration_s=300),
        )
        if with_database:
            clean = sum(end_offsets(settings.clean_topic, settings).values())
            store = StoreSink(settings)
            report(
                "store, clean topic -> PostgreSQL",
                clean,
                lambda: store.run(count=clean, duration_s=300),
            )
    finally:
        delete_pipeline(settings)
        if with_database:
            with connect(settings.database_url, timeout_s=10) as conn:
                drop_schema(conn, settings.db_schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="ticks (default %(default)s)")
    count = parser.parse_args().count
    settings = load_settings().isolated(f"bench-{uuid.uuid4().hex[:8]}")
    in_memory(count)
    with_database = database_answers(settings.database_url)
    if with_database:
        on_postgres(count, settings)
    else:
        print("(no PostgreSQL at DATABASE_URL: its figures skipped; `make bench` starts one)")
    if broker_answers(settings.bootstrap_servers):
        on_kafka(count, settings, with_database=with_database)
    else:
        print(f"(no broker at {settings.bootstrap_servers}: Kafka figures skipped; `make broker`)")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS) of this process: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
