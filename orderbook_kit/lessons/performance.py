"""Measure the pipeline: throughput, publish-to-consume latency, and where one message's time goes.

Notebook 09 and ``benchmarks/throughput.py`` measure with these. Every figure is one run on this
machine, against whatever else it is doing: the functions return figures, never judge them.
Each measurement writes to a topic of its own (``settings.isolated``) and deletes it afterwards.
"""

from __future__ import annotations

import cProfile
import pstats
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from orderbook_kit.kafka.admin import admin_client, delete_pipeline, ensure_topic
from orderbook_kit.kafka.producer import TickProducer, produce_in_background
from orderbook_kit.kafka.reader import ReadResult, read_records, read_ticks
from orderbook_kit.market.decoding import decode_message
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.market.tick import Tick
from orderbook_kit.settings.environment import Settings

__all__ = [
    "Throughput",
    "client_comparison",
    "message_costs",
    "paced_latency_ms",
    "percentiles",
    "profile_table",
    "scratch_settings",
    "spread_of_runs",
    "time_producing",
    "time_reading",
    "tuning_grid",
]

PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


@dataclass(frozen=True)
class Throughput:
    """``count`` messages in ``seconds``."""

    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


def scratch_settings(settings: Settings, label: str) -> Settings:
    """``settings`` with topics of their own for one measurement (delete them with
    ``delete_pipeline``), created now with ``settings.topics.partitions`` partitions."""
    scratch = settings.isolated(f"{label}-{uuid.uuid4().hex[:6]}")
    with admin_client(scratch.kafka.bootstrap_servers, scratch.kafka.client_timeout_s) as admin:
        ensure_topic(admin, scratch.topics.raw, scratch.topics.partitions)
    return scratch


def time_producing(ticks: Sequence[Tick], settings: Settings, **kafka_overrides: Any) -> Throughput:
    """Send ``ticks`` with the kit's producer (``settings.kafka.client``) to
    ``settings.topics.raw``, until Kafka acknowledged every one."""
    with TickProducer(settings, create_topic=False, **kafka_overrides) as producer:
        started = time.perf_counter()
        for tick in ticks:
            producer.send(tick)
        producer.flush()
        elapsed = time.perf_counter() - started
    return Throughput(len(ticks), elapsed)


def time_reading(settings: Settings, *, timeout_s: float = 300) -> tuple[Throughput, ReadResult]:
    """Read ``settings.topics.raw`` into a DataFrame from the beginning to its end."""
    started = time.perf_counter()
    result = read_ticks(settings.topics.raw, settings=settings, timeout_s=timeout_s)
    elapsed = time.perf_counter() - started
    return Throughput(len(result.frame), elapsed), result


def tuning_grid(
    ticks: Sequence[Tick],
    settings: Settings,
    *,
    lingers_ms: Iterable[int],
    batch_sizes: Iterable[int],
    repeats: int = 1,
) -> pd.DataFrame:
    """Producing throughput for each ``linger_ms`` and ``batch_size``, ``repeats`` times: one row
    per run (``run`` numbers them). The pairs take turns, round after round, so a moment when
    the machine is busy falls on every pair alike; all runs write to one scratch topic."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    pairs = [(linger, size) for linger in lingers_ms for size in batch_sizes]
    scratch = scratch_settings(settings, "grid")
    rows = []
    try:
        for run in range(repeats):
            for linger_ms, batch_size in pairs:
                result = time_producing(ticks, scratch, linger_ms=linger_ms, batch_size=batch_size)
                rows.append(
                    {
                        "linger_ms": linger_ms,
                        "batch_size": batch_size,
                        "run": run,
                        "ticks_per_s": result.per_second,
                    }
                )
    finally:
        delete_pipeline(scratch)
    return pd.DataFrame(rows)


def spread_of_runs(runs: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Per group of ``by``: the median of ``value`` over its runs, and the spread around it
    (the lowest and highest run, and how far each is from the median, for error bars)."""
    summary = runs.groupby(by)[value].agg(median="median", low="min", high="max").reset_index()
    summary["below"] = summary["median"] - summary["low"]
    summary["above"] = summary["high"] - summary["median"]
    return summary


def paced_latency_ms(
    settings: Settings, *, rate: int, seconds: float, symbols: Sequence[str], **overrides: Any
) -> pd.Series:
    """Publish-to-consume latency (ms) of each tick of a stream paced at ``rate`` ticks/s,
    read while it is written (``overrides`` go to the producer, e.g. ``linger_ms=5``)."""
    scratch = scratch_settings(settings, "latency")
    simulator = OrderbookSimulator(list(symbols), interval_s=len(symbols) / rate)
    try:
        writer = produce_in_background(simulator.stream(duration_s=seconds), scratch, **overrides)
        read = read_ticks(settings=scratch, until=writer.finished, timeout_s=seconds + 60)
        writer.join(60)
    finally:
        delete_pipeline(scratch)
    frame = read.frame
    return (frame["consume_time"] - frame["publish_time"]).dt.total_seconds() * 1000


def percentiles(latency_ms: pd.Series) -> dict[str, float]:
    """p50, p90, p99 and max of a latency series."""
    figures = {name: float(latency_ms.quantile(q)) for name, q in PERCENTILES.items()}
    figures["max"] = float(latency_ms.max())
    return figures


def message_costs(ticks: Sequence[Tick], settings: Settings) -> pd.DataFrame:
    """Microseconds per message for each step of its life, in order: stamped, serialised, sent
    until acknowledged, fetched, decoded and validated - with ``settings.kafka.client``."""
    costs: dict[str, float] = {}

    def step(name: str, count: int, run: Callable[[], object]) -> Any:
        started = time.perf_counter()
        result = run()
        costs[name] = (time.perf_counter() - started) / count * 1e6
        return result

    stamped = step("stamp publish_time", len(ticks), lambda: [t.published() for t in ticks])
    encoded = step("serialise to JSON", len(ticks), lambda: [t.to_json() for t in stamped])
    keys = [t.symbol.encode() for t in ticks]
    scratch = scratch_settings(settings, "costs")
    try:
        with TickProducer(scratch, create_topic=False) as producer:

            def send() -> None:
                for key, value in zip(keys, encoded, strict=True):
                    producer.send_raw(key, value)
                producer.flush()

            step("send until acknowledged", len(ticks), send)
        read = step(
            "fetch from Kafka",
            len(ticks),
            lambda: read_records(settings=scratch, timeout_s=120),
        )
        values = [(r.key, r.value) for r in read.records]
        step("decode and validate", len(values), lambda: [decode_message(*kv) for kv in values])
    finally:
        delete_pipeline(scratch)
    return pd.DataFrame({"step": list(costs), "microseconds": list(costs.values())})


def client_comparison(
    ticks: Sequence[Tick],
    settings: Settings,
    clients: Iterable[str] = ("kafka-python", "confluent"),
) -> pd.DataFrame:
    """Ticks/s produced and read into a DataFrame by the kit on each client, same ticks."""
    rows = []
    for client in clients:
        scratch = scratch_settings(settings, "clients").replace(kafka={"client": client})
        try:
            produced = time_producing(ticks, scratch)
            read, result = time_reading(scratch)
        finally:
            delete_pipeline(scratch)
        rows.append(
            {
                "client": client,
                "produce_per_s": produced.per_second,
                "read_per_s": read.per_second,
                "ticks_read": len(result.frame),
            }
        )
    return pd.DataFrame(rows)


def profile_table(run: Callable[[], object], *, top: int = 10) -> pd.DataFrame:
    """Where ``run`` spends its own time (cProfile): the ``top`` functions, as a table.

    A profiler slows every Python call down, so the shares matter here, not the seconds.
    """
    profiler = cProfile.Profile()
    profiler.runcall(run)
    stats = pstats.Stats(profiler)
    rows = [
        {"function": _short_name(where), "calls": calls, "own_seconds": own}
        for where, (_, calls, own, _, _) in stats.stats.items()  # type: ignore[attr-defined]
    ]
    table = pd.DataFrame(rows).sort_values("own_seconds", ascending=False)
    table["share"] = table["own_seconds"] / table["own_seconds"].sum()
    return table.head(top).reset_index(drop=True)


def _short_name(where: tuple[str, int, str]) -> str:
    """(".../site-packages/kafka/record/util.py", 9, "f") -> "kafka/record/util.py:f"."""
    path, _, function = where
    if path == "~":  # a built-in
        return function
    parts = path.replace("\\", "/").split("/")
    for anchor in ("site-packages", "orderbook_kit"):
        if anchor in parts:
            index = parts.index(anchor)
            parts = parts[index + 1 :] if anchor == "site-packages" else parts[index:]
            break
    else:
        parts = parts[-2:]
    return f"{'/'.join(parts)}:{function}"
