"""Throughput of the kit's pieces, printed as figures (not asserted: machines differ).

    make bench                                   # or:
    .venv/bin/python benchmarks/throughput.py --count 20000

The in-memory figures always run. The Kafka figures need a broker at KAFKA_BOOTSTRAP_SERVERS
(`make broker` starts one); they use topics of their own and delete them afterwards.
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
from orderbook_kit.faults import FaultInjector
from orderbook_kit.models import Tick
from orderbook_kit.producer import TickProducer
from orderbook_kit.quality.checks import QualityChecker
from orderbook_kit.quality.gate import QualityGate
from orderbook_kit.simulator import OrderbookSimulator

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
        lambda: [checker.check(m.value) for m in messages],
    )


def on_kafka(count: int, settings: Settings) -> None:
    settings = settings.isolated(f"bench-{uuid.uuid4().hex[:8]}")
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
    finally:
        delete_pipeline(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="ticks (default %(default)s)")
    count = parser.parse_args().count
    settings = load_settings()
    in_memory(count)
    if broker_answers(settings.bootstrap_servers):
        on_kafka(count, settings)
    else:
        print(f"(no broker at {settings.bootstrap_servers}: Kafka figures skipped; `make broker`)")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS) of this process: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
