"""Questions for the hot store, in SQL, answered as pandas DataFrames.

Each function opens its own short connection (``settings.database_url``, schema
``settings.db_schema``), so a notebook can call them at any time; :func:`query` runs your own SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from ..config import Settings, load_settings
from ..database import connect

__all__ = [
    "CANDLES",
    "LATEST_QUOTES",
    "SPREAD_STATS",
    "TICKS_BETWEEN",
    "candles",
    "latest_quotes",
    "query",
    "spread_stats",
    "stored_count",
    "ticks_between",
]

# The last tick of each symbol: DISTINCT ON keeps the first row of each symbol in this order.
LATEST_QUOTES = """
SELECT DISTINCT ON (symbol)
       symbol, seq, bid, ask, bid / 2 + ask / 2 AS mid, ask - bid AS spread, event_time
FROM ticks
ORDER BY symbol, seq DESC
"""

# OHLC candles of the mid: date_bin puts each tick in its time bucket; the open and close are the
# first and last mid of the bucket in seq order.
CANDLES = """
SELECT date_bin(make_interval(secs => %(seconds)s), event_time, TIMESTAMPTZ '2000-01-01')
           AS bucket,
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
) -> pd.DataFrame:
    """Run ``sql`` (``%(name)s`` or ``%s`` parameters) on the store; the rows as a DataFrame."""
    settings = settings or load_settings()
    with (
        connect(
            settings.database_url, timeout_s=settings.client_timeout_s, schema=settings.db_schema
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description or ()]
        return pd.DataFrame(cursor.fetchall(), columns=columns)


def latest_quotes(settings: Settings | None = None) -> pd.DataFrame:
    """The last stored quote of every symbol."""
    return query(LATEST_QUOTES, settings=settings)


def candles(
    symbol: str,
    *,
    seconds: int = 60,
    start: datetime | None = None,
    end: datetime | None = None,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """OHLC candles of ``symbol``'s mid, one per ``seconds`` of event time (default: a minute)."""
    if seconds <= 0:
        raise ValueError(f"seconds must be above 0, got {seconds}; use e.g. 60")
    params = {"symbol": symbol, "seconds": seconds, "start": start, "end": end}
    return query(CANDLES, params, settings=settings)


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
