"""The quality gate and replay against the real test broker: nothing lost, every reason right."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from orderbook_kit.kafka.admin import admin_client, delete_pipeline
from orderbook_kit.kafka.offsets import committed_total, end_offsets, group_lag
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.kafka.reader import read_records, read_ticks
from orderbook_kit.market.faults import FAULT_KINDS, FaultInjector, RawMessage
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.quality.dead_letters import read_dead_letters
from orderbook_kit.quality.gate import HEADER_REASON, QualityGate, header, source_of
from orderbook_kit.quality.outputs import copies_by_source, read_outputs
from orderbook_kit.settings.environment import Settings, load_settings
from tests.conftest import wait_for

# Every test here runs with both clients under the gate's producers (ORDERBOOK_KAFKA_CLIENT).
pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("kafka_client")]

START = datetime(2026, 1, 1, tzinfo=UTC)
SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]
Coordinates = tuple[int, int]  # (partition, offset) in the raw topic


def lesson_settings() -> Settings:
    """Topics and group of their own, so tests never see each other's messages."""
    return load_settings().isolated(f"test-{uuid.uuid4().hex[:10]}")


def produce(settings: Settings, messages: Iterator[RawMessage]) -> dict[Coordinates, RawMessage]:
    """Send ``messages`` to the raw topic; where each one was stored."""
    with TickProducer(settings) as producer:
        sent = [(message, producer.send_raw(message.key, message.value)) for message in messages]
        producer.flush()
    stored = {}
    for message, future in sent:
        metadata = future.get(timeout=10)
        stored[(metadata.partition, metadata.offset)] = message
    return stored


def test_every_raw_message_is_clean_or_dead_lettered_once_with_its_reason() -> None:
    settings = lesson_settings()
    injector = FaultInjector.uniform(0.04, seed=5)
    raw = produce(settings, injector.messages(OrderbookSimulator(SYMBOLS).ticks(900)))
    n = len(raw)
    assert n > 900 and set(injector.injected) == set(FAULT_KINDS)  # every kind is in there

    stats = QualityGate(settings).run(count=n, duration_s=60)
    assert stats.processed == n

    clean = read_records(settings.topics.clean, settings=settings).records
    dead = read_records(settings.topics.dead_letters, settings=settings).records
    assert len(clean) + len(dead) == n
    clean_sources = [source_of(record)[1:] for record in clean]
    dead_sources = [source_of(record)[1:] for record in dead]
    assert set(clean_sources) | set(dead_sources) == set(raw)
    assert len(set(clean_sources + dead_sources)) == n  # each exactly once

    for record, where in zip(clean, clean_sources, strict=True):
        assert raw[where].fault is None
        assert (record.key.decode(), record.value) == (raw[where].key, raw[where].value)
    for record, where in zip(dead, dead_sources, strict=True):
        assert header(record, HEADER_REASON) == raw[where].fault  # the reason injected
        assert (record.key.decode(), record.value) == (raw[where].key, raw[where].value)

    assert stats.clean == injector.clean == len(clean)
    assert stats.rejected == injector.injected
    frame = read_dead_letters(settings)
    assert Counter(frame["reason"]) == injector.injected
    assert frame["detail"].str.len().min() > 0
    assert int(group_lag(settings.gate.group, settings.topics.raw, settings)["lag"].sum()) == 0


def test_an_isolated_run_deletes_its_topics_and_group() -> None:
    settings = lesson_settings()
    assert settings.topics.raw.startswith("orderbook.raw.test-")
    produce(settings, FaultInjector({}).messages(OrderbookSimulator().ticks(5)))
    assert QualityGate(settings).run(count=5, duration_s=30).processed == 5
    delete_pipeline(settings)
    names = {
        settings.topics.raw,
        settings.topics.clean,
        settings.topics.dead_letters,
        settings.topics.gate_state,
    }

    def gone() -> bool:  # deletion spreads through the cluster's metadata asynchronously
        with admin_client(
            settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s
        ) as admin:
            groups = {g["group_id"] for g in admin.list_groups()}
            return not names & set(admin.list_topics()) and settings.gate.group not in groups

    wait_for(gone, 15, "the run's topics and group to be deleted")
    delete_pipeline(settings)  # nothing left to delete is not an error


def test_a_gate_run_again_continues_where_it_committed() -> None:
    settings = lesson_settings()
    simulator = OrderbookSimulator(SYMBOLS)
    produce(settings, FaultInjector({}).messages(simulator.ticks(30)))
    assert QualityGate(settings).run(count=30, duration_s=30).processed == 30
    produce(settings, FaultInjector({}).messages(simulator.ticks(12)))
    again = QualityGate(settings).run(idle_s=2, duration_s=30)
    assert (again.processed, again.clean) == (12, 12)  # only the new ones, all clean
    assert len(read_ticks(settings.topics.clean, settings=settings).frame) == 42


def committed(settings: Settings) -> int:
    return committed_total(settings.gate.group, settings.topics.raw, settings)


def test_killed_quality_service_loses_nothing_after_restart() -> None:
    settings = lesson_settings()
    env = {**os.environ, **settings.as_environment()}
    python = sys.executable
    ingest = subprocess.Popen(
        [
            python,
            "-m",
            "orderbook_kit.ingest",
            "--count",
            "1500",
            "--interval",
            "0.004",
            "--fault-rate",
            "0.02",
            "--quiet",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    gate_command = [python, "-m", "orderbook_kit.quality", "--quiet"]
    first = subprocess.Popen(gate_command, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: committed(settings) > 0, 90, "the first gate to commit a batch")
        # (On a loaded machine the feed may have ended by now: the gate is still mid-log, which
        # the killed_at check below asserts.)
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        killed_at = committed(settings)

        second = subprocess.Popen(gate_command, env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert ingest.wait(120) == 0, ingest.stderr.read() if ingest.stderr else ""
            raw_count = sum(end_offsets(settings.topics.raw, settings).values())
            wait_for(lambda: committed(settings) == raw_count, 120, "the restarted gate")
            second.send_signal(signal.SIGTERM)  # a graceful stop: finish the batch, report
            output, _ = second.communicate(timeout=30)
            assert second.returncode == 0
            assert output.splitlines()[-1].startswith("Checked ")
        finally:
            second.kill()
    finally:
        first.kill()
        ingest.kill()
    assert 0 < killed_at < raw_count

    raw = {
        (r.partition, r.offset): r
        for r in read_records(settings.topics.raw, settings=settings).records
    }
    outputs = read_outputs(settings)
    sources = copies_by_source(outputs)
    assert len(raw) == raw_count
    assert set(sources) == set(raw)  # every raw message is accounted for
    for record in outputs:  # and copies (at-least-once) are byte-identical copies
        assert record.value == raw[source_of(record)[1:]].value
    duplicated = sum(n - 1 for n in sources.values())
    print(f"{raw_count} raw messages, {len(outputs)} written, {duplicated} written twice")


def test_replay_from_a_timestamp_returns_exactly_the_messages_at_or_after_it() -> None:
    settings = lesson_settings()
    base_ms = int(START.timestamp() * 1000)
    ticks = list(OrderbookSimulator(SYMBOLS).ticks(90, start_time=START))
    stamped = {}
    with TickProducer(settings) as producer:
        # Three symbols share each 10 ms step, so timestamps tie across partitions.
        futures = [
            (
                base_ms + (i // 3) * 10,
                producer.send_raw(t.symbol, t.to_json(), timestamp_ms=base_ms + (i // 3) * 10),
            )
            for i, t in enumerate(ticks)
        ]
        producer.flush()
    for timestamp_ms, future in futures:
        metadata = future.get(timeout=10)
        stamped[(metadata.partition, metadata.offset)] = timestamp_ms

    def replayed(cut: datetime) -> set[Coordinates]:
        frame = read_ticks(settings.topics.raw, settings=settings, from_time=cut).frame
        return set(zip(frame["partition"], frame["offset"], strict=True))

    def expected(cut_ms: float) -> set[Coordinates]:
        return {where for where, ms in stamped.items() if ms >= cut_ms}

    for cut_ms in (base_ms, base_ms + 150, base_ms + 150.4, base_ms + 155, base_ms + 290):
        cut = START + timedelta(milliseconds=cut_ms - base_ms)
        assert replayed(cut) == expected(cut_ms), cut
    assert replayed(START - timedelta(days=1)) == set(stamped)
    assert replayed(START + timedelta(seconds=1)) == set()
    assert len(expected(base_ms + 150.4)) == len(expected(base_ms + 160)) == 3 * 14
