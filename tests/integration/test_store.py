"""The store against the real test broker and the real embedded PostgreSQL: every clean tick is
stored exactly once, whatever is killed, duplicated or broken on the way."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka.errors import KafkaError

from orderbook_kit.database.client import connect
from orderbook_kit.errors import DatabaseError
from orderbook_kit.kafka.admin import admin_client, delete_pipeline, ensure_topic
from orderbook_kit.kafka.offsets import end_offsets, group_lag
from orderbook_kit.lab.postgres import server
from orderbook_kit.market.decoding import DecodeFailure, decode_message
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.market.tick import MAX_SEQ, Tick
from orderbook_kit.runtime.launcher import start_service
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.store.sink import StoreSink
from orderbook_kit.store.tables import drop_schema, prepare_session, stored_offsets, write_batch
from tests.conftest import produce_clean, produce_clean_in_transactions, wait_for
from tests.hostile import hostile_cases

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]


@pytest.fixture
def settings() -> Iterator[Settings]:
    """Topics, groups and a database schema of the test's own."""
    own = load_settings().isolated(f"store-{uuid.uuid4().hex[:10]}")
    yield own
    with connect(own.store.database_url, timeout_s=10) as conn:
        drop_schema(conn, own.store.schema)


def ticks(count: int, seed: int = 1) -> list[Tick]:
    return list(OrderbookSimulator(SYMBOLS, seed=seed).ticks(count))


def stored_keys(settings: Settings) -> list[tuple[str, int]]:
    with connect(settings.store.database_url, timeout_s=10, schema=settings.store.schema) as conn:
        return conn.execute("SELECT symbol, seq FROM ticks ORDER BY symbol, seq").fetchall()


def row_count(settings: Settings) -> int:
    try:
        return len(stored_keys(settings))
    except Exception:  # the table does not exist until the store has started
        return 0


def offsets_in_database(settings: Settings) -> dict[int, int]:
    with connect(settings.store.database_url, timeout_s=10, schema=settings.store.schema) as conn:
        return stored_offsets(conn, settings.store.group, settings.topics.clean)


def committed_in_kafka(settings: Settings) -> dict[int, int]:
    lag = group_lag(settings.store.group, settings.topics.clean, settings)
    return {int(row.partition): int(row.committed) for row in lag.itertuples() if row.committed > 0}


def ends_of_clean(settings: Settings) -> dict[int, int]:
    """The clean topic's end offset per partition that holds messages (the others have no
    stored offset: there was nothing to store)."""
    return {p: end for p, end in end_offsets(settings.topics.clean, settings).items() if end}


def topic_exists(settings: Settings) -> bool:
    with admin_client(settings.kafka.bootstrap_servers, 10) as admin:
        return settings.topics.clean in admin.list_topics()


def distinct_keys(sent: list[Tick]) -> list[tuple[str, int]]:
    return sorted({(tick.symbol, tick.seq) for tick in sent})


def test_n_clean_ticks_give_n_rows_and_the_offsets_of_the_topic_end(settings: Settings) -> None:
    sent = ticks(600)
    produce_clean(settings, sent)

    stats = StoreSink(settings).run(idle_s=2, duration_s=60)

    assert (stats.read, stats.stored, stats.duplicates, stats.skipped_count) == (600, 600, 0, 0)
    assert stored_keys(settings) == distinct_keys(sent)
    ends = ends_of_clean(settings)
    assert offsets_in_database(settings) == ends
    assert committed_in_kafka(settings) == ends  # Kafka's tools see the same progress
    with connect(settings.store.database_url, timeout_s=10, schema=settings.store.schema) as conn:
        row = conn.execute(
            "SELECT bid, ask, event_time FROM ticks WHERE symbol = %s AND seq = %s",
            (sent[7].symbol, sent[7].seq),
        ).fetchone()
    assert row == (sent[7].bid, sent[7].ask, sent[7].event_time)  # the tick's own values


def test_at_the_end_of_a_topic_written_in_transactions_the_store_shows_no_lag(
    settings: Settings,
) -> None:
    # Committed transactions, an aborted one, then one more: each ends with a marker that takes
    # an offset but is no message. The store reads the committed ticks only, and its offsets are
    # past the markers, so at the end it is at the end - stored and in Kafka, lag 0.
    sent = ticks(120)
    committed_ticks = produce_clean_in_transactions(
        settings, [sent[:40], sent[40:80], sent[80:]], aborted={1}
    )

    stats = StoreSink(settings).run(idle_s=2, duration_s=60)

    assert (stats.read, stats.stored) == (80, 80)
    assert stored_keys(settings) == distinct_keys(committed_ticks)
    ends = ends_of_clean(settings)
    assert sum(ends.values()) > 120  # the markers: offsets with no message
    assert offsets_in_database(settings) == ends
    wait_for(lambda: committed_in_kafka(settings) == ends, 30, "Kafka's copy of the offsets")


def test_duplicated_input_gives_no_duplicate_rows(settings: Settings) -> None:
    sent = ticks(300)
    # Each of the first 100 ticks twice in a row (the same batch), and the last 50 again later.
    doubled = [copy for tick in sent[:100] for copy in (tick, tick)] + sent[100:] + sent[-50:]
    produce_clean(settings, doubled)

    stats = StoreSink(settings).run(idle_s=2, duration_s=60)

    assert stats.read == len(doubled) == 450
    assert (stats.stored, stats.duplicates) == (300, 150)
    assert stored_keys(settings) == distinct_keys(sent)
    # Run again: everything is stored, nothing is read twice.
    assert StoreSink(settings).run(idle_s=1, duration_s=30).read == 0


def test_a_message_that_is_not_a_tick_is_skipped_and_counted_and_never_blocks(
    settings: Settings,
) -> None:
    # The hostile table's messages that are not valid ticks at all; each one claims the seq of
    # the good tick that follows it, which must still be stored.
    good = [tick for tick in ticks(40) if tick.symbol == "TTF-GAS"]
    messages: list[Tick | tuple[bytes | None, bytes | None]] = []
    bad = 0
    for tick in good:
        for case in hostile_cases(next_seq=tick.seq):
            if isinstance(decode_message(case.key, case.value), DecodeFailure):
                messages.append((case.key, case.value))
                bad += 1
                break
        messages.append(tick)
    messages.append((b"TTF-GAS", b"x" * 200_000))  # far larger than any tick
    bad += 1
    produce_clean(settings, messages)

    stats = StoreSink(settings).run(idle_s=2, duration_s=60)

    assert stats.skipped_count == bad > 10
    assert stats.stored == len(good)
    assert stored_keys(settings) == distinct_keys(good)
    assert offsets_in_database(settings) == ends_of_clean(settings)


def test_killed_with_sigkill_mid_stream_and_restarted_stores_exactly_the_distinct_ticks(
    settings: Settings,
) -> None:
    sent = ticks(20_000)
    first, second = sent[:15_000], sent[15_000:]
    produce_clean(settings, first + first[:2000])  # some duplicates too, as the gate can write

    store = start_service("store", settings, "--quiet")
    try:
        wait_for(lambda: row_count(settings) > 0, 60, "the store's first batch")
    finally:
        store.kill()  # SIGKILL, at once: most likely in the middle of a batch
    assert 0 < row_count(settings) <= len(first)
    produce_clean(settings, second + first[-500:])  # the stream goes on while the store is down

    restarted = start_service("store", settings, "--quiet", "--idle", "3")
    assert restarted.wait(120) == 0, restarted.output()
    assert stored_keys(settings) == distinct_keys(sent)
    assert offsets_in_database(settings) == ends_of_clean(settings)
    assert "0 skipped" in restarted.last_line()


def members_with_partitions(settings: Settings) -> int:
    """How many members of the store group own partitions, once the group is stable (0 while
    the broker cannot describe it yet: right after it starts, its group coordinator is loading)."""
    with admin_client(settings.kafka.bootstrap_servers, 10) as admin:
        try:
            group = admin.describe_groups([settings.store.group])[settings.store.group]
        except KafkaError as exc:
            if not exc.retriable:
                raise
            return 0
    if group["group_state"] != "Stable":
        return 0
    return sum(1 for member in group["members"] if isinstance(member["member_assignment"], dict))


def test_two_instances_in_one_group_split_the_partitions_and_store_each_tick_once(
    settings: Settings,
) -> None:
    with admin_client(settings.kafka.bootstrap_servers, 10) as admin:
        ensure_topic(admin, settings.topics.clean, 3)
    stores = [start_service("store", settings, "--idle", "6") for _ in range(2)]
    try:
        wait_for(lambda: members_with_partitions(settings) == 2, 60, "both stores in the group")
        sent = ticks(6000)
        produce_clean(settings, sent + sent[::7])
        codes = [store.wait(120) for store in stores]
    finally:
        for store in stores:
            store.kill()
    assert codes == [0, 0], [store.output() for store in stores]
    summaries = [store.last_line() for store in stores]
    stored = [int(summary.split(": ")[1].split(" stored")[0]) for summary in summaries]
    assert all(n > 0 for n in stored), summaries  # both did share the work
    assert sum(stored) == len(distinct_keys(sent))
    assert stored_keys(settings) == distinct_keys(sent)


def test_an_offset_is_never_moved_back_by_a_late_writer(settings: Settings) -> None:
    # A store that stalled and lost its partition may still commit its old batch: the offset
    # the partition's new owner stored must win.
    StoreSink(settings).connect().close()  # creates the tables
    with connect(settings.store.database_url, timeout_s=10, schema=settings.store.schema) as conn:
        prepare_session(conn)
        write_batch(conn, settings.store.group, [], {(settings.topics.clean, 0): 100})
        write_batch(conn, settings.store.group, [], {(settings.topics.clean, 0): 40})
        assert stored_offsets(conn, settings.store.group, settings.topics.clean) == {0: 100}


def test_the_database_going_away_stops_the_store_clearly_and_a_restart_loses_nothing(
    settings: Settings, own_database: tuple[str, Path]
) -> None:
    url, state = own_database
    settings = settings.replace(store={"database_url": url})
    first, second = ticks(1200)[:900], ticks(1200)[900:]
    produce_clean(settings, first)
    store = start_service("store", settings, "--quiet")
    try:
        wait_for(lambda: row_count(settings) == len(first), 60, "the first ticks stored")
        server.stop(state)  # PostgreSQL goes away while the store runs
        produce_clean(settings, second)  # its next batch cannot be stored
        code = store.wait(60)
    finally:
        store.kill()
    output = store.output()
    assert code == 1, output
    assert "error: PostgreSQL failed while the store was storing a batch" in output
    assert "resumes at the last stored offset" in output and "Traceback" not in output

    server.start(url, state)
    stored = offsets_in_database(settings)
    assert sum(stored.values()) == len(first)  # the failed batch left no trace
    committed = committed_in_kafka(settings)
    assert all(offset <= stored.get(partition, 0) for partition, offset in committed.items())

    restarted = start_service("store", settings, "--quiet", "--idle", "2")
    assert restarted.wait(60) == 0, restarted.output()
    assert stored_keys(settings) == distinct_keys(first + second)


def run_store(settings: Settings, *arguments: str, **environment: str) -> tuple[int, str, float]:
    env = {**os.environ, **settings.as_environment(), **environment}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "orderbook_kit.store", "--idle", "1", *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return result.returncode, result.stderr, time.monotonic() - started


def test_no_database_at_database_url_is_one_error_line_naming_the_fix(
    settings: Settings, free_address: str
) -> None:
    url = f"postgresql://orderbook@{free_address}/orderbook"
    code, stderr, took = run_store(settings, DATABASE_URL=url, KAFKA_CLIENT_TIMEOUT_S="3")
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith(
        f"error: No PostgreSQL accepted us at {url}"
    )
    assert "python -m orderbook_kit.lab.postgres start" in stderr and "DATABASE_URL" in stderr
    assert took < 3 + 10  # the client timeout, plus Python's start-up


def test_a_database_url_with_a_wrong_user_or_password_names_the_user(settings: Settings) -> None:
    host = settings.store.database_url.split("@")[1]
    url = f"postgresql://intruder:s3cret@{host}"
    code, stderr, _ = run_store(settings, DATABASE_URL=url)
    assert code == 2
    assert 'role "intruder" does not exist' in stderr
    assert "DATABASE_URL must name a user and database that exist there" in stderr
    assert "s3cret" not in stderr  # a password is never printed


def cli(state: Path, url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORDERBOOK_DB_DIR": str(state), "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "orderbook_kit.lab.postgres", *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_db_start_status_stop_keep_the_data(free_address: str) -> None:
    # Inside a folder only its owner may enter (mkdtemp's 0700): run as root, the kit must let
    # PostgreSQL's own user through it.
    private = Path(tempfile.mkdtemp(prefix="orderbook-test-cli-postgres-"))
    state = private / "db"
    url = f"postgresql://learner@{free_address}/market"
    try:
        assert cli(state, url, "status").returncode == 3
        started = cli(state, url, "start")
        assert started.returncode == 0, started.stderr
        assert f"PostgreSQL is up at {url}" in started.stdout
        assert cli(state, url, "start").returncode == 0  # idempotent
        assert cli(state, url, "status").returncode == 0
        assert cli(state, url, "url").stdout.strip() == url
        with connect(url, timeout_s=10) as conn:  # its user and database were made
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        assert "PostgreSQL stopped" in cli(state, url, "stop").stdout
        assert cli(state, url, "status").returncode == 3
        assert cli(state, url, "start").returncode == 0
        with connect(url, timeout_s=10) as conn:
            assert conn.execute("SELECT n FROM kept").fetchone() == (42,)
    finally:
        cli(state, url, "stop")
        shutil.rmtree(private, ignore_errors=True)


def test_db_start_on_a_port_in_use_names_the_port_and_the_fix(
    free_address: str, tmp_path: Path
) -> None:
    host, port = free_address.rsplit(":", 1)
    with socket.socket() as squatter:
        squatter.bind((host, int(port)))
        squatter.listen()
        result = cli(tmp_path / "db", f"postgresql://orderbook@{free_address}/orderbook", "start")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: Port {port} on 127.0.0.1 is already in use")
    assert "export DATABASE_URL=" in result.stderr and "Traceback" not in result.stderr


def test_db_start_refuses_a_host_that_is_not_this_machine(tmp_path: Path) -> None:
    result = cli(tmp_path / "db", "postgresql://orderbook@db.example.com:5432/orderbook", "start")
    assert result.returncode == 2
    assert "the kit starts PostgreSQL on 127.0.0.1 only" in result.stderr


def test_a_topic_created_again_behind_the_stores_back_is_a_clear_error(settings: Settings) -> None:
    produce_clean(settings, ticks(60))
    assert StoreSink(settings).run(idle_s=1, duration_s=30).stored == 60
    delete_pipeline(settings)
    wait_for(lambda: not topic_exists(settings), 30, "the topic deleted")
    produce_clean(settings, ticks(3))  # a new, shorter topic

    with pytest.raises(DatabaseError, match="the topic was deleted and created again"):
        StoreSink(settings).run(idle_s=1, duration_s=30)


def test_the_most_extreme_valid_ticks_are_stored_as_they_are(settings: Settings) -> None:
    # Every value a Tick accepts must fit its column, or one such tick would stop the store on
    # every start: the smallest and largest floats, the first representable time (a tick from
    # the future is not valid: the producer stamps publish_time), the largest seq.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    base = {"symbol": "X", "bid": 1.0, "ask": 2.0, "bid_size": 1.0, "ask_size": 1.0}
    extremes = [
        {"bid": 5e-324, "ask": 1e-323},
        {"bid": 1.7976931348623155e308, "ask": 1.7976931348623157e308},
        {"bid_size": 5e-324, "ask_size": 1.7976931348623157e308},
        {"event_time": datetime(1, 1, 1, tzinfo=UTC)},
        {"seq": MAX_SEQ},
    ]
    sent = [
        Tick(**{**base, "seq": seq, "event_time": start, **changes})
        for seq, changes in enumerate(extremes)
    ]
    produce_clean(settings, sent)

    stats = StoreSink(settings).run(idle_s=1, duration_s=60)

    assert (stats.stored, stats.skipped_count) == (len(sent), 0)
    with connect(settings.store.database_url, timeout_s=10, schema=settings.store.schema) as conn:
        rows = conn.execute(
            "SELECT seq, bid, ask, bid_size, ask_size, event_time FROM ticks ORDER BY seq"
        ).fetchall()
    expected = sorted((t.seq, t.bid, t.ask, t.bid_size, t.ask_size, t.event_time) for t in sent)
    assert rows == expected


def test_ctrl_c_finishes_the_batch_and_prints_the_summary(settings: Settings) -> None:
    produce_clean(settings, ticks(300))
    store = start_service("store", settings, "--quiet")
    try:
        wait_for(lambda: row_count(settings) == 300, 60, "every tick stored")
        code = store.stop()  # SIGINT, as Ctrl-C in its terminal
    finally:
        store.kill()
    assert code == 0, store.output()
    assert store.last_line() == (
        "Read 300 message(s): 300 stored, 0 already stored (duplicates), 0 skipped as not a "
        "valid tick."
    )


def test_a_table_changed_by_hand_stops_the_store_clearly_without_skipping_ticks(
    settings: Settings,
) -> None:
    StoreSink(settings).connect().close()  # creates the tables
    with connect(settings.store.database_url, timeout_s=10, schema=settings.store.schema) as conn:
        conn.execute("ALTER TABLE ticks ADD CONSTRAINT no_gas CHECK (symbol NOT LIKE '%-GAS')")
    produce_clean(settings, ticks(30))

    code, stderr, _ = run_store(settings)

    assert code == 1
    assert stderr.startswith("error: PostgreSQL refused the store's statement while it was")
    assert "CheckViolation" in stderr and "store reset --yes" in stderr
    assert offsets_in_database(settings) == {}  # nothing skipped: the batch is read again
