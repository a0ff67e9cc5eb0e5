"""The archive's files without Kafka: names that parse back, committed files only, and the Great
Expectations suite passing on good files and failing - naming the expectation and the file - on
each kind of planted bad data."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderbook_kit.archive.expectations import archive_frame, check_archive
from orderbook_kit.archive.layout import (
    OffsetRange,
    data_file,
    marker_file,
    parse_data_file,
    parse_marker_file,
)
from orderbook_kit.archive.parquet import SCHEMA, ArchivedTick, encode
from orderbook_kit.archive.queries import Archive, committed_files
from orderbook_kit.archive.storage import LocalStorage, open_storage
from orderbook_kit.errors import SettingsError
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.market.tick import Tick
from orderbook_kit.settings.environment import Settings

TOPIC = "orderbook.clean"


@given(
    topic=st.from_regex(r"[A-Za-z0-9._-]{1,60}", fullmatch=True),
    partition=st.integers(0, 999),
    first=st.integers(0, 2**63 - 2),
    length=st.integers(0, 10**6),
    symbol=st.from_regex(r"[A-Z0-9][A-Z0-9._-]{0,31}", fullmatch=True),
    day=st.dates(),
)
def test_names_parse_back_to_what_made_them(
    topic: str, partition: int, first: int, length: int, symbol: str, day: object
) -> None:
    offsets = OffsetRange(topic, partition, first, min(first + length, 2**63 - 1))
    assert parse_data_file(data_file(symbol, day, offsets)) == (symbol, day, offsets)  # type: ignore[arg-type]
    assert parse_marker_file(marker_file(offsets)) == offsets


def test_names_sort_in_offset_order() -> None:
    ranges = [OffsetRange(TOPIC, 0, first, first + 9) for first in (0, 10, 100, 1000, 10**12)]
    assert sorted(r.name for r in ranges) == [r.name for r in ranges]


@pytest.mark.parametrize(
    "name",
    [
        "x.parquet",
        "symbol=A/date=2026-13-01/t-p0-00000000000000000000-00000000000000000001.parquet",
        "symbol=A/date=2026-01-01/t-p0-1-2.parquet",
        "_commits/t-p0-1-2.json",
        "other/file.json",
    ],
)
def test_anything_else_is_not_taken_for_an_archive_file(name: str) -> None:
    assert parse_data_file(name) is None and parse_marker_file(name) is None


def write_range(storage: LocalStorage, rows: list[ArchivedTick], *, marker: bool = True) -> None:
    """One committed range, as the archive service writes it: a file per symbol and day, then
    the marker."""
    offsets = OffsetRange(TOPIC, rows[0].partition, rows[0].offset, rows[-1].offset)
    files: dict[str, list[ArchivedTick]] = {}
    for row in rows:
        key = data_file(row.tick.symbol, row.tick.event_time.date(), offsets)
        files.setdefault(key, []).append(row)
    for relative, file_rows in files.items():
        storage.write(relative, encode(file_rows))
    if marker:
        storage.write(marker_file(offsets), json.dumps({"files": sorted(files)}).encode())


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    """A small good archive: 600 ticks of one symbol, in three committed ranges."""
    local = LocalStorage(tmp_path / "archive")
    ticks = list(OrderbookSimulator(["TTF-GAS"], seed=3).ticks(600))
    rows = [ArchivedTick(tick, 0, offset) for offset, tick in enumerate(ticks)]
    for start in range(0, 600, 200):
        write_range(local, rows[start : start + 200])
    return local


def test_only_committed_files_are_read(storage: LocalStorage) -> None:
    ticks = list(OrderbookSimulator(["TTF-GAS"], seed=3).ticks(700))[600:]
    write_range(storage, [ArchivedTick(t, 0, 600 + i) for i, t in enumerate(ticks)], marker=False)
    assert len(committed_files(storage)) == 3
    with Archive(Settings(), storage=storage) as archive:
        assert archive.count() == 600


def test_the_suite_passes_on_good_files_and_writes_data_docs(
    storage: LocalStorage, tmp_path: Path
) -> None:
    result = check_archive(storage=storage, docs_dir=tmp_path / "docs")
    assert result.success, result.summary()
    assert (result.rows, result.files, result.failures) == (600, 3, [])
    assert result.evaluated >= 15
    assert result.docs is not None and result.docs.is_file()
    assert "archived_ticks" in result.docs.read_text()


def rewrite_one_file(storage: LocalStorage, change: Callable[[pa.Table], pa.Table]) -> str:
    """Plant bad data: the first committed file, changed by ``change``; its name."""
    victim = committed_files(storage)[0]
    table = pq.read_table(storage.location(victim))
    storage.write(victim, _parquet(change(table)))
    return victim


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def _set(table: pa.Table, column: str, row: int, value: object) -> pa.Table:
    values = table.column(column).to_pylist()
    values[row] = value
    field = table.schema.field(column).with_nullable(True)
    return table.set_column(
        table.schema.get_field_index(column), field, pa.array(values, field.type)
    )


CORRUPTIONS: dict[str, tuple[Callable[[pa.Table], pa.Table], str]] = {
    "crossed book": (
        lambda t: _set(t, "bid", 5, t.column("ask")[5].as_py() + 0.5),
        "expect_column_pair_values_a_to_be_greater_than_b",
    ),
    "negative size": (lambda t: _set(t, "bid_size", 7, -3.0), "expect_column_values_to_be_between"),
    "missing price": (lambda t: _set(t, "ask", 9, None), "expect_column_values_to_not_be_null"),
    "seq gap": (
        lambda t: t.filter(pa.array([i != 50 for i in range(len(t))])),
        "expect_column_values_to_be_in_set",
    ),
    "event on another day": (
        lambda t: _set(t, "event_time", 3, t.column("event_time")[3].as_py() + timedelta(days=2)),
        "expect_column_pair_values_to_be_equal",
    ),
    "duplicate tick": (
        lambda t: pa.concat_tables([t, t.slice(0, 1)]).sort_by("seq"),
        "expect_compound_columns_to_be_unique",
    ),
    "implausible spread": (
        lambda t: _set(t, "ask", 11, t.column("bid")[11].as_py() * 1.5),
        "expect_column_values_to_be_between",
    ),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_planted_bad_data_fails_the_suite_naming_the_expectation_and_the_file(
    storage: LocalStorage, tmp_path: Path, corruption: str
) -> None:
    change, expectation = CORRUPTIONS[corruption]
    victim = rewrite_one_file(storage, change)

    result = check_archive(storage=storage, docs_dir=tmp_path / "docs")

    assert not result.success
    failed = {f.expectation: f for f in result.failures}
    assert expectation in failed, result.summary()
    assert victim in failed[expectation].files
    assert expectation in result.summary() and victim in result.summary()


def test_derived_columns_follow_each_file(storage: LocalStorage) -> None:
    rows = archive_frame(storage)
    assert set(rows["seq_step"]) == {1}
    assert (rows["event_date"] == rows["date"]).all()
    assert rows.groupby("file").size().tolist() == [200, 200, 200]


def test_the_parquet_schema_keeps_every_field_of_a_tick() -> None:
    tick_fields = set(Tick.model_fields) - {"symbol"}  # the symbol is the folder's name
    assert tick_fields <= set(SCHEMA.names)


@pytest.mark.parametrize(
    ("url", "kind"),
    [(None, "LocalStorage"), ("/data/archive", "LocalStorage"), ("s3://orderbook/a", "S3Storage")],
)
def test_the_archive_url_picks_the_storage(url: str | None, kind: str) -> None:
    storage = open_storage(Settings().replace(archive={"url": url}))
    assert type(storage).__name__ == kind


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("archive.url", "gs://bucket/x", "s3://"),
        ("archive.url", "s3://", "names no bucket"),
        ("archive.s3_endpoint_url", "127.0.0.1:9000", "http://host:port"),
        ("archive.roll_ticks", 0, "ORDERBOOK_ARCHIVE_ROLL_TICKS"),
    ],
)
def test_bad_archive_settings_name_the_variable_and_the_fix(
    field: str, value: object, hint: str
) -> None:
    with pytest.raises(SettingsError) as error:
        Settings().with_values({field: value})
    assert hint in str(error.value)
