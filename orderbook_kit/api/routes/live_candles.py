"""``WS /ws/candles/{symbol}``: the candles service's closed candles of one symbol as they close,
from the API's one reader of the candle topics (:mod:`~orderbook_kit.api.candle_stream`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, WebSocket

from orderbook_kit.api.candle_stream import CANDLE_INTERVALS
from orderbook_kit.api.dependencies import Api
from orderbook_kit.api.routes.live import forward, opened

__all__ = ["router"]

router = APIRouter(tags=["candles service"])


@router.websocket("/ws/candles/{symbol}")
async def live_candles(
    websocket: WebSocket, symbol: str, api: Api, interval: Annotated[int, Query()] = 1
) -> None:
    """``symbol``'s closed candles of ``interval`` seconds (1 or 60): the newest ones the API
    holds at once, then each as its window closes. JSON arrays of candles, as the candle topics
    hold them (``start``, ``end``, ``open``, ``high``, ``low``, ``close``, ``ticks``...), each
    window once. A client more than the API's stream buffer behind is closed with code 1013."""
    lengths = " or ".join(str(s) for s in CANDLE_INTERVALS)
    bad = None if interval in CANDLE_INTERVALS else f"interval must be {lengths} seconds"
    candles = api.candles
    if not await opened(websocket, [symbol], stream=candles, what="candles", bad_parameter=bad):
        return
    subscription = candles.subscribe(symbol, interval)
    try:
        await forward(websocket, subscription.inner, "candles")
    finally:
        candles.unsubscribe(subscription)
