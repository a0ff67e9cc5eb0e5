"""Exactly once through the gate, proven: SIGKILL at random moments, count with another reader.

The gate writes each batch (clean copies, dead letters, its memory) and the batch's offsets in one
Kafka transaction. Killed at any moment - mid-batch, mid-commit - it leaves the whole batch or
none of it to readers of committed data; the restarted gate (same transactional id) fences its
dead predecessor and goes on from the last committed batch. Half of the kills land at a random
moment, the other half at the moment that matters most: the gate frozen with its transaction
open and records of it already in the log. A gate frozen mid-stream (SIGSTOP)
whose partitions moved to another gate is a zombie: resumed, it cannot commit what it holds.
The counting reader is always kafka-python's, whichever client the gates use.
"""

from __future__ import annotations

import random
import time
import uuid

import pytest
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.confluent.consumer import MEMBER_LOST
from orderbook_kit.kafka.groups import group_members
from orderbook_kit.kafka.offsets import committed_total, end_offsets, wait_for_committed_reads
from orderbook_kit.kafka.reader import read_records
from orderbook_kit.quality.gate import source_of
from orderbook_kit.quality.outputs import copies_by_source
from orderbook_kit.runtime.launcher import ServiceProcess, start_service
from orderbook_kit.settings.environment import Settings, load_settings
from tests.conftest import wait_for
from tests.transactions import gate_outputs, pause_mid_transaction

# Every test here runs with both clients (ORDERBOOK_KAFKA_CLIENT): the gates they start consume
# and write their transactions with kafka-python, then with confluent-kafka (librdkafka).
pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("kafka_client")]

KILLS = 6  # three at random moments, three with a transaction open
TICKS = 12_000


def committed(settings: Settings) -> int:
    return committed_total(settings.gate.group, settings.topics.raw, settings)


def raw_messages(settings: Settings) -> int:
    try:
        return sum(end_offsets(settings.topics.raw, settings).values())
    except (KafkaError, OrderbookKitError):
        return -1


def assert_each_raw_message_once(settings: Settings) -> tuple[int, int]:
    """Every raw message exactly once in clean or dead letters under read_committed, byte for
    byte; (raw messages, records of aborted transactions)."""
    settings = settings.replace(kafka={"client": "kafka-python"})  # the independent reader
    # A commit is answered before its markers are written: wait until they are, so the last
    # transaction is readable. A partition still held back is reported, not hidden.
    settled = wait_for_committed_reads(output_topics(settings), settings, timeout_s=60)
    raw = {(r.partition, r.offset): r.value for r in read_all(settings.topics.raw, settings)}
    written = outputs(settings, "read_committed")
    sources = copies_by_source(written)
    missing = set(raw) - set(sources)
    duplicated = {source: n for source, n in sources.items() if n > 1}
    assert not missing, (
        f"{len(missing)} raw messages missing, e.g. {sorted(missing)[:5]}; markers settled: "
        f"{settled}; " + why_missing(settings, missing)
    )
    assert not duplicated, f"{len(duplicated)} written twice, e.g. {list(duplicated)[:5]}"
    assert set(sources) == set(raw)  # and nothing that is not a raw message
    for record in written:  # byte for byte
        assert record.value == raw[source_of(record)[1:]]
    return len(raw), len(outputs(settings, "read_uncommitted")) - len(written)


def output_topics(settings: Settings) -> tuple[str, str]:
    return settings.topics.clean, settings.topics.dead_letters


def outputs(settings: Settings, isolation_level: str) -> list[ConsumerRecord]:
    return [
        record
        for topic in output_topics(settings)
        for record in read_all(topic, settings, isolation_level=isolation_level)
    ]


def read_all(
    topic: str, settings: Settings, isolation_level: str = "read_committed"
) -> list[ConsumerRecord]:
    """Every record of ``topic``, to its end: a read cut short by its time limit fails here,
    never as records missing."""
    read = read_records(topic, settings=settings, timeout_s=120, isolation_level=isolation_level)
    assert not read.timed_out, f"reading {topic} stopped at its 120 s limit ({read.outage})"
    return read.records


def why_missing(settings: Settings, missing: set[tuple[int, int]]) -> str:
    """Where the missing messages are, if anywhere: held back by an open transaction, written
    only in aborted ones, or seen as committed by librdkafka though not by kafka-python."""
    held = {}
    for topic in output_topics(settings):
        stable = end_offsets(topic, settings)
        ends = end_offsets(topic, settings, isolation_level="read_uncommitted")
        held |= {f"{topic}-{p}": (stable[p], ends[p]) for p in ends if stable[p] != ends[p]}
    uncommitted = copies_by_source(outputs(settings, "read_uncommitted"))
    librdkafka = copies_by_source(
        outputs(settings.replace(kafka={"client": "confluent"}), "read_committed")
    )
    where = lambda copies: sum(1 for source in missing if source in copies)  # noqa: E731
    return (
        f"output partitions held back (stable end, log end): {held}; of the missing, "
        f"{where(uncommitted)} are in the log (read_uncommitted), {where(librdkafka)} read as "
        "committed by librdkafka"
    )


def test_sigkill_at_six_moments_and_each_raw_message_is_written_exactly_once() -> None:
    settings = load_settings().isolated(f"eos-{uuid.uuid4().hex[:10]}")
    rng = random.Random()
    seed = rng.randrange(1_000_000)
    print(f"kill moments from seed {seed}")
    rng.seed(seed)
    # A live feed with every kind of fault, so the gate works in many small transactions. It
    # runs until the kills are over: each restarted gate waits out its dead predecessor's
    # session (10 s) before the group hands it the partitions.
    ingest = start_service("ingest", settings, "-q", "--interval", "0.004", "--fault-rate", "0.01")
    gates: list[ServiceProcess] = []
    try:
        kills_at = []
        for _ in range(KILLS):
            gate = start_service("quality", settings, "-q")
            gates.append(gate)
            before = committed(settings)
            # Working: it has committed a transaction of its own (after its predecessor's
            # session ran out and the group handed it the partitions).
            wait_for(lambda b=before: committed(settings) > b, 120, "the gate to commit", gate)
            if len(gates) % 2:
                # A random moment of its work: the delay places the kill, it waits for nothing.
                time.sleep(rng.uniform(0.0, 1.5))
            else:  # the moment that matters most: its transaction open, records in the log
                pause_mid_transaction(
                    gate, settings, settings.gate.transactional_id, outputs=gate_outputs(settings)
                )
            gate.kill()
            kills_at.append(committed(settings))
        wait_for(lambda: raw_messages(settings) >= TICKS, 300, f"{TICKS} raw messages", ingest)
        assert ingest.stop() == 0, ingest.output()
        raw_count = sum(end_offsets(settings.topics.raw, settings).values())
        last = start_service("quality", settings, "-q")
        gates.append(last)
        wait_for(lambda: committed(settings) == raw_count, 180, "the last gate", last)
        assert last.stop() == 0, last.output()
    finally:
        for process in (ingest, *gates):
            process.kill()
    print(f"killed at committed offsets {kills_at} of {raw_count}")
    assert raw_count >= TICKS
    checked, aborted = assert_each_raw_message_once(settings)
    assert checked == raw_count
    # The transactions open when their gates were killed: in the log, never read as committed.
    assert aborted > 0
    print(f"{raw_count} raw messages, each once under read_committed; the log holds {aborted} more")


def test_a_paused_gate_whose_partitions_moved_cannot_commit_its_stale_batch() -> None:
    settings = load_settings().isolated(f"zombie-{uuid.uuid4().hex[:10]}")
    ingest = start_service("ingest", settings, "-q", "--interval", "0.004", "--fault-rate", "0.01")
    zombie = start_service("quality", settings, "-q", "--instance", "0")
    successor = start_service("quality", settings, "-q", "--instance", "1")
    members = lambda: group_members(settings.gate.group, settings)  # noqa: E731
    zombie_id, successor_id = (f"orderbook-kit-quality-{gate.pid}" for gate in (zombie, successor))
    try:

        def both_working() -> bool:
            now = members()
            return sorted(now) == sorted([zombie_id, successor_id]) and all(now.values())

        wait_for(both_working, 120, "both gates with partitions of their own", zombie)
        wait_for(lambda: committed(settings) > 0, 120, "the gates to commit", zombie)
        zombie.pause()  # frozen mid-stream, maybe with a transaction open: it cannot tell
        frozen_at = committed(settings)
        # Its session runs out (10 s), and the group hands all its partitions to the successor,
        # which commits them: the frozen gate's batch is now the successor's to write.
        every = list(range(settings.topics.partitions))
        alone = lambda: {m: sorted(p) for m, p in members().items()} == {successor_id: every}  # noqa: E731
        wait_for(alone, 120, "the successor to hold every partition", successor)
        wait_for(lambda: committed(settings) > frozen_at, 120, "the successor to commit", successor)
        zombie.resume()  # wakes up holding a batch of partitions that are no longer its own
        resumed_at = committed(settings)
        wait_for(lambda: committed(settings) > resumed_at + 500, 120, "more commits", successor)
        assert ingest.stop() == 0, ingest.output()
        raw_count = raw_messages(settings)
        wait_for(lambda: committed(settings) == raw_count, 180, "the gates to finish", successor)
        assert successor.stop() == 0, successor.output()
        # It woke up, had its stale batch refused (if it held one: the group had moved on),
        # joined again and went on working: once, not in a loop of refusals. (On a loaded
        # machine a commit may also time out once before that - a transient failure, retried -
        # so what is counted is the group's refusal.)
        assert zombie.stop() == 0, zombie.output()
        refused = ("CommitFailedError", *MEMBER_LOST)  # kafka-python's word, librdkafka's
        refusals = [
            line
            for line in zombie.output().splitlines()
            if "did not commit" in line and any(word in line for word in refused)
        ]
        assert len(refusals) <= 1, zombie.output()
    finally:
        for process in (ingest, zombie, successor):
            process.kill()
    checked, aborted = assert_each_raw_message_once(settings)
    assert checked == raw_count
    print(f"{raw_count} raw messages, each once; {aborted} record(s) of aborted transactions")
