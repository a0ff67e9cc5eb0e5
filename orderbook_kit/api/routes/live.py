"""``WS /ws/ticks``: clean ticks as they arrive, fanned out from the one stream to every client."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from orderbook_kit.api.dependencies import Api
from orderbook_kit.api.stream import ReaderThread, Subscription
from orderbook_kit.market.tick import SYMBOL_PATTERN

__all__ = ["MAX_BATCH", "SEND_TIMEOUT_S", "forward", "opened", "router"]

SEND_TIMEOUT_S = 5.0  # a WebSocket client that takes longer to accept one message is dropped
MAX_BATCH = 200  # ticks per WebSocket message
WS_TRY_AGAIN_LATER = 1013  # RFC 6455 close codes
WS_POLICY_VIOLATION = 1008
SYMBOL_PATTERN_RE = re.compile(SYMBOL_PATTERN)

router = APIRouter()


@router.websocket("/ws/ticks")
async def live_ticks(
    websocket: WebSocket, api: Api, symbol: Annotated[list[str] | None, Query()] = None
) -> None:
    """Clean ticks as they arrive: JSON arrays of ticks (``?symbol=`` repeated to filter). A
    client more than the stream's buffer behind is disconnected with code 1013."""
    wanted = frozenset(symbol) if symbol else None
    stream = api.stream
    if not await opened(websocket, sorted(wanted or ()), stream=stream, what="live ticks"):
        return
    subscription = stream.subscribe(wanted)
    try:
        await forward(websocket, subscription)
    finally:
        stream.unsubscribe(subscription)


async def opened(
    websocket: WebSocket,
    symbols: Iterable[str],
    *,
    stream: ReaderThread,
    what: str,
    bad_parameter: str | None = None,
) -> bool:
    """Accept a client; then refuse it - close, and False - when one of ``symbols`` is not a
    symbol or ``bad_parameter`` says what else is wrong (1008: do not retry as is), or when
    ``stream`` cannot serve ``what`` now (1013: try again later)."""
    await websocket.accept()
    bad = next((s for s in symbols if not SYMBOL_PATTERN_RE.fullmatch(s)), None)
    if bad is not None:
        await websocket.close(WS_POLICY_VIOLATION, f"not a symbol: {bad[:40]!r}")
        return False
    if bad_parameter is not None:
        await websocket.close(WS_POLICY_VIOLATION, bad_parameter)
        return False
    if stream.error is not None:
        await websocket.close(WS_TRY_AGAIN_LATER, f"no {what}: {stream.error}"[:120])
        return False
    return True


async def forward(websocket: WebSocket, subscription: Subscription, what: str = "ticks") -> None:
    """Send ``subscription``'s queued JSON texts (ticks, or ``what`` they are) to ``websocket``,
    a JSON array a message, until either side ends it."""
    dropped = asyncio.ensure_future(subscription.dropped.wait())
    closed = asyncio.ensure_future(websocket.receive())  # a client's close arrives here
    try:
        while True:
            nxt = asyncio.ensure_future(subscription.queue.get())
            done, _ = await asyncio.wait(
                {nxt, dropped, closed}, return_when=asyncio.FIRST_COMPLETED
            )
            if closed in done:
                nxt.cancel()
                return
            if dropped in done:
                nxt.cancel()
                await _close_slow_client(websocket, subscription, what)
                return
            batch = [nxt.result()]
            while len(batch) < MAX_BATCH and not subscription.queue.empty():
                batch.append(subscription.queue.get_nowait())
            try:
                await asyncio.wait_for(
                    websocket.send_text("[" + ",".join(batch) + "]"), SEND_TIMEOUT_S
                )
            except TimeoutError:
                subscription.dropped.set()
                continue
            subscription.delivered += len(batch)
    except (WebSocketDisconnect, RuntimeError):
        return  # the client went away mid-send
    finally:
        dropped.cancel()
        closed.cancel()


async def _close_slow_client(websocket: WebSocket, subscription: Subscription, what: str) -> None:
    reason = f"too slow: more than {subscription.queue.maxsize} {what} behind; reconnect"
    # The close frame waits behind what the client has not read yet: bounded too.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(websocket.close(WS_TRY_AGAIN_LATER, reason), SEND_TIMEOUT_S)
