"""The candles service on a real broker: its candles, read committed by a reader of our own, are
exactly the candles computed in batch from the clean topic - after SIGKILLs at random moments,
with its local state wiped before some restarts (so it comes back from the changelog), and with
two processors in one group, one of them killed. Late ticks from a feed handler that reconnects
are counted, set aside with the reason, and in no candle; hostile messages are set aside and
change no candle."""

from __future__ import annotations

import json
import random
import shutil
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from orderbook_kit.archive.queries import Archive
from orderbook_kit.archive.sink import ArchiveSink
from orderbook_kit.candles.application import HEADER_WINDOWS, state_folder
from orderbook_kit.candles.service import CandlesService
from orderbook_kit.database.client import connect
from orderbook_kit.kafka.admin import admin_client, delete_pipeline, ensure_topic
from orderbook_kit.kafka.groups import group_members
from orderbook_kit.kafka.headers import HEADER_REASON, header
from orderbook_kit.kafka.offsets import committed_total, end_offsets
from orderbook_kit.kafka.partitioning import partition_of
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.kafka.reader import read_records
from orderbook_kit.market.candles import ClosedWindows, WindowTick, closed_windows
from orderbook_kit.market.feed_delays import hold_back
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.market.tick import Tick, utc_now
from orderbook_kit.monitoring.scrape import Scrape, scrape
from orderbook_kit.runtime.launcher import ServiceProcess, start_service
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.store import queries as hot
from orderbook_kit.store.sink import CANDLE_SOURCE, StoreSink
from orderbook_kit.store.tables import drop_schema
from tests.conftest import wait_for

pytestmark = pytest.mark.kafka

SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2", "THE-GAS", "PEG-GAS"]
KILLS = 5


def candle_settings(label: str, tmp_path: Path, partitions: int = 3) -> Settings:
    settings = load_settings().isolated(f"{label}-{uuid.uuid4().hex[:10]}")
    return settings.replace(
        topics={"partitions": partitions},
        candles={"state_dir": str(tmp_path / "state"), "commit_interval_s": 0.3},
    )


def publish(settings: Settings, ticks: list[Tick]) -> None:
    with admin_client(settings.kafka.bootstrap_servers, 10) as admin:
        ensure_topic(admin, settings.topics.clean, settings.topics.partitions)
    with TickProducer(settings, topic=settings.topics.clean, create_topic=False) as producer:
        for tick in ticks:
            producer.send(tick)


def market(count: int, *, minutes: float, seed: int = 7) -> list[Tick]:
    """``count`` ticks of five symbols, ending now, ``minutes`` of event time in all."""
    steps = count // len(SYMBOLS)
    interval_s = minutes * 60 / steps
    simulator = OrderbookSimulator(SYMBOLS, interval_s=interval_s, seed=seed)
    return list(simulator.ticks(count))


def read_all(settings: Settings, topic: str) -> list[ConsumerRecord]:
    """Every record of ``topic`` (read committed), by a reader of our own."""
    read = read_records(topic, settings=settings, timeout_s=60)
    assert not read.timed_out, f"reading {topic} timed out"
    return read.records


def batch_candles(settings: Settings) -> tuple[Counter[bytes], ClosedWindows]:
    """The candles of the clean topic computed in batch, partition by partition in offset order,
    read by a reader of our own: what the service must have sent, each record once."""
    by_partition: dict[int, list[WindowTick]] = {}
    for record in read_all(settings, settings.topics.clean):
        tick = WindowTick.of(Tick.from_json(record.value))
        by_partition.setdefault(record.partition, []).append(tick)
    expected: Counter[bytes] = Counter()
    everything = ClosedWindows({}, [], [])
    for ticks in by_partition.values():
        closed = closed_windows(ticks, grace_ms=settings.candles.grace_ms)
        for name, candles in closed.candles.items():
            expected.update(candle.to_json() for candle in candles)
            everything.candles.setdefault(name, []).extend(candles)
        expected.update(spread.to_json() for spread in closed.spreads)
        everything.spreads.extend(closed.spreads)
        everything.late.extend(closed.late)
    return expected, everything


def streamed_candles(settings: Settings) -> Counter[bytes]:
    topics = settings.topics
    sent: Counter[bytes] = Counter()
    for topic in (topics.candles_1s, topics.candles_1m, topics.spreads_5m):
        sent.update(record.value for record in read_all(settings, topic))
    return sent


def committed(settings: Settings) -> int:
    return committed_total(settings.candles.group, settings.topics.clean, settings)


def assert_same_candles(settings: Settings) -> None:
    expected, closed = batch_candles(settings)
    sent = streamed_candles(settings)
    assert len(closed.candles["candles_1m"]) >= 10, "too few minutes to tell"
    assert sent == expected, (
        f"{sum((sent - expected).values())} record(s) sent that batch does not give, "
        f"{sum((expected - sent).values())} missing"
    )


def test_sigkilled_five_times_mid_window_the_candles_equal_batch_candles(tmp_path: Path) -> None:
    settings = candle_settings("candles-eos", tmp_path)
    rng = random.Random()
    seed = rng.randrange(1_000_000)
    print(f"kill moments from seed {seed}")
    rng.seed(seed)
    # Enough that five services, each killed soon after its first commit, leave ticks for a sixth
    # (each gets through about 0.3-0.9 s of ticks: 3,000 to 9,000 here).
    publish(settings, market(60_000, minutes=12))
    total = sum(end_offsets(settings.topics.clean, settings).values())
    services: list[ServiceProcess] = []
    try:
        for index in range(KILLS):
            if index % 2:  # this restart finds no local state: the changelog must rebuild it
                shutil.rmtree(state_folder(settings), ignore_errors=True)
            service = start_service("candles", settings, "-q")
            services.append(service)
            before = committed(settings)
            wait_for(lambda b=before: committed(settings) > b, 120, "it to commit", service)
            assert committed(settings) < total, "it finished before it was killed: more ticks"
            time.sleep(rng.uniform(0.0, 0.6))  # places the kill; waits for nothing
            service.kill()
            print(f"kill {index + 1}: {committed(settings):,} of {total:,} ticks committed")
        last = start_service("candles", settings, "-q")
        services.append(last)
        wait_for(lambda: committed(settings) == total, 180, "the last service", last)
        assert last.stop() == 0, last.output()
    finally:
        for process in services:
            process.kill()
    assert_same_candles(settings)
    delete_pipeline(settings)


def live_feed(settings: Settings, stop: threading.Event) -> threading.Thread:
    """Clean ticks of five symbols in real time, 500 a second, until ``stop``: a stream that
    has not ended, however fast the processors are."""

    def feed() -> None:
        live = OrderbookSimulator(SYMBOLS, interval_s=0.01, seed=9)
        with TickProducer(settings, topic=settings.topics.clean, create_topic=False) as producer:
            for tick in live.stream(stop=stop):
                producer.send(tick)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return thread


def test_two_processors_share_the_partitions_and_one_takes_over_when_the_other_dies(
    tmp_path: Path,
) -> None:
    settings = candle_settings("candles-group", tmp_path)
    publish(settings, market(4_000, minutes=4, seed=8))
    stop = threading.Event()
    feeding = live_feed(settings, stop)
    first = start_service("candles", settings.replace(candles={"instance": "a"}), "-q")
    second = start_service("candles", settings.replace(candles={"instance": "b"}), "-q")
    try:
        wait_for(lambda: committed(settings) > 0, 120, "the group to commit", first)

        def both_working() -> bool:
            members = group_members(settings.candles.group, settings)
            return len(members) == 2 and all(members.values())

        wait_for(both_working, 120, "both processors to hold partitions", second)
        first.kill()  # mid-stream: ticks keep coming
        at_kill = committed(settings)
        wait_for(lambda: committed(settings) > at_kill, 120, "the survivor to commit", second)
        stop.set()
        feeding.join(30)
        assert not feeding.is_alive()
        total = sum(end_offsets(settings.topics.clean, settings).values())
        print(f"one killed at {at_kill:,} ticks committed; {total:,} in all")
        wait_for(lambda: committed(settings) == total, 180, "the survivor", second)
        assert second.stop() == 0, second.output()
    finally:
        stop.set()
        first.kill()
        second.kill()
    assert_same_candles(settings)
    delete_pipeline(settings)


def test_held_back_ticks_within_the_grace_update_their_window_and_later_ones_are_set_aside(
    tmp_path: Path,
) -> None:
    # One partition: both symbols share one clock, as in a partition of the real pipeline.
    settings = candle_settings("candles-late", tmp_path, partitions=1)
    settings = settings.replace(candles={"grace_s": 1.0})
    # From a minute's start: 10-14 s in, the minute's window stays open throughout.
    start = utc_now().replace(second=0, microsecond=0) - timedelta(minutes=3)
    simulator = OrderbookSimulator(["TTF-GAS", "NBP-GAS"], interval_s=0.1, seed=3)
    ticks = list(simulator.ticks(3_000, start_time=start))
    # NBP-GAS's feed handler is cut off for 4 s from 10 s in, then sends what it held.
    delayed = list(
        hold_back(
            ticks,
            "NBP-GAS",
            held_from=start + timedelta(seconds=10),
            released_at=start + timedelta(seconds=14),
        )
    )
    publish(settings, delayed)
    service = start_service("candles", settings, "-q", "--metrics-port", "0")
    try:
        exported = watched(service, settings, len(delayed))
    finally:
        assert service.stop() == 0, service.output()

    expected, closed = batch_candles(settings)
    assert streamed_candles(settings) == expected
    late = {(late.tick.symbol, late.tick.seq) for late in closed.late}
    held = {
        (t.symbol, t.seq)
        for t in ticks
        if t.symbol == "NBP-GAS" and 10 <= (t.event_time - start).total_seconds() < 14
    }
    # Released when the partition's clock reached 14 s, with a grace of 1 s: the ticks of the
    # seconds that ended by 13 s (10-13 s: 30 ticks) missed their 1-second candles...
    assert len(held) == 40 and late <= held and len(late) == 30, sorted(late)
    # ... and the last second's came within the grace: they are in their candles.
    windowed = {
        (c.symbol, seq)
        for c in closed.candles["candles_1s"]
        for seq in range(c.first_seq, c.last_seq + 1)
    }
    assert held - late <= windowed and not late & windowed
    # Every late tick is on the skipped topic, once, saying why and which window it missed.
    aside = read_all(settings, settings.topics.candles_skipped)
    seen = Counter((Tick.from_json(r.value).symbol, Tick.from_json(r.value).seq) for r in aside)
    assert seen == Counter(late)
    assert {header(r, HEADER_REASON) for r in aside} == {"late"}
    assert {header(r, HEADER_WINDOWS) for r in aside} == {"candles_1s"}
    assert f"{len(late):,} late" in service.output(), service.output()
    # What it exported, scraped while it ran: the same counts.
    assert exported.value("orderbook_candles_late_ticks_total", window="candles_1s") == len(late)
    assert exported.value("orderbook_candles_ticks_total", route="set_aside", reason="late") == len(
        late
    )
    assert exported.value("orderbook_candles_ticks_total", route="windowed") == len(delayed) - len(
        late
    )
    for window, records in closed.candles.items():
        assert exported.value("orderbook_candles_records_total", window=window) == len(records)
    assert exported.value("orderbook_candles_state_bytes") > 0
    delete_pipeline(settings)


def watched(service: ServiceProcess, settings: Settings, count: int) -> Scrape:
    """The service's metrics once it has read ``count`` ticks, every window they close has been
    sent and its group's lag is 0."""
    url = service.metrics_url()

    def done() -> bool:
        now = scrape(url)
        read = now.value("orderbook_candles_ticks_total")  # windowed and set aside
        lags = now.by_label("orderbook_consumer_lag_messages", "partition")
        return read == count and len(lags) == settings.topics.partitions and not any(lags.values())

    wait_for(done, 120, f"the service's metrics to count {count} ticks, at lag 0", service)
    return scrape(url)


HOSTILE: list[tuple[bytes | None, bytes | None, str]] = [
    (b"TTF-GAS", b"not json at all", "not_json"),
    (b"TTF-GAS", None, "not_json"),
    (b"TTF-GAS", b"[" * 100_000, "too_large"),
    (b"TTF-GAS", b'{"symbol": "TTF-GAS"}', "invalid_schema"),
]


def test_hostile_messages_are_set_aside_and_change_no_candle(tmp_path: Path) -> None:
    settings = candle_settings("candles-hostile", tmp_path)
    good = market(6_000, minutes=11, seed=5)
    publish(settings, good[:3_000])
    template = good[3_000]
    home = partition_of(template.symbol, settings.topics.partitions)
    future = template.model_copy(update={"event_time": template.event_time.replace(year=9999)})
    ancient = template.model_copy(update={"event_time": template.event_time.replace(year=1)})
    bad = [*HOSTILE]
    bad.append((template.symbol.encode(), future.to_json(), "time_ahead"))
    bad.append((template.symbol.encode(), ancient.to_json(), "before_1970"))
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        for key, value, _ in bad:
            producer.send(settings.topics.clean, key=key, value=value, partition=home)
        elsewhere = (home + 1) % settings.topics.partitions
        producer.send(
            settings.topics.clean,
            key=template.symbol.encode(),
            value=template.to_json(),
            partition=elsewhere,
        )
        producer.send(settings.topics.clean, key=None, value=template.to_json(), partition=home)
        producer.flush(30)
    finally:
        producer.close()
    publish(settings, good[3_000:])
    service = start_service("candles", settings, "-q", "--idle", "3")
    assert service.wait(120) == 0, service.output()

    aside = read_all(settings, settings.topics.candles_skipped)
    reasons = Counter(header(record, HEADER_REASON) for record in aside)
    expected_reasons = Counter(reason for _, _, reason in bad)
    expected_reasons.update({"wrong_partition": 1, "key_mismatch": 1})
    assert reasons == expected_reasons
    # The candles are those of the good ticks alone.
    expected = Counter[bytes]()
    by_partition: dict[int, list[WindowTick]] = {}
    for tick in good:
        by_partition.setdefault(partition_of(tick.symbol, 3), []).append(WindowTick.of(tick))
    for ticks in by_partition.values():
        closed = closed_windows(ticks, grace_ms=settings.candles.grace_ms)
        for candles in closed.candles.values():
            expected.update(candle.to_json() for candle in candles)
        expected.update(spread.to_json() for spread in closed.spreads)
    assert streamed_candles(settings) == expected
    delete_pipeline(settings)


@pytest.mark.postgres
def test_one_truth_three_ways_streamed_sql_and_duckdb_candles_are_the_same(
    tmp_path: Path,
) -> None:
    settings = candle_settings("candles-3ways", tmp_path)
    settings = settings.replace(archive={"url": str(tmp_path / "archive")}, candles={"live": True})
    sent = market(6_000, minutes=9, seed=11)
    publish(settings, sent)
    try:
        with CandlesService(settings) as service:
            counts = service.run(idle_s=3)
        streamed_1m = read_all(settings, settings.topics.candles_1m)
        assert_live_candles_end_as_the_closed_ones(settings, counts.windowed, streamed_1m)
        StoreSink(settings).run(count=len(sent))
        StoreSink(settings, source=CANDLE_SOURCE).run(count=len(streamed_1m))
        StoreSink(settings, source=CANDLE_SOURCE).run(idle_s=1)  # read again: nothing new
        ArchiveSink(settings).run(count=len(sent))
        with Archive(settings) as archive:
            for symbol in SYMBOLS:
                streamed = hot.streamed_candles(symbol, seconds=60, settings=settings)
                from_sql = hot.candles(symbol, seconds=60, settings=settings)
                from_duckdb = archive.candles(symbol, seconds=60)
                assert len(streamed) >= 8, streamed
                # The stream has the closed minutes; SQL and DuckDB also the last, still open.
                assert list(from_sql["bucket"][: len(streamed)]) == list(streamed["bucket"])
                assert len(from_sql) - len(streamed) <= 1
                for frame in (from_sql, from_duckdb):
                    pd.testing.assert_frame_equal(
                        streamed,
                        frame.head(len(streamed)).astype({"ticks": "int64"}),
                        check_dtype=False,
                        check_exact=True,
                    )
    finally:
        with connect(settings.store.database_url, timeout_s=10) as conn:
            drop_schema(conn, settings.store.schema)
        delete_pipeline(settings)


def assert_live_candles_end_as_the_closed_ones(
    settings: Settings, windowed: int, closed: list[ConsumerRecord]
) -> None:
    """--live: one running candle per tick (its minute as it stood after that tick), and a
    closed minute's last running candle is the closed candle itself."""
    running = read_all(settings, settings.topics.candles_live)
    assert len(running) == windowed > 0
    latest: dict[tuple[str, str], bytes] = {}
    for record in running:
        fields = json.loads(record.value)
        latest[fields["symbol"], fields["start"]] = record.value
    assert closed
    for record in closed:
        fields = json.loads(record.value)
        assert latest[fields["symbol"], fields["start"]] == record.value
