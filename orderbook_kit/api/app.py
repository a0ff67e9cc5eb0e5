"""The HTTP API: quotes and candles from the hot store, recent ticks from Kafka, live ticks over
a WebSocket. OpenAPI docs at ``/docs``.

Every answer about the data comes from where the pipeline keeps it - nothing is cached here - so
when PostgreSQL or Kafka is down the API says so (503, with the reason), and answers again as soon
as they are back, without a restart. Bad input gets a 4xx that says what to change.

:func:`create_app` only assembles: the dependencies (:class:`~.dependencies.Backends`, one per
application), the routers of ``routes/`` (one per resource) and the two error handlers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from orderbook_kit.api.book_stream import BookStream
from orderbook_kit.api.candle_stream import CandleStream
from orderbook_kit.api.dependencies import DEPENDENCY_TIMEOUT_S, Backends, Unavailable
from orderbook_kit.api.routes import (
    book,
    candles,
    dashboard,
    health,
    live,
    live_candles,
    quotes,
    ticks,
)
from orderbook_kit.api.routes.candles import MAX_CANDLES
from orderbook_kit.api.stream import TickStream
from orderbook_kit.database.pool import ReusedConnections
from orderbook_kit.settings.environment import Settings, load_settings

__all__ = ["DEPENDENCY_TIMEOUT_S", "MAX_CANDLES", "create_app"]

RETRY_AFTER_S = 2


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API over ``settings``' hot store and clean topic; its live stream starts with the
    application (and stops with it)."""
    base = settings or load_settings()
    # Short waits for the dependencies: a request must not hang while they are down.
    settings = base.replace(kafka={"client_timeout_s": DEPENDENCY_TIMEOUT_S})
    backends = Backends(
        settings=settings,
        # The hot store's connections are kept and reused: opening one costs more than a query.
        store=ReusedConnections(
            settings.store.database_url,
            schema=settings.store.schema,
            timeout_s=DEPENDENCY_TIMEOUT_S,
        ),
        stream=TickStream(settings, buffer=settings.api.stream_buffer),
        books=BookStream(settings, buffer=settings.api.stream_buffer),
        candles=CandleStream(settings, buffer=settings.api.stream_buffer),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        backends.stream.start()
        backends.books.start()
        backends.candles.start()
        try:
            yield
        finally:
            backends.candles.close()
            backends.books.close()
            backends.stream.close()
            backends.store.close()

    app = FastAPI(
        title="Orderbook API",
        description="Quotes and candles from the hot store (PostgreSQL), recent ticks from "
        "Kafka, live clean ticks over a WebSocket (`/ws/ticks`), and each symbol's order book "
        "(`/book/{symbol}`, `/ws/book/{symbol}`), and the candles service's candles as they "
        "close (`/ws/candles/{symbol}`).",
        lifespan=lifespan,
    )
    app.state.backends = backends
    app.state.stream = backends.stream
    for routes in (health, quotes, candles, ticks, live, book, live_candles, dashboard):
        app.include_router(routes.router)
    app.add_exception_handler(Unavailable, _unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    return app


async def _unavailable(_: Request, exc: Unavailable) -> JSONResponse:
    return JSONResponse(
        {"detail": exc.reason}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    ]
    # jsonable_encoder: an error's context may hold objects JSON has no form for.
    return JSONResponse(
        {"detail": "; ".join(problems), "errors": jsonable_encoder(exc.errors())}, 422
    )
