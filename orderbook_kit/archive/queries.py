"""Questions for the archive, in SQL, answered by DuckDB as pandas DataFrames.

DuckDB reads the Parquet files where they lie (a folder, or S3 through the archive's fsspec
filesystem) and turns the hive folders back into ``symbol`` and ``date`` columns. It reads the
*committed* files only - those whose offset range has a marker - so a file left by a crash is
never counted. The same questions as :mod:`orderbook_kit.store.queries`, with the same columns:
the hot store and the archive can be compared answer for answer.

    with Archive() as archive:
        archive.candles("TTF-GAS", seconds=60)
        archive.query("SELECT symbol, count(*) FROM ticks GROUP BY symbol")
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from orderbook_kit.archive.layout import COMMITS, parse_marker_file, split_data_files
from orderbook_kit.archive.parquet import SCHEMA
from orderbook_kit.archive.storage import ArchiveStorage, open_storage
from orderbook_kit.settings.environment import Settings, load_settings

__all__ = ["CANDLES", "SPREAD_STATS", "TICKS_PER_DAY", "Archive", "committed_files"]

# OHLC candles of the mid, as the hot store's: the same buckets (from 2000-01-01, UTC), the open
# and close are the first and last mid of the bucket in seq order.
CANDLES = """
SELECT time_bucket(to_seconds($seconds), event_time, TIMESTAMPTZ '2000-01-01 00:00:00+00')
           AS bucket,
       arg_min(bid / 2 + ask / 2, seq) AS open,
       max(bid / 2 + ask / 2) AS high,
       min(bid / 2 + ask / 2) AS low,
       arg_max(bid / 2 + ask / 2, seq) AS close,
       count(*) AS ticks
FROM ticks
WHERE symbol = $symbol
  AND ($start IS NULL OR event_time >= $start)
  AND ($end IS NULL OR event_time < $end)
GROUP BY bucket
ORDER BY bucket
"""

SPREAD_STATS = """
SELECT symbol,
       count(*) AS ticks,
       avg(ask - bid) AS mean_spread,
       quantile_cont(ask - bid, 0.5) AS median_spread,
       quantile_cont(ask - bid, 0.95) AS p95_spread,
       max(ask - bid) AS max_spread,
       avg((ask - bid) / (bid / 2 + ask / 2)) * 10000 AS mean_spread_bps
FROM ticks
GROUP BY symbol
ORDER BY symbol
"""

TICKS_PER_DAY = """
SELECT symbol, date, count(*) AS ticks, min(seq) AS first_seq, max(seq) AS last_seq
FROM ticks
GROUP BY symbol, date
ORDER BY symbol, date
"""


def committed_files(storage: ArchiveStorage) -> list[str]:
    """The archive's data files whose offset range is committed (relative paths, sorted)."""
    return split_data_files(storage.files())[0]


class Archive:
    """A DuckDB connection with a ``ticks`` view over the archive's committed files, as they are
    when it opens (:meth:`refresh` looks again)."""

    def __init__(
        self, settings: Settings | None = None, *, storage: ArchiveStorage | None = None
    ) -> None:
        self.settings = settings or load_settings()
        self.storage = storage or open_storage(self.settings)
        self._db: duckdb.DuckDBPyConnection | None = None
        self.files: list[str] = []

    def __enter__(self) -> Archive:
        self.refresh()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    @property
    def db(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection (opened, and the view made, on first use)."""
        if self._db is None:
            self.refresh()
        assert self._db is not None
        return self._db

    def refresh(self) -> None:
        """Look at the archive again: the ``ticks`` view then covers every committed file."""
        if self._db is None:
            self._db = duckdb.connect()
            self._db.execute("SET TimeZone = 'UTC'")  # times come back in UTC, as stored
            if self.storage.filesystem is not None:
                self._db.register_filesystem(self.storage.filesystem)
        self.files = committed_files(self.storage)
        self._db.execute("DROP VIEW IF EXISTS ticks")
        if self.files:
            relation = self._db.read_parquet(
                [self.storage.location(f) for f in self.files], hive_partitioning=True
            )
        else:  # an empty archive still answers, with no rows
            empty = pa.Table.from_batches(
                [],
                SCHEMA.append(pa.field("symbol", pa.string())).append(
                    pa.field("date", pa.date32())
                ),
            )
            relation = self._db.from_arrow(empty)
        relation.create_view("ticks")

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run ``sql`` (``$name`` parameters) over the view ``ticks``; the rows as a DataFrame."""
        return self.db.execute(sql, params or {}).df()

    def candles(
        self,
        symbol: str,
        *,
        seconds: int = 60,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """OHLC candles of ``symbol``'s mid, one per ``seconds`` of event time."""
        if seconds <= 0:
            raise ValueError(f"seconds must be above 0, got {seconds}; use e.g. 60")
        params = {"symbol": symbol, "seconds": seconds, "start": start, "end": end}
        return self.query(CANDLES, params)

    def spread_stats(self) -> pd.DataFrame:
        """Spread statistics per symbol: mean, median, 95th percentile, maximum, mean in bps."""
        return self.query(SPREAD_STATS)

    def ticks_per_day(self) -> pd.DataFrame:
        """Ticks per symbol and day, with the first and last seq of each."""
        return self.query(TICKS_PER_DAY)

    def count(self) -> int:
        return int(self.query("SELECT count(*) AS n FROM ticks")["n"].iloc[0])

    def ranges(self) -> list[str]:
        """The committed offset ranges' markers (relative paths)."""
        return [f for f in self.storage.files(COMMITS) if parse_marker_file(f) is not None]
