"""The gate's memory follows its partitions: a restarted gate, or one that takes over from a gate
that was killed, judges each message as the gate before it would have."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from orderbook_kit.kafka.admin import admin_client
from orderbook_kit.kafka.groups import wait_for_members
from orderbook_kit.kafka.offsets import end_offsets, group_lag, set_group_offsets
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.kafka.reader import read_records, read_ticks
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.market.tick import Tick
from orderbook_kit.quality.gate import HEADER_DETAIL, HEADER_REASON, QualityGate, header
from orderbook_kit.quality.outputs import copies_by_source, read_outputs
from orderbook_kit.runtime.launcher import start_service
from orderbook_kit.settings.environment import Settings, load_settings
from tests.conftest import wait_for

pytestmark = pytest.mark.kafka

SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]


def lesson_settings() -> Settings:
    return load_settings().isolated(f"memory-{uuid.uuid4().hex[:10]}")


def send(settings: Settings, ticks: list[Tick]) -> None:
    with TickProducer(settings) as producer:
        for tick in ticks:
            producer.send(tick)
        producer.flush()


def reasons_of_new_dead_letters(settings: Settings, before: int) -> list[str | None]:
    dead = read_records(settings.topics.dead_letters, settings=settings).records
    return [header(record, HEADER_REASON) for record in dead][before:]


def test_after_a_restart_the_gate_still_knows_each_symbols_last_tick() -> None:
    settings = lesson_settings()
    ticks = list(OrderbookSimulator("TTF-GAS", seed=3).ticks(20))
    send(settings, ticks)
    assert QualityGate(settings).run(count=20, duration_s=30).clean == 20

    last = ticks[-1]
    later = last.event_time
    replayed = [
        last,  # the same tick again: a feed handler that re-sent after a reconnect
        ticks[10],  # an old one
        last.model_copy(update={"seq": last.seq + 5, "event_time": later}),  # a hole before it
        last.model_copy(update={"seq": last.seq + 1, "bid": last.bid * 1.3, "ask": last.ask * 1.3}),
        last.model_copy(update={"seq": last.seq + 1}),  # the one that really comes next
    ]
    send(settings, replayed)
    restarted = QualityGate(settings).run(idle_s=2, duration_s=60)
    assert restarted.processed == 5
    # A gate with no memory would have taken the first of these as a fresh start.
    assert reasons_of_new_dead_letters(settings, 0) == [
        "duplicate",
        "out_of_order",
        "seq_gap",
        "price_jump",
    ]
    clean = read_ticks(settings.topics.clean, settings=settings).frame
    assert list(clean["seq"]) == [*range(20), last.seq + 1]


def test_messages_routed_before_a_lost_commit_are_not_cleaned_twice() -> None:
    settings = lesson_settings()
    send(settings, list(OrderbookSimulator(SYMBOLS, seed=4).ticks(30)))
    assert QualityGate(settings).run(count=30, duration_s=30).clean == 30
    # As if the gate had died after saving its memory and before committing: Kafka's committed
    # offsets say nothing was checked, the memory says everything was.
    set_group_offsets(
        settings.gate.group, settings.topics.raw, dict.fromkeys(range(3), 0), settings
    )
    again = QualityGate(settings).run(idle_s=2, duration_s=60)
    assert (again.processed, again.clean) == (30, 0)
    dead = read_records(settings.topics.dead_letters, settings=settings).records
    assert Counter(header(record, HEADER_REASON) for record in dead) == {"duplicate": 30}
    assert all("already checked" in (header(record, HEADER_DETAIL) or "") for record in dead)
    outputs = read_outputs(settings)
    assert set(copies_by_source(outputs).values()) == {2}  # once clean, once dead-lettered
    assert len(read_records(settings.topics.clean, settings=settings).records) == 30


def test_a_raw_topic_created_again_starts_with_a_blank_memory() -> None:
    settings = lesson_settings()
    ticks = list(OrderbookSimulator("TTF-GAS", seed=5).ticks(10))
    send(settings, ticks)
    assert QualityGate(settings).run(count=10, duration_s=30).clean == 10
    with admin_client(settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s) as admin:
        admin.delete_groups([settings.gate.group])
        admin.delete_topics([settings.topics.raw])

    def raw_topic_gone() -> bool:
        with admin_client(
            settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s
        ) as admin:
            return settings.topics.raw not in admin.list_topics()

    wait_for(raw_topic_gone, 30, "the raw topic to be deleted")
    send(settings, ticks)  # the same seqs, in a new topic of the same name
    again = QualityGate(settings).run(idle_s=2, duration_s=60)
    assert (again.processed, again.clean) == (10, 10)


def test_two_gates_share_the_partitions_and_one_killed_loses_nothing() -> None:
    settings = lesson_settings()
    symbols = [flag for symbol in SYMBOLS for flag in ("--symbol", symbol)]
    ingest = start_service(
        "ingest", settings, "-q", "--count", "1500", "--interval", "0.004", "--fault-rate", "0.02",
        *symbols,
    )  # fmt: skip
    gates = [start_service("quality", settings, "-q", "--instance", str(i)) for i in range(2)]
    try:
        wait_for_members(
            settings.gate.group,
            lambda members: len(members) == 2 and all(members.values()),
            settings,
            what="two gates sharing the partitions",
        )

        def every_partition_committed() -> bool:
            lag = group_lag(settings.gate.group, settings.topics.raw, settings)
            return bool(lag["committed"].gt(0).all())

        wait_for(every_partition_committed, 60, "each gate to commit a batch")
        gates[0].kill()
        assert ingest.wait(120) == 0, ingest.output()
        raw_count = sum(end_offsets(settings.topics.raw, settings).values())

        def all_committed() -> bool:
            lag = group_lag(settings.gate.group, settings.topics.raw, settings)
            return int(lag["committed"].sum()) == raw_count

        # The survivor takes over once the killed gate's session times out (10 s).
        wait_for(all_committed, 90, "the surviving gate to check every partition")
        assert gates[1].stop() == 0, gates[1].output()
    finally:
        for process in (ingest, *gates):
            process.kill()
    outputs = read_outputs(settings)
    sources = copies_by_source(outputs)
    assert len(sources) == raw_count  # every raw offset reached clean or dead letters
    assert set(sources) == {
        (r.partition, r.offset)
        for r in read_records(settings.topics.raw, settings=settings).records
    }
    # The survivor judged the killed gate's partitions with its memory: in the clean topic, each
    # symbol's seqs only go up (a copy written twice aside), as they would with one gate.
    clean = read_ticks(settings.topics.clean, settings=settings).frame
    for symbol, rows in clean.groupby("symbol"):
        assert rows.drop_duplicates("seq")["seq"].is_monotonic_increasing, symbol
    rechecked = [r for r in outputs if "already checked" in (header(r, HEADER_DETAIL) or "")]
    print(
        f"{raw_count} raw messages; {len(outputs) - raw_count} routed twice, "
        f"{len(rechecked)} of them dead-lettered as already checked"
    )
