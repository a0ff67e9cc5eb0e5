"""What the routes share, handed to them by FastAPI's ``Depends``: the API's settings, the hot
store's kept connections and the live stream (:class:`Backends`), and one place that turns a
dependency's failure into a 503 with the reason (:class:`Unavailable`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import pandas as pd
import psycopg
from fastapi import Depends, HTTPException
from fastapi.requests import HTTPConnection
from kafka.errors import KafkaError

from orderbook_kit.api.book_stream import BookStream
from orderbook_kit.api.candle_stream import CandleStream
from orderbook_kit.api.stream import TickStream
from orderbook_kit.database.pool import ReusedConnections
from orderbook_kit.errors import DatabaseError, OrderbookKitError, TopicNotFoundError
from orderbook_kit.settings.environment import Settings
from orderbook_kit.settings.rules import redacted_url
from orderbook_kit.store import queries as hot

__all__ = ["DEPENDENCY_TIMEOUT_S", "Api", "Backends", "Unavailable", "in_utc", "records"]

T = TypeVar("T")
DEPENDENCY_TIMEOUT_S = 3.0  # an unreachable PostgreSQL or Kafka answers 503 within seconds


class Unavailable(Exception):
    """A dependency is down: answered with 503 and ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Backends:
    """The API's dependencies, made once per application (``app.state.backends``)."""

    settings: Settings
    store: ReusedConnections  # PostgreSQL connections, kept and reused
    stream: TickStream  # the one Kafka reader behind every WebSocket client
    books: BookStream  # the one reader of the book topics
    candles: CandleStream  # the one reader of the candles service's closed candles

    def database(self, call: Callable[[], T]) -> T:
        """``call``'s answer, or 503 saying why the hot store cannot give it."""
        try:
            return call()
        except psycopg.errors.UndefinedTable:
            raise Unavailable(
                "the hot store has no tables yet: start the store (`python -m orderbook_kit.store`)"
            ) from None
        except (DatabaseError, psycopg.Error) as exc:
            raise Unavailable(
                f"PostgreSQL at {redacted_url(self.settings.store.database_url)} is unavailable "
                f"({str(exc).splitlines()[0]}); the API answers again once it is back"
            ) from None

    def kafka(self, call: Callable[[], T], *, no_topic: Callable[[], T]) -> T:
        """``call``'s answer; ``no_topic()`` if the topic was never created (nothing was ever
        written to it: an answer, not an outage); or 503 saying why Kafka cannot give it."""
        try:
            return call()
        except TopicNotFoundError:
            return no_topic()
        except (OrderbookKitError, KafkaError) as exc:
            raise Unavailable(
                f"Kafka at {self.settings.kafka.bootstrap_servers} is unavailable ({exc}); the API "
                "answers again once it is back"
            ) from None

    def hot_store(self, question: Callable[[psycopg.Connection], T]) -> T:
        """``question`` asked on one of the store's kept connections, or 503 saying why not."""
        return self.database(lambda: self.store.run(question))

    def known_symbols(self) -> list[str]:
        return self.hot_store(lambda conn: hot.symbols(connection=conn))

    def require_known(self, symbol: str) -> None:
        """404 listing the known symbols, unless ``symbol`` has ticks in the hot store."""
        known = self.known_symbols()
        if symbol not in known:
            raise HTTPException(
                404, f"no ticks of {symbol!r} in the hot store; known symbols: {', '.join(known)}"
            )


def backends(connection: HTTPConnection) -> Backends:
    """The application's :class:`Backends`, for an HTTP request or a WebSocket alike."""
    found: Backends = connection.app.state.backends
    return found


Api = Annotated[Backends, Depends(backends)]


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
