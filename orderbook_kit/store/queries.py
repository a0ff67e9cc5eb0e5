"""Questions for the hot store, in SQL, answered as pandas DataFrames.

Each function opens its own short connection (``settings.store.database_url``, schema
``settings.store.schema``), so a notebook can call them at any time, or runs on the ``connection``
it is given (a service reusing its connections); :func:`query` runs your own SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import psycopg

from orderbook_kit.database.client import connect
from orderbook_kit.settings.environment import Settings, load_settings

__all__ = [
    "CANDLES",
    "LATEST_QUOTES",
    "SPREAD_STATS",
    "STREAMED_CANDLES",
    "SYMBOLS",
    "TICKS_BETWEEN",
    "candles",
    "latest_quotes",
    "query",
    "spread_stats",
    "stored_count",
    "streamed_candles",
    "symbols",
    "ticks_between",
]

# Every symbol, by a "loose index scan": the first symbol in the primary key's order, then the
# first one after it, and so on - one index probe per symbol, where SELECT DISTINCT would read
# every row (millions, after a day of ticks).
_EVERY_SYMBOL = """
WITH RECURSIVE symbols AS (
    (SELECT symbol FROM ticks ORDER BY symbol LIMIT 1)
    UNION ALL
    SELECT (SELECT t.symbol FROM ticks t WHERE t.symbol > s.symbol ORDER BY t.symbol LIMIT 1)
    FROM symbols s
    WHERE s.symbol IS NOT NULL
)
"""
SYMBOLS = _EVERY_SYMBOL + "SELECT symbol FROM symbols WHERE symbol IS NOT NULL ORDER BY symbol\n"

# The last tick of each symbol: per symbol, the highest seq, read from the end of the primary
# key's index (no sort of the whole table, as DISTINCT ON would need).
LATEST_QUOTES = (
    _EVERY_SYMBOL
    + """SELECT q.*
FROM symbols s
CROSS JOIN LATERAL (
    SELECT symbol, seq, bid, ask, bid / 2 + ask / 2 AS mid, ask - bid AS spread, event_time
    FROM ticks t
    WHERE t.symbol = s.symbol
    ORDER BY t.seq DESC
    LIMIT 1
) q
ORDER BY q.symbol
"""
)

# OHLC candles of the mid: date_bin puts each tick in its time bucket; the open and close are the
# first and last mid of the bucket in seq order.
CANDLES = """
SELECT -- GREATEST: a tick in the first seconds of year 1 would fall in a bucket before it, which
       -- no client's datetime can hold.
       GREATEST(date_bin(make_interval(secs => %(seconds)s), event_time,
                         TIMESTAMPTZ '2000-01-01 00:00:00+00'),
                TIMESTAMPTZ '0001-01-01 00:00:00+00') AS bucket,
       (array_agg(bid / 2 + ask / 2 ORDER BY seq))[1] AS open,
       max(bid / 2 + ask / 2) AS high,
       min(bid / 2 + ask / 2) AS low,
       (array_agg(bid / 2 + ask / 2 ORDER BY seq DESC))[1] AS close,
       count(*) AS ticks
FROM ticks
WHERE symbol = %(symbol)s
  AND (%(start)s::timestamptz IS NULL OR event_time >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR event_time < %(end)s)
GROUP BY bucket
ORDER BY bucket
"""

# The candles service's closed windows, as the store wrote them (`python -m orderbook_kit.store
# candles`): the same columns as CANDLES, computed as the ticks arrived rather than now.
STREAMED_CANDLES = """
SELECT bucket, open, high, low, close, ticks
FROM candles
WHERE symbol = %(symbol)s AND seconds = %(seconds)s
  AND (%(start)s::timestamptz IS NULL OR bucket >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR bucket < %(end)s)
ORDER BY bucket
"""

# The bid-ask spread per symbol, in price units and in basis points of the mid.
SPREAD_STATS = """
SELECT symbol,
       count(*) AS ticks,
       avg(ask - bid) AS mean_spread,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ask - bid) AS median_spread,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY ask - bid) AS p95_spread,
       max(ask - bid) AS max_spread,
       avg((ask - bid) / (bid / 2 + ask / 2)) * 10000 AS mean_spread_bps
FROM ticks
GROUP BY symbol
ORDER BY symbol
"""

TICKS_BETWEEN = """
SELECT symbol, seq, bid, ask, bid_size, ask_size, event_time, publish_time
FROM ticks
WHERE symbol = %(symbol)s AND event_time >= %(start)s AND event_time < %(end)s
ORDER BY event_time, seq
"""


def query(
    sql: str,
    params: dict[str, object] | Sequence[object] | None = None,
    *,
    settings: Settings | None = None,
    connection: psycopg.Connection | None = None,
) -> pd.DataFrame:
    """Run ``sql`` (``%(name)s`` or ``%s`` parameters) on the store; the rows as a DataFrame.

    On ``connection`` if given (its search path set to the store's schema), else on a connection
    of its own to ``settings``' database."""
    if connection is not None:
        return _rows(connection, sql, params)
    settings = settings or load_settings()
    with connect(
        settings.store.database_url,
        timeout_s=settings.kafka.client_timeout_s,
        schema=settings.store.schema,
    ) as conn:
        return _rows(conn, sql, params)


def _rows(
    connection: psycopg.Connection, sql: str, params: dict[str, object] | Sequence[object] | None
) -> pd.DataFrame:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description or ()]
        return pd.DataFrame(cursor.fetchall(), columns=columns)


def symbols(
    settings: Settings | None = None, *, connection: psycopg.Connection | None = None
) -> list[str]:
    """Every symbol with ticks in the store, in order."""
    return list(query(SYMBOLS, settings=settings, connection=connection)["symbol"])


def latest_quotes(
    settings: Settings | None = None, *, connection: psycopg.Connection | None = None
) -> pd.DataFrame:
    """The last stored quote of every symbol."""
    return query(LATEST_QUOTES, settings=settings, connection=connection)


def candles(
    symbol: str,
    *,
    seconds: int = 60,
    start: datetime | None = None,
    end: datetime | None = None,
    settings: Settings | None = None,
    connection: psycopg.Connection | None = None,
) -> pd.DataFrame:
    """OHLC candles of ``symbol``'s mid, one per ``seconds`` of event time (default: a minute)."""
    if seconds <= 0:
        raise ValueError(f"seconds must be above 0, got {seconds}; use e.g. 60")
    params = {"symbol": symbol, "seconds": seconds, "start": start, "end": end}
    return query(CANDLES, params, settings=settings, connection=connection)


def streamed_candles(
    symbol: str,
    *,
    seconds: int = 60,
    start: datetime | None = None,
    end: datetime | None = None,
    settings: Settings | None = None,
    connection: psycopg.Connection | None = None,
) -> pd.DataFrame:
    """The candles service's candles of ``symbol`` (``seconds`` long) stored in ``candles``: the
    columns of :func:`candles`, for closed windows only."""
    params = {"symbol": symbol, "seconds": seconds, "start": start, "end": end}
    return query(STREAMED_CANDLES, params, settings=settings, connection=connection)


def spread_stats(settings: Settings | None = None) -> pd.DataFrame:
    """Spread statistics per symbol: mean, median, 95th percentile, maximum, mean in bps."""
    return query(SPREAD_STATS, settings=settings)


def ticks_between(
    symbol: str, start: datetime, end: datetime, *, settings: Settings | None = None
) -> pd.DataFrame:
    """``symbol``'s ticks with ``start <= event_time < end``, in time order."""
    return query(TICKS_BETWEEN, {"symbol": symbol, "start": start, "end": end}, settings=settings)


def stored_count(settings: Settings | None = None) -> int:
    """How many ticks the store holds."""
    return int(query("SELECT count(*) AS n FROM ticks", settings=settings)["n"].iloc[0])
