"""The gate's memory, saved as state records and read back: a checker restored from them judges
every later message exactly as the one that saved them would have, and records that are not the
gate's own never break the restore."""

from __future__ import annotations

import itertools
import json
from types import SimpleNamespace
from typing import Any

import pytest

from orderbook_kit.market.checker_memory import (
    MemoryScope,
    PartitionMemory,
    restore_memory,
    state_records,
)
from orderbook_kit.market.checks import SEQ_WINDOW, QualityChecker
from orderbook_kit.market.faults import FaultInjector
from orderbook_kit.market.simulator import OrderbookSimulator

SCOPE = MemoryScope("orderbook-quality", "orderbook.raw", "topic-id-1")
BATCH = 7


def record(key: bytes | None, value: bytes | None) -> SimpleNamespace:
    return SimpleNamespace(key=key, value=value)


def faulty_stream() -> list[tuple[bytes, bytes]]:
    """Three interleaved symbols with every kind of fault, as the kit's faults make them."""
    injector = FaultInjector.uniform(0.03, seed=11)
    symbols = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]
    streams = [
        injector.messages(OrderbookSimulator(s, seed=i).ticks(200)) for i, s in enumerate(symbols)
    ]
    messages = [m for group in zip(*streams, strict=False) for m in group]
    return [(m.key, m.value) for m in messages]


def test_a_restored_checker_judges_the_rest_as_the_one_that_saved_it() -> None:
    messages = faulty_stream()
    original = QualityChecker()
    expected = [original.check(key, value).reason for key, value in messages]
    assert len(set(expected)) > 4  # the stream really exercises the rules

    saving = PartitionMemory(QualityChecker())
    log: list[SimpleNamespace] = []  # the state partition, as Kafka keeps it
    for start in range(0, len(messages), BATCH):
        restored = restore_memory(SCOPE, 0, log, QualityChecker).memory
        assert restored.checked_through == saving.checked_through
        for offset, (key, value) in enumerate(messages[start:], start):
            verdict = restored.checker.check(key, value)
            assert verdict.reason == expected[offset], f"split at {start}, message {offset}"
        for offset in range(start, min(start + BATCH, len(messages))):
            saving.checker.check(*messages[offset])
            saving.checked_through = offset
        log += [record(k, v) for k, v in state_records(SCOPE, 0, saving)]


def test_only_changed_symbols_are_written_again() -> None:
    memory = PartitionMemory(QualityChecker())
    ticks = OrderbookSimulator("TTF-GAS", seed=1).ticks(3)
    memory.checker.check("TTF-GAS", next(ticks).to_json())
    first = state_records(SCOPE, 0, memory)
    memory.checked_through = 5
    second = state_records(SCOPE, 0, memory)
    assert [json.loads(key)[3] for key, _ in first] == ["TTF-GAS", None]
    assert [json.loads(key)[3] for key, _ in second] == [None]  # the position only
    assert json.loads(second[0][1])["checked_through"] == 5


def saved(symbol: str = "TTF-GAS", scope: MemoryScope = SCOPE) -> list[SimpleNamespace]:
    memory = PartitionMemory(QualityChecker(), checked_through=41)
    tick = next(OrderbookSimulator(symbol, seed=1).ticks(1))
    memory.checker.check(symbol, tick.to_json())
    return [record(k, v) for k, v in state_records(scope, 0, memory)]


def test_memory_of_another_group_topic_partition_or_earlier_topic_is_not_used() -> None:
    others = [
        MemoryScope("another-group", SCOPE.topic, SCOPE.topic_id),
        MemoryScope(SCOPE.group, "another.topic", SCOPE.topic_id),
        MemoryScope(SCOPE.group, SCOPE.topic, "the-topic-deleted-before"),
    ]
    records = list(itertools.chain.from_iterable(saved(scope=scope) for scope in others))
    restored = restore_memory(SCOPE, 0, records, QualityChecker)
    assert (restored.symbols, restored.unreadable) == (0, 0)
    assert restored.memory.checked_through == -1
    assert restore_memory(SCOPE, 1, saved(), QualityChecker).symbols == 0  # partition 1's


def test_a_deleted_key_is_forgotten() -> None:
    records = [*saved(), record(SCOPE.key(0, "TTF-GAS"), None)]
    restored = restore_memory(SCOPE, 0, records, QualityChecker)
    assert restored.symbols == 0 and restored.memory.checked_through == 41


def state_value(**changes: Any) -> bytes:
    state = {
        "last_seq": 3,
        "last_time": "2026-01-01T00:00:00+00:00",
        "last_mid": 35.0,
        "explained": [4],
        "gap_at": None,
        "jumped_mids": [],
    }
    return json.dumps({"topic_id": SCOPE.topic_id, "state": state | changes}).encode()


HOSTILE = {
    "no key": record(None, b"{}"),
    "key not JSON": record(b"\xff\xfe", b"{}"),
    "key not a list": record(b'{"a": 1}', b"{}"),
    "key of 3": record(json.dumps([SCOPE.group, SCOPE.topic, 0]).encode(), b"{}"),
    "key with a number symbol": record(
        json.dumps([SCOPE.group, SCOPE.topic, 0, 7]).encode(), b"{}"
    ),
    "huge key": record(b"[" * 100_000, b"{}"),
    "deep key": record(b"[" * 30_000 + b"]" * 30_000, b"{}"),
    "value not JSON": record(SCOPE.key(0, "A"), b"not json"),
    "value a list": record(SCOPE.key(0, "A"), b"[1, 2]"),
    "huge value": record(SCOPE.key(0, "A"), b" " * 100_000 + b"{}"),
    "deep value": record(SCOPE.key(0, "A"), b"[" * 30_000 + b"]" * 30_000),
    "no state": record(SCOPE.key(0, "A"), json.dumps({"topic_id": SCOPE.topic_id}).encode()),
    "negative mid": record(SCOPE.key(0, "A"), state_value(last_mid=-1.0)),
    "mid NaN": record(SCOPE.key(0, "A"), state_value(last_mid=float("nan"))),
    "seq a string": record(SCOPE.key(0, "A"), state_value(last_seq="3")),
    "seq a bool": record(SCOPE.key(0, "A"), state_value(last_seq=True)),
    "naive time": record(SCOPE.key(0, "A"), state_value(last_time="2026-01-01T00:00:00")),
    "time not a time": record(SCOPE.key(0, "A"), state_value(last_time=12)),
    "explained not a list": record(SCOPE.key(0, "A"), state_value(explained=5)),
    "position a string": record(
        SCOPE.key(0, None),
        json.dumps({"topic_id": SCOPE.topic_id, "checked_through": "9"}).encode(),
    ),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_a_record_that_is_not_the_gates_memory_is_skipped_and_counted(case: str) -> None:
    records = [*saved(), HOSTILE[case], *saved("NBP-GAS")[:1]]
    restored = restore_memory(SCOPE, 0, records, QualityChecker)
    assert restored.unreadable == 1
    assert restored.symbols == 2  # the good records around it still count
    assert restored.memory.checked_through == (-1 if case == "position a string" else 41)


def test_a_restored_memory_keeps_its_bounds() -> None:
    huge = state_value(explained=list(range(4_000)), jumped_mids=[35.0] * 1_000)
    restored = restore_memory(SCOPE, 0, [record(SCOPE.key(0, "A"), huge)], QualityChecker)
    assert restored.symbols == 1
    state = restored.memory.checker.changes()
    assert state == {}  # restoring is not a change to write back
    checker = restored.memory.checker
    explained_seq = {"symbol": "A", "seq": 5, "bid": -1, "ask": 1, "bid_size": 1, "ask_size": 1}
    assert checker.check("A", json.dumps(explained_seq).encode()).reason is not None
    saved_again = checker.changes()["A"]
    assert len(saved_again["explained"]) <= SEQ_WINDOW and len(saved_again["jumped_mids"]) <= 3


def test_a_message_at_or_before_the_position_was_already_checked() -> None:
    memory = PartitionMemory(QualityChecker(), checked_through=10)
    assert memory.already_checked(10) and memory.already_checked(0)
    assert not memory.already_checked(11)
