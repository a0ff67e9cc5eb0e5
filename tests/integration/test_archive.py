"""The archive against the real test broker, on disk and on a real S3 server: every clean tick
archived exactly once, whatever is killed on the way; and the archive answers the hot store's
questions with the hot store's answers."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from orderbook_kit.archive.expectations import check_archive
from orderbook_kit.archive.layout import COMMITS, OffsetRange, data_file, parse_data_file
from orderbook_kit.archive.queries import Archive, committed_files
from orderbook_kit.archive.sink import ArchiveSink
from orderbook_kit.archive.storage import open_storage
from orderbook_kit.database.client import connect
from orderbook_kit.errors import ArchiveStorageError, OrderbookKitError
from orderbook_kit.kafka.offsets import group_lag
from orderbook_kit.lab.s3 import server as s3_server
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.market.tick import Tick
from orderbook_kit.runtime.launcher import start_service
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.store import queries as hot
from orderbook_kit.store.sink import StoreSink
from orderbook_kit.store.tables import drop_schema
from tests.conftest import free_ports, produce_clean, produce_clean_in_transactions, wait_for

pytestmark = [pytest.mark.kafka]

SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Topics and groups of the test's own, and an archive folder of its own; small ranges."""
    own = load_settings().isolated(f"archive-{uuid.uuid4().hex[:10]}")
    return own.replace(archive={"url": str(tmp_path / "archive"), "roll_ticks": 700, "roll_s": 30})


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 server (the kit's S3Proxy) of this module's own, with bucket ``orderbook``."""
    state = tmp_path_factory.mktemp("s3")
    url = s3_server.start(f"http://127.0.0.1:{free_ports(1)[0]}", state)
    yield url
    s3_server.stop(state)


def ticks(count: int, seed: int = 1) -> list[Tick]:
    return list(OrderbookSimulator(SYMBOLS, seed=seed).ticks(count))


def archived(settings: Settings) -> pd.DataFrame:
    """Every committed row, sorted by symbol and seq."""
    with Archive(settings) as archive:
        return archive.query("SELECT * FROM ticks ORDER BY symbol, seq")


def keys(frame: pd.DataFrame) -> list[tuple[str, int]]:
    return list(zip(frame["symbol"], frame["seq"].astype(int), strict=True))


def sent_keys(sent: list[Tick]) -> list[tuple[str, int]]:
    return sorted((t.symbol, t.seq) for t in sent)


def test_at_the_end_of_a_topic_written_in_transactions_the_archive_shows_no_lag(
    settings: Settings,
) -> None:
    # Each transaction leaves a marker, an offset that is no message: the archive holds the
    # committed ticks only, and Kafka hears of the offsets past the markers (lag 0 at the end).
    sent = ticks(900)
    chunks = [sent[:300], sent[300:600], sent[600:]]
    committed = produce_clean_in_transactions(settings, chunks, aborted={1})

    stats = ArchiveSink(settings).run(idle_s=2, duration_s=60)

    assert (stats.read, stats.archived) == (600, 600)
    assert keys(archived(settings)) == sent_keys(committed)
    lag = lambda: group_lag(settings.archive.group, settings.topics.clean, settings)  # noqa: E731
    assert lag()["end"].sum() > 900  # the markers
    wait_for(lambda: lag()["lag"].sum() == 0, 30, "the archive's offsets at the topic's end")


def test_n_clean_ticks_become_exactly_n_rows_with_every_field_kept(
    settings: Settings, tmp_path: Path
) -> None:
    sent = ticks(5000)
    produce_clean(settings, sent)

    stats = ArchiveSink(settings).run(count=len(sent))

    assert (stats.read, stats.archived, stats.skipped_count) == (5000, 5000, 0)
    rows = archived(settings)
    assert keys(rows) == sent_keys(sent)
    expected = pd.DataFrame([t.model_dump() for t in sent]).sort_values(["symbol", "seq"])
    for column in ("bid", "ask", "bid_size", "ask_size"):
        assert rows[column].tolist() == expected[column].tolist()
    assert rows["event_time"].tolist() == expected["event_time"].tolist()
    # Rolled by size: no file range holds more than archive_roll_ticks records.
    with Archive(settings) as archive:
        for marker in archive.ranges():
            offsets = json.loads(open_storage(settings).read(marker))
            assert offsets["records"] <= settings.archive.roll_ticks
        assert (
            sum(pq.read_metadata(archive.storage.location(f)).num_rows for f in archive.files)
            == 5000
        )
    # And the archive passes its Great Expectations suite.
    checked = check_archive(settings, docs_dir=tmp_path / "docs")
    assert checked.success and checked.rows == 5000, checked.summary()


def test_every_file_is_hive_partitioned_by_symbol_and_event_date(settings: Settings) -> None:
    sent = ticks(900)
    produce_clean(settings, sent)
    ArchiveSink(settings).run(count=len(sent))

    storage = open_storage(settings)
    for relative in committed_files(storage):
        _symbol, day, offsets = parse_data_file(relative)  # type: ignore[misc]
        table = pq.read_table(storage.location(relative))
        assert "symbol" not in table.column_names  # it is the folder's name
        times = table.column("event_time").to_pylist()
        assert {t.date() for t in times} == {day}
        assert offsets.topic == settings.topics.clean
        assert all(offsets.first <= o <= offsets.last for o in table.column("offset").to_pylist())


def test_sigkill_at_any_moment_and_restarts_archive_each_tick_exactly_once(
    settings: Settings,
) -> None:
    sent = ticks(12_000)
    storage = open_storage(settings)
    flags = ("--quiet", "--roll-ticks", "300", "--roll-seconds", "0.5")
    # Its log, kafka-python's included, in what a failure shows.
    logged = settings.replace(service={"log_level": "INFO"})

    # Killed twice while it works, each time with files committed. Each run gets 4,000 new ticks
    # first (over a dozen ranges of work), and is killed once two of its ranges are committed: a
    # run given only what its killed predecessor left could finish, and never commit enough.
    for kills, chunk in enumerate((sent[:4000], sent[4000:8000]), start=1):
        produce_clean(settings, chunk)
        before = len(storage.files(COMMITS))
        archive = start_service("archive", logged, *flags)
        try:
            wait_for(
                lambda b=before: len(storage.files(COMMITS)) >= b + 2, 60, "new ranges", archive
            )
        finally:
            archive.kill()  # SIGKILL: most likely between two files, or a file and its marker
        assert 0 < Archive(settings).count() < len(sent), f"kill {kills}"
    produce_clean(settings, sent[8000:])  # the stream goes on while it is down

    restarted = start_service("archive", settings, *flags, "--idle", "3")
    assert restarted.wait(120) == 0, restarted.output()
    assert keys(archived(settings)) == sent_keys(sent)
    # Nothing is left over: every data file belongs to a committed range.
    data = [f for f in storage.files() if parse_data_file(f) is not None]
    assert data == committed_files(storage)


def test_files_of_a_range_without_marker_are_never_read_and_are_deleted_on_start(
    settings: Settings,
) -> None:
    """A crash between a range's files and its marker, reproduced: the files are there, the
    marker is not."""
    first = ticks(1000)
    produce_clean(settings, first)
    ArchiveSink(settings).run(count=len(first))
    storage = open_storage(settings)
    a_file = committed_files(storage)[0]
    symbol, day, offsets = parse_data_file(a_file)  # type: ignore[misc]
    # The next range of that partition, half-written: one file, no marker.
    leftover = data_file(symbol, day, OffsetRange(offsets.topic, offsets.partition, 10_000, 10_499))
    storage.write(leftover, storage.read(a_file))
    assert Archive(settings).count() == 1000  # readers skip it

    more = ticks(2000, seed=1)[1000:]
    produce_clean(settings, more)
    ArchiveSink(settings).run(count=len(more))

    assert leftover not in storage.files()
    assert keys(archived(settings)) == sent_keys(first + more)


def test_a_message_that_is_not_a_tick_is_skipped_and_never_blocks_its_partition(
    settings: Settings,
) -> None:
    sent = ticks(600)
    produce_clean(settings, [*sent[:300], (b"TTF-GAS", b"{not json"), *sent[300:]])

    stats = ArchiveSink(settings).run(count=601)

    assert stats.archived == 600 and stats.skipped_count == 1
    assert keys(archived(settings)) == sent_keys(sent)
    # The range that held it is committed past it: a restart reads nothing again.
    assert ArchiveSink(settings).run(idle_s=2).read == 0


def test_archives_to_a_real_s3_server_and_reads_back_with_duckdb(
    settings: Settings, s3_endpoint: str
) -> None:
    s3 = settings.replace(
        archive={
            "url": f"s3://orderbook/{settings.archive.group}",
            "s3_endpoint_url": s3_endpoint,
        }
    )
    sent = ticks(3000)
    produce_clean(s3, sent)

    archive = start_service("archive", s3, "--quiet", "--idle", "3")
    assert archive.wait(120) == 0, archive.output()

    assert keys(archived(s3)) == sent_keys(sent)
    storage = open_storage(s3)
    assert storage.url.startswith("s3://orderbook/")
    assert storage.location(committed_files(storage)[0]).startswith("s3://orderbook/")
    assert "3000 tick(s) archived" in archive.last_line()


def test_a_missing_bucket_or_a_stopped_s3_server_is_one_clear_error(
    settings: Settings, s3_endpoint: str
) -> None:
    missing = settings.replace(
        archive={"url": "s3://no-such-bucket/archive", "s3_endpoint_url": s3_endpoint}
    )
    with pytest.raises(ArchiveStorageError, match=r"no-such-bucket.*does not exist.*s3 start"):
        open_storage(missing).check()
    archive = start_service("archive", missing, "--idle", "1")
    assert archive.wait(60) == 2
    assert archive.output().strip().splitlines()[-1].startswith("error: ORDERBOOK_ARCHIVE_URL")

    nobody = settings.replace(
        archive={
            "url": "s3://orderbook/archive",
            "s3_endpoint_url": f"http://127.0.0.1:{free_ports(1)[0]}",
        }
    )
    with pytest.raises(ArchiveStorageError, match="Could not reach the S3 server"):
        open_storage(nobody).check()


def test_an_unwritable_folder_is_one_clear_error(settings: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    bad = settings.replace(archive={"url": str(blocker / "archive")})
    archive = start_service("archive", bad, "--idle", "1")
    assert archive.wait(60) == 2
    last = archive.output().strip().splitlines()[-1]
    assert last.startswith("error: ORDERBOOK_ARCHIVE_URL: cannot write to"), last


@pytest.mark.postgres
def test_the_hot_store_and_the_archive_give_the_same_candles(settings: Settings) -> None:
    sent = ticks(6000, seed=7)
    produce_clean(settings, sent)
    try:
        StoreSink(settings).run(count=len(sent))
        ArchiveSink(settings).run(count=len(sent))
        with Archive(settings) as archive:
            for symbol in SYMBOLS:
                for seconds in (60, 17):
                    from_store = hot.candles(symbol, seconds=seconds, settings=settings)
                    from_archive = archive.candles(symbol, seconds=seconds)
                    assert len(from_store) >= 2 and from_store["ticks"].sum() == 2000
                    pd.testing.assert_frame_equal(
                        from_store.astype({"ticks": "int64"}),
                        from_archive,
                        check_dtype=False,
                        rtol=1e-12,
                    )
            spreads = archive.spread_stats()
        pd.testing.assert_frame_equal(
            hot.spread_stats(settings), spreads, check_dtype=False, rtol=1e-9
        )
    finally:
        with connect(settings.store.database_url, timeout_s=10) as conn:
            drop_schema(conn, settings.store.schema)


def test_the_s3_server_keeps_its_buckets_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "s3"
    url = f"http://127.0.0.1:{free_ports(1)[0]}"
    s3_server.start(url, state, buckets=("kept",))
    try:
        settings = load_settings().replace(archive={"url": "s3://kept/x", "s3_endpoint_url": url})
        open_storage(settings).write("hello.txt", b"hello")
        assert s3_server.stop(state)
        assert s3_server.status(state) is None
        s3_server.start(url, state, buckets=("kept",))
        assert open_storage(settings).read("hello.txt") == b"hello"
    finally:
        s3_server.stop(state)
    shutil.rmtree(state)


def test_s3_start_at_another_address_while_the_server_runs_is_one_error_line(
    tmp_path: Path,
) -> None:
    # It printed "S3 server at <the other address>" and exited 0, as if it had started there.
    state = tmp_path / "s3"
    here, elsewhere = (f"http://127.0.0.1:{port}" for port in free_ports(2))
    s3_server.start(here, state)
    try:
        env = {**os.environ, "ORDERBOOK_S3_DIR": str(state), "AWS_ENDPOINT_URL": elsewhere}
        run = subprocess.run(
            [sys.executable, "-m", "orderbook_kit.lab.s3", "start"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 2 and "Traceback" not in run.stderr
        assert run.stderr.strip().splitlines() == [
            f"error: AWS_ENDPOINT_URL: the kit's S3 server of {state} already runs at {here}, "
            f"not at {elsewhere}. Point AWS_ENDPOINT_URL at {here}, or stop it first: "
            "`python -m orderbook_kit.lab.s3 stop`."
        ]
        assert s3_server.status(state) is not None  # the running one is left alone
    finally:
        s3_server.stop(state)


def test_the_s3_server_on_a_taken_port_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_ports(1)[0]))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OrderbookKitError, match=f"Port {port} on 127.0.0.1 is already in use"):
            s3_server.start(f"http://127.0.0.1:{port}", tmp_path / "s3")
    assert s3_server.status(tmp_path / "s3") is None
