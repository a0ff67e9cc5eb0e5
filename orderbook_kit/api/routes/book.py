"""``GET /book/{symbol}`` and ``WS /ws/book/{symbol}``: each symbol's order book, kept by the API's
one reader of the book topics (:mod:`~orderbook_kit.api.book_stream`)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, WebSocket, WebSocketDisconnect

from orderbook_kit.api.book_stream import BookSubscription
from orderbook_kit.api.dependencies import Api, Unavailable
from orderbook_kit.api.routes.live import SEND_TIMEOUT_S, WS_TRY_AGAIN_LATER, opened
from orderbook_kit.api.schemas import INVALID, UNAVAILABLE, UNKNOWN, Book, Symbol
from orderbook_kit.market.book_messages import MAX_DEPTH

__all__ = ["DEFAULT_DEPTH", "router"]

DEFAULT_DEPTH = 10
Depth = Annotated[int, Query(ge=1, le=MAX_DEPTH, description="levels a side")]

router = APIRouter(tags=["order book"])


@router.get("/books", responses=UNAVAILABLE)
def books_held(api: Api) -> list[str]:
    """The symbols whose order book the API's reader holds."""
    if api.books.error is not None:
        raise Unavailable(f"no order books: {api.books.error}")
    return api.books.symbols()


@router.get("/book/{symbol}", response_model=Book, responses={**INVALID, **UNKNOWN, **UNAVAILABLE})
def order_book(symbol: Symbol, api: Api, depth: Depth = DEFAULT_DEPTH) -> Book:
    """``symbol``'s order book now, to ``depth`` levels a side."""
    books = api.books
    if books.error is not None:
        raise Unavailable(f"no order books: {books.error}")
    view = books.view(symbol, depth)
    if view is None:
        known = ", ".join(books.symbols()) or f"none yet ({books.missing or 'none written'})"
        raise HTTPException(404, f"no order book of {symbol!r}; books: {known}")
    return Book(**view.__dict__)


@router.websocket("/ws/book/{symbol}")
async def live_book(
    websocket: WebSocket, symbol: str, api: Api, depth: Annotated[int, Query()] = DEFAULT_DEPTH
) -> None:
    """``symbol``'s book to ``depth`` levels, at once and then each time it changes (the book
    as it is then: a slow client gets fewer, fresher books). JSON, as ``GET /book/{symbol}``."""
    bad = None if 1 <= depth <= MAX_DEPTH else f"depth must be 1 to {MAX_DEPTH}"
    books = api.books
    if not await opened(websocket, [symbol], stream=books, what="order books", bad_parameter=bad):
        return
    subscription = books.subscribe(symbol, depth)
    try:
        await _forward(websocket, subscription)
    finally:
        books.unsubscribe(subscription)


async def _forward(websocket: WebSocket, subscription: BookSubscription) -> None:
    """Send the newest book queued for ``subscription`` until either side ends it."""
    inner = subscription.inner
    closed = asyncio.ensure_future(websocket.receive())
    dropped = asyncio.ensure_future(inner.dropped.wait())
    try:
        while True:
            nxt = asyncio.ensure_future(inner.queue.get())
            done, _ = await asyncio.wait(
                {nxt, closed, dropped}, return_when=asyncio.FIRST_COMPLETED
            )
            if closed in done or dropped in done:
                nxt.cancel()
                if dropped in done:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            websocket.close(WS_TRY_AGAIN_LATER, "too slow; reconnect"),
                            SEND_TIMEOUT_S,
                        )
                return
            newest = nxt.result()
            while not inner.queue.empty():  # only the freshest book matters
                newest = inner.queue.get_nowait()
            await asyncio.wait_for(websocket.send_text(newest), SEND_TIMEOUT_S)
    except (WebSocketDisconnect, RuntimeError, TimeoutError):
        return
    finally:
        closed.cancel()
        dropped.cancel()
