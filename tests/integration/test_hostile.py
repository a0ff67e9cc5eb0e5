"""The hostile-message table through real Kafka: the gate and the reader, on the first run.

One hostile message after each good tick (the table in ``tests/hostile.py``), plus a raw message
as large as the broker accepts. The gate must write every raw offset to exactly one of clean and
dead-letter, with the right reason, without stopping once; every good tick stays clean; a dead
letter fits wherever its raw message fitted. The reader must skip what is not a tick, never raise.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from kafka import KafkaProducer

from orderbook_kit.kafka.admin import admin_client, ensure_topic, message_size_limit
from orderbook_kit.kafka.reader import read_records, read_ticks
from orderbook_kit.market.decoding import MAX_DETAIL_CHARS
from orderbook_kit.market.reasons import Reason
from orderbook_kit.quality.gate import HEADER_DETAIL, HEADER_REASON, QualityGate, header, source_of
from orderbook_kit.settings.environment import Settings, load_settings
from tests.hostile import SYMBOL, Hostile, good_tick, hostile_cases

pytestmark = pytest.mark.kafka

Where = tuple[int, int]


def produce(settings: Settings, messages: list[tuple[bytes | None, bytes | None]]) -> list[Where]:
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        max_request_size=2 * 1024 * 1024,  # room for the largest message the broker accepts
    )
    try:
        futures = [producer.send(settings.topics.raw, key=k, value=v) for k, v in messages]
        producer.flush(timeout=30)
        return [(f.get(10).partition, f.get(10).offset) for f in futures]
    finally:
        producer.close()


@pytest.fixture
def stream() -> tuple[Settings, dict[Where, Hostile | None]]:
    """The raw topic: good ticks of TTF-GAS, each followed by one hostile message."""
    settings = load_settings().isolated(f"hostile-{uuid.uuid4().hex[:8]}")
    with admin_client(settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s) as admin:
        ensure_topic(admin, settings.topics.raw, settings.topics.partitions)
        limit = message_size_limit(admin, settings.topics.raw)
    largest = Hostile(
        "as large as the broker accepts", SYMBOL.encode(), b"x" * (limit - 1024), Reason.TOO_LARGE
    )
    count = len(hostile_cases(0)) + 1
    labelled: list[Hostile | None] = []
    messages: list[tuple[bytes | None, bytes | None]] = []
    for seq in range(count):
        labelled.append(None)
        messages.append((SYMBOL.encode(), good_tick(seq).to_json()))
        # Each hostile message claims the seq of the good tick that follows it.
        case = largest if seq == count - 1 else hostile_cases(next_seq=seq + 1)[seq]
        labelled.append(case)
        messages.append((case.key, case.value))
    return settings, dict(zip(produce(settings, messages), labelled, strict=True))


def test_the_gate_routes_every_hostile_message_once_on_the_first_run(
    stream: tuple[Settings, dict[Where, Hostile | None]],
) -> None:
    settings, raw = stream
    gate = QualityGate(settings)
    stats = gate.run(count=len(raw), duration_s=60)
    assert stats.processed == len(raw)
    assert gate.tracked_symbols == 1

    clean = read_records(settings.topics.clean, settings=settings, timeout_s=30).records
    dead = read_records(settings.topics.dead_letters, settings=settings, timeout_s=30).records
    sources = [source_of(record)[1:] for record in clean + dead]
    assert sorted(sources) == sorted(raw)  # every raw offset, exactly once
    assert all(raw[source_of(record)[1:]] is None for record in clean)  # only the good ticks
    assert len(clean) == sum(item is None for item in raw.values())
    reasons = {}
    for record in dead:
        case = raw[source_of(record)[1:]]
        assert case is not None
        reasons[case.name] = (header(record, HEADER_REASON), case.reason.value)
        assert 0 < len(header(record, HEADER_DETAIL) or "") <= MAX_DETAIL_CHARS
        assert record.value == case.value or (record.value is None and not case.value)
    assert {name: got for name, (got, expected) in reasons.items() if got != expected} == {}


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_the_reader_skips_what_is_not_a_tick_and_never_raises(
    stream: tuple[Settings, dict[Where, Hostile | None]], client: str
) -> None:
    settings, raw = stream
    settings = settings.replace(kafka={"client": client})
    result = read_ticks(settings.topics.raw, settings=settings, timeout_s=30)
    frame = result.frame
    good = [where for where, item in raw.items() if item is None]
    # The reader judges each message alone: what needs the gate's memory or clock passes it.
    passes = {
        "a valid tick with seq 2**62",
        "prices near float's maximum",
        "event and publish time 3000 years ahead",
    }
    read = set(zip(frame["partition"], frame["offset"], strict=True))
    expected = set(good) | {
        w for w, item in raw.items() if item is not None and item.name in passes
    }
    assert read == expected
    skipped = Counter(
        item.reason.value for item in raw.values() if item is not None and item.name not in passes
    )
    assert Counter(result.skipped) == skipped
    is_good = [
        where in set(good) for where in zip(frame["partition"], frame["offset"], strict=True)
    ]
    assert sorted(frame.loc[is_good, "seq"]) == list(range(len(good)))
