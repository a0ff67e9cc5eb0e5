"""The HTTP API: quotes and candles from the hot store, recent ticks from Kafka, live ticks over
a WebSocket. OpenAPI docs at ``/docs``.

Every answer about the data comes from where the pipeline keeps it - nothing is cached here - so
when PostgreSQL or Kafka is down the API says so (503, with the reason), and answers again as soon
as they are back, without a restart. Bad input gets a 4xx that says what to change.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Annotated, Any, TypeVar

import pandas as pd
import psycopg
from fastapi import FastAPI, HTTPException, Path, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from kafka.errors import KafkaError
from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field

from ..config import Settings, load_settings
from ..connections import ReusedConnections
from ..consumer import ReadResult, read_ticks
from ..errors import DatabaseError, OrderbookKitError, TopicNotFoundError
from ..frames import empty_frame
from ..models import SYMBOL_PATTERN
from ..quality.dead_letters import dead_letters_frame, read_dead_letters
from ..store import queries as hot
from ..validation import redacted_url
from .stream import Subscription, TickStream

__all__ = ["MAX_CANDLES", "create_app"]

MAX_CANDLES = 10_000  # per request: a longer range needs a longer interval
DEFAULT_RANGE = timedelta(hours=24)  # of candles, when no start is given
MAX_RECENT_SECONDS = 3600
MAX_RECENT_TICKS = 10_000
DEPENDENCY_TIMEOUT_S = 3.0  # an unreachable PostgreSQL or Kafka answers 503 within seconds
READ_TIMEOUT_S = 2 * DEPENDENCY_TIMEOUT_S  # a read of recent ticks or dead letters from Kafka
SEND_TIMEOUT_S = 5.0  # a WebSocket client that takes longer to accept one message is dropped
MAX_BATCH = 200  # ticks per WebSocket message
WS_TRY_AGAIN_LATER = 1013  # RFC 6455 close codes
WS_POLICY_VIOLATION = 1008

Symbol = Annotated[str, Path(pattern=SYMBOL_PATTERN, description="e.g. TTF-GAS")]
SYMBOL_PATTERN_RE = re.compile(SYMBOL_PATTERN)
T = TypeVar("T")
# RFC 3339 (ISO 8601 with a zone): 2026-01-01T12:00:00Z, 2026-01-01T13:00:00.5+01:00. A plain
# number is not a time here, though pydantic would read it as seconds since 1970.
ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})", re.ASCII
)
FIRST_MOMENT = datetime.min.replace(tzinfo=UTC)


def _iso_time_only(value: object) -> object:
    if isinstance(value, str) and not ISO_TIME.fullmatch(value):
        raise ValueError(
            f"{value[:40]!r} is not an ISO 8601 time with a zone; use e.g. "
            "2026-01-01T12:00:00Z or 2026-01-01T13:00:00+01:00"
        )
    return value


# AwareDatetime: a time without a zone is refused (422), as is anything but ISO 8601.
IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_time_only)]


class Problem(BaseModel):
    """Every error the API answers: what went wrong and what to do (and, for a 422, pydantic's
    own list of the problems, each with where it is)."""

    detail: str = Field(description="what went wrong, and what to change")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="422 only: each problem of the request, with its location"
    )


INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "The request is not valid: `detail` says why"}
}
UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No ticks of this symbol in the hot store"}
}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {
        "model": Problem,
        "description": "PostgreSQL or Kafka is unavailable: `detail` says which and why; try "
        "again after `Retry-After` seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    }
}


class Quote(BaseModel):
    symbol: str
    seq: int
    bid: float
    ask: float
    mid: float
    spread: float
    event_time: datetime


class Candle(BaseModel):
    bucket: datetime
    open: float
    high: float
    low: float
    close: float
    ticks: int


class RecentTick(BaseModel):
    symbol: str
    seq: int
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    event_time: datetime
    publish_time: datetime | None


class DeadLetters(BaseModel):
    seconds: float
    total: int
    by_reason: dict[str, int]


class Dependency(BaseModel):
    ok: bool
    detail: str = Field(description="'answers', or why it does not")


class Health(BaseModel):
    status: str = Field(description="'ok', or 'degraded' when a dependency does not answer")
    database: Dependency
    kafka: Dependency
    stream_clients: int


class Unavailable(Exception):
    """A dependency is down: answered with 503 and ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API over ``settings``' hot store and clean topic; its live stream starts with the
    application (and stops with it)."""
    base = settings or load_settings()
    # Short waits for the dependencies: a request must not hang while they are down.
    settings = dataclasses.replace(base, client_timeout_s=DEPENDENCY_TIMEOUT_S)
    stream = TickStream(settings, buffer=settings.api_stream_buffer)
    # The hot store's connections are kept and reused: opening one costs more than the queries.
    store = ReusedConnections(
        settings.database_url, schema=settings.db_schema, timeout_s=DEPENDENCY_TIMEOUT_S
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stream.start()
        try:
            yield
        finally:
            stream.close()
            store.close()

    app = FastAPI(
        title="Orderbook API",
        description="Quotes and candles from the hot store (PostgreSQL), recent ticks from "
        "Kafka, and live clean ticks over a WebSocket (`/ws/ticks`).",
        lifespan=lifespan,
    )
    app.state.stream = stream

    @app.exception_handler(Unavailable)
    async def unavailable(_: Request, exc: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": exc.reason}, status_code=503, headers={"Retry-After": "2"})

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        ]
        # jsonable_encoder: an error's context may hold objects JSON has no form for.
        return JSONResponse(
            {"detail": "; ".join(problems), "errors": jsonable_encoder(exc.errors())}, 422
        )

    def database(call: Callable[[], T]) -> T:
        """``call``'s answer, or 503 saying why the hot store cannot give it."""
        try:
            return call()
        except psycopg.errors.UndefinedTable:
            raise Unavailable(
                "the hot store has no tables yet: start the store (`python -m orderbook_kit.store`)"
            ) from None
        except (DatabaseError, psycopg.Error) as exc:
            raise Unavailable(
                f"PostgreSQL at {redacted_url(settings.database_url)} is unavailable "
                f"({str(exc).splitlines()[0]}); the API answers again once it is back"
            ) from None

    def kafka(call: Callable[[], T], *, no_topic: Callable[[], T]) -> T:
        """``call``'s answer; ``no_topic()`` if the topic was never created (nothing was ever
        written to it: an answer, not an outage); or 503 saying why Kafka cannot give it."""
        try:
            return call()
        except TopicNotFoundError:
            return no_topic()
        except (OrderbookKitError, KafkaError) as exc:
            raise Unavailable(
                f"Kafka at {settings.bootstrap_servers} is unavailable ({exc}); the API answers "
                "again once it is back"
            ) from None

    def hot_store(question: Callable[[psycopg.Connection], T]) -> T:
        """``question`` asked on one of the store's kept connections, or 503 saying why not."""
        return database(lambda: store.run(question))

    def known_symbols() -> list[str]:
        return hot_store(lambda conn: hot.symbols(connection=conn))

    def require_known(symbol: str) -> None:
        known = known_symbols()
        if symbol not in known:
            raise HTTPException(
                404, f"no ticks of {symbol!r} in the hot store; known symbols: {', '.join(known)}"
            )

    @app.get(
        "/health",
        response_model=Health,
        tags=["service"],
        responses={503: {"model": Health, "description": "PostgreSQL or Kafka does not answer"}},
    )
    def health() -> JSONResponse:
        """Whether PostgreSQL and Kafka answer (503 if either does not), each with the reason."""
        try:
            store.run(lambda conn: conn.execute("SELECT 1"))
            database = Dependency(ok=True, detail="answers")
        except (OrderbookKitError, psycopg.Error) as exc:
            database = Dependency(ok=False, detail=str(exc).splitlines()[0])
        kafka_error = stream.error or (None if stream.ready.is_set() else "connecting to Kafka")
        kafka = Dependency(ok=kafka_error is None, detail=kafka_error or "answers")
        body = Health(
            status="ok" if database.ok and kafka.ok else "degraded",
            database=database,
            kafka=kafka,
            stream_clients=stream.clients,
        )
        return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)

    @app.get("/symbols", tags=["hot store"], responses=UNAVAILABLE)
    def symbols() -> list[str]:
        """Every symbol with ticks in the hot store."""
        return known_symbols()

    @app.get(
        "/quotes/latest", response_model=list[Quote], tags=["hot store"], responses=UNAVAILABLE
    )
    def latest_quotes() -> list[dict[str, Any]]:
        """The latest quote of every symbol."""
        return records(hot_store(lambda conn: hot.latest_quotes(connection=conn)))

    @app.get(
        "/quotes/{symbol}/latest",
        response_model=Quote,
        tags=["hot store"],
        responses={**INVALID, **UNKNOWN, **UNAVAILABLE},
    )
    def latest_quote(symbol: Symbol) -> dict[str, Any]:
        """The latest quote of ``symbol``."""
        rows = records(hot_store(lambda conn: hot.latest_quotes(connection=conn)))
        for row in rows:
            if row["symbol"] == symbol:
                return row
        require_known(symbol)  # raises 404 with the known symbols
        raise HTTPException(404, f"no quote of {symbol!r}")  # pragma: no cover - raced a delete

    @app.get(
        "/candles/{symbol}",
        response_model=list[Candle],
        tags=["hot store"],
        responses={**INVALID, **UNKNOWN, **UNAVAILABLE},
    )
    def candles(
        symbol: Symbol,
        interval: Annotated[int, Query(ge=1, le=86_400, description="seconds per candle")] = 60,
        start: Annotated[
            IsoTime | None, Query(description="ISO 8601 with a zone; default: end minus 24 h")
        ] = None,
        end: Annotated[
            IsoTime | None, Query(description="ISO 8601 with a zone; default: now")
        ] = None,
    ) -> list[dict[str, Any]]:
        """OHLC candles of ``symbol``'s mid from ``start`` (default: ``end`` minus 24 h) to
        ``end``, at most 10,000 of them."""
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
        require_known(symbol)
        frame = hot_store(
            lambda conn: hot.candles(
                symbol, seconds=interval, start=start, end=end, connection=conn
            )
        )
        return records(frame)

    @app.get(
        "/ticks/{symbol}/recent",
        response_model=list[RecentTick],
        tags=["kafka"],
        responses={**INVALID, **UNAVAILABLE},
    )
    def recent_ticks(
        symbol: Symbol,
        seconds: Annotated[float, Query(gt=0, le=MAX_RECENT_SECONDS)] = 60,
        limit: Annotated[int, Query(ge=1, le=MAX_RECENT_TICKS)] = 1000,
    ) -> list[dict[str, Any]]:
        """``symbol``'s clean ticks of the last ``seconds``, read from Kafka by time (the
        newest ``limit`` of them)."""
        since = datetime.now(UTC) - timedelta(seconds=seconds)
        result = kafka(
            lambda: read_ticks(
                settings.clean_topic,
                settings=settings,
                from_time=since,
                timeout_s=READ_TIMEOUT_S,
                max_messages=MAX_RECENT_TICKS * 10,  # every symbol's: bounded either way
            ),
            no_topic=lambda: ReadResult(empty_frame()),
        )
        if result.outage is not None:
            raise Unavailable(f"Kafka at {settings.bootstrap_servers} failed: {result.outage}")
        frame = result.frame
        if frame.empty:
            return []
        frame = frame[frame["symbol"] == symbol].sort_values(["event_time", "seq"])
        columns = list(RecentTick.model_fields)
        return records(frame[columns].tail(limit))

    @app.get(
        "/dead-letters",
        response_model=DeadLetters,
        tags=["kafka"],
        responses={**INVALID, **UNAVAILABLE},
    )
    def dead_letters(
        seconds: Annotated[float, Query(gt=0, le=MAX_RECENT_SECONDS)] = 300,
    ) -> DeadLetters:
        """How many messages the quality gate rejected in the last ``seconds``, by reason (read
        from the dead-letter topic by time)."""
        since = datetime.now(UTC) - timedelta(seconds=seconds)
        frame = kafka(
            lambda: read_dead_letters(settings, from_time=since, timeout_s=READ_TIMEOUT_S),
            no_topic=lambda: dead_letters_frame([]),
        )
        counts = frame["reason"].value_counts()
        return DeadLetters(
            seconds=seconds,
            total=int(counts.sum()),
            by_reason={str(reason): int(n) for reason, n in counts.items()},
        )

    @app.get("/", include_in_schema=False)
    def dashboard() -> HTMLResponse:
        """The live dashboard: plain HTML and plotly.js, fed by this API."""
        return HTMLResponse(
            resources.files(__package__).joinpath("static/dashboard.html").read_text()
        )

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        """plotly.js from the plotly package itself: the dashboard needs no internet."""
        bundle = resources.files("plotly").joinpath("package_data/plotly.min.js")
        return FileResponse(str(bundle), media_type="text/javascript")

    @app.websocket("/ws/ticks")
    async def live_ticks(
        websocket: WebSocket, symbol: Annotated[list[str] | None, Query()] = None
    ) -> None:
        """Clean ticks as they arrive: JSON arrays of ticks (``?symbol=`` repeated to filter).
        A client more than the stream's buffer behind is disconnected with code 1013."""
        wanted = frozenset(symbol) if symbol else None
        bad = sorted(s for s in wanted or () if not SYMBOL_PATTERN_RE.fullmatch(s))
        await websocket.accept()
        if bad:
            await websocket.close(WS_POLICY_VIOLATION, f"not a symbol: {bad[0][:40]!r}")
            return
        if stream.error is not None:
            await websocket.close(WS_TRY_AGAIN_LATER, f"no live ticks: {stream.error}"[:120])
            return
        subscription = stream.subscribe(wanted)
        try:
            await forward(websocket, subscription)
        finally:
            stream.unsubscribe(subscription)

    return app


async def forward(websocket: WebSocket, subscription: Subscription) -> None:
    """Send ``subscription``'s ticks to ``websocket`` until either side ends it."""
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
                reason = f"too slow: more than {subscription.queue.maxsize} ticks behind; reconnect"
                # The close frame waits behind what the client has not read yet: bounded too.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        websocket.close(WS_TRY_AGAIN_LATER, reason), SEND_TIMEOUT_S
                    )
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


def in_utc(moment: datetime | None, name: str) -> datetime | None:
    """``moment`` (aware: the parameter's type saw to that) in UTC, or 422 if UTC cannot hold
    it (0001-01-01T00:00:00+01:00 is before year 1 there)."""
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise HTTPException(
            422, f"{name} is outside the years 1-9999 once converted to UTC; use a time inside"
        ) from None


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame``'s rows as plain Python values: numbers exactly as stored (pandas' own JSON writer
    rounds to 10 digits, and so wrote the largest float as null), times as aware datetimes, and
    None for a missing value. The response model then writes them out."""
    return [
        {name: _plain(value) for name, value in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def _plain(value: Any) -> Any:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value
