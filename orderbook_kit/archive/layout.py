"""Where the archive puts things: one file per symbol, day and offset range, and one commit
marker per offset range.

::

    <root>/symbol=TTF-GAS/date=2026-11-26/orderbook.clean-p0-00000000000000001000-00000000000000001999.parquet
    <root>/symbol=NBP-GAS/date=2026-11-26/orderbook.clean-p0-00000000000000001000-00000000000000001999.parquet
    <root>/_commits/orderbook.clean-p0-00000000000000001000-00000000000000001999.json

The folders are hive-style (``key=value``), so DuckDB, Spark or pyarrow read ``symbol`` and
``date`` as columns. A range of one Kafka partition becomes several files (one per symbol and
day), so a file alone cannot say that its range is complete: the marker, written after every file
of its range, does. A file whose range has no marker is left over from a crash, and is not part
of the archive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

__all__ = [
    "COMMITS",
    "DATA_GLOB",
    "OffsetRange",
    "data_file",
    "marker_file",
    "parse_data_file",
    "parse_marker_file",
    "split_data_files",
]

COMMITS = "_commits"
DATA_GLOB = "symbol=*/date=*/*.parquet"
OFFSET_DIGITS = 20  # a signed 64-bit offset, zero-padded: names sort in offset order
_RANGE = re.compile(
    r"(?P<topic>[A-Za-z0-9._-]+)-p(?P<partition>\d+)-(?P<first>\d{20})-(?P<last>\d{20})"
)
_DATA = re.compile(
    r"symbol=(?P<symbol>[^/]+)/date=(?P<date>\d{4}-\d{2}-\d{2})/(?P<range>[^/]+)\.parquet"
)


@dataclass(frozen=True, order=True)
class OffsetRange:
    """Offsets ``first`` to ``last`` (both included) of one partition of ``topic``."""

    topic: str
    partition: int
    first: int
    last: int

    @property
    def name(self) -> str:
        return (
            f"{self.topic}-p{self.partition}-{self.first:0{OFFSET_DIGITS}d}-"
            f"{self.last:0{OFFSET_DIGITS}d}"
        )

    @classmethod
    def parse(cls, name: str) -> OffsetRange | None:
        match = _RANGE.fullmatch(name)
        if match is None:
            return None
        return cls(match["topic"], int(match["partition"]), int(match["first"]), int(match["last"]))


def data_file(symbol: str, day: date, offsets: OffsetRange) -> str:
    return f"symbol={symbol}/date={day.isoformat()}/{offsets.name}.parquet"


def marker_file(offsets: OffsetRange) -> str:
    return f"{COMMITS}/{offsets.name}.json"


def parse_data_file(relative: str) -> tuple[str, date, OffsetRange] | None:
    """``(symbol, day, range)`` of a data file's path relative to the root, or None if it is
    not one of the archive's files."""
    match = _DATA.fullmatch(relative)
    if match is None:
        return None
    offsets = OffsetRange.parse(match["range"])
    if offsets is None:
        return None
    try:
        day = date.fromisoformat(match["date"])
    except ValueError:
        return None
    return match["symbol"], day, offsets


def parse_marker_file(relative: str) -> OffsetRange | None:
    folder, _, name = relative.rpartition("/")
    if folder != COMMITS or not name.endswith(".json"):
        return None
    return OffsetRange.parse(name.removesuffix(".json"))


def split_data_files(files: list[str]) -> tuple[list[str], list[str]]:
    """The data files among ``files`` (an archive's listing), as (those whose range has a
    marker: the archive, those whose range has none: left over from a crash)."""
    committed = {offsets for offsets in map(parse_marker_file, files) if offsets is not None}
    done: list[str] = []
    leftover: list[str] = []
    for relative in files:
        parsed = parse_data_file(relative)
        if parsed is not None:
            (done if parsed[2] in committed else leftover).append(relative)
    return done, leftover
