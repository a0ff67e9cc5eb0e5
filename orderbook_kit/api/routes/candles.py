"""``GET /candles/{symbol}``: OHLC candles of the mid, computed by the hot store from its ticks,
or (``source=stream``) the candles service's, as the store wrote them."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from orderbook_kit.api.dependencies import Api, in_utc, records
from orderbook_kit.api.schemas import INVALID, UNAVAILABLE, UNKNOWN, Candle, IsoTime, Symbol
from orderbook_kit.store import queries as hot

__all__ = ["DEFAULT_RANGE", "MAX_CANDLES", "router"]

MAX_CANDLES = 10_000  # per request: a longer range needs a longer interval
DEFAULT_RANGE = timedelta(hours=24)  # of candles, when no start is given
FIRST_MOMENT = datetime.min.replace(tzinfo=UTC)

router = APIRouter(tags=["hot store"])

Interval = Annotated[int, Query(ge=1, le=86_400, description="seconds per candle")]
Start = Annotated[
    IsoTime | None, Query(description="ISO 8601 with a zone; default: end minus 24 h")
]
End = Annotated[IsoTime | None, Query(description="ISO 8601 with a zone; default: now")]
Source = Annotated[
    Literal["ticks", "stream"],
    Query(
        description="ticks: computed now from the stored ticks (any interval); stream: the "
        "candles service's closed 1-minute windows, as stored (interval 60)"
    ),
]
STREAMED_INTERVAL = 60  # the store keeps the candles service's 1-minute candles


@router.get(
    "/candles/{symbol}",
    response_model=list[Candle],
    responses={**INVALID, **UNKNOWN, **UNAVAILABLE},
)
def candles(
    symbol: Symbol,
    api: Api,
    interval: Interval = 60,
    start: Start = None,
    end: End = None,
    source: Source = "ticks",
) -> list[dict[str, Any]]:
    """OHLC candles of ``symbol``'s mid from ``start`` (default: ``end`` minus 24 h) to
    ``end``, at most 10,000 of them: computed from the ticks, or the streamed ones."""
    if source == "stream" and interval != STREAMED_INTERVAL:
        raise HTTPException(
            422,
            f"the stream's candles are {STREAMED_INTERVAL} s long, not {interval}: use "
            f"interval={STREAMED_INTERVAL}, or source=ticks for any interval",
        )
    end = in_utc(end, "end") or datetime.now(UTC)
    # Not end - 24 h when that is before year 1 (an early end): the first moment instead.
    start = in_utc(start, "start") or max(end, FIRST_MOMENT + DEFAULT_RANGE) - DEFAULT_RANGE
    if start >= end:
        raise HTTPException(422, f"start ({start.isoformat()}) must be before end")
    count = math.ceil((end - start).total_seconds() / interval)
    if count > MAX_CANDLES:
        raise HTTPException(
            422,
            f"{count} candles asked for; at most {MAX_CANDLES} a request: shorten the range "
            "or lengthen the interval",
        )
    api.require_known(symbol)
    query = hot.streamed_candles if source == "stream" else hot.candles
    frame = api.hot_store(
        lambda conn: query(symbol, seconds=interval, start=start, end=end, connection=conn)
    )
    return records(frame)
