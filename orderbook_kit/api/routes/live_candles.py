"""``WS /ws/candles/{symbol}``: the candles service's closed candles of one symbol as they close,
from the API's one reader of the candle topics (:mod:`~orderbook_kit.api.candle_stream`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, WebSocket

from orderbook_kit.api.candle_stream import CANDLE_INTERVALS
from orderbook_kit.api.dependencies import Api
from orderbook_kit.api.routes.live import (
    SYMBOL_PATTERN_RE,
    WS_POLICY_VIOLATION,
    WS_TRY_AGAIN_LATER,
    forward,
)

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
    await websocket.accept()
    if not SYMBOL_PATTERN_RE.fullmatch(symbol):
        await websocket.close(WS_POLICY_VIOLATION, f"not a symbol: {symbol[:40]!r}")
        return
    if interval not in CANDLE_INTERVALS:
        lengths = " or ".join(str(s) for s in CANDLE_INTERVALS)
        await websocket.close(WS_POLICY_VIOLATION, f"interval must be {lengths} seconds")
        return
    candles = api.candles
    if candles.error is not None:
        await websocket.close(WS_TRY_AGAIN_LATER, f"no candles: {candles.error}"[:120])
        return
    subscription = candles.subscribe(symbol, interval)
    try:
        await forward(websocket, subscription.inner, "candles")
    finally:
        candles.unsubscribe(subscription)
