"""What the API answers, as pydantic models (its OpenAPI description is built from them), and the
request parameters it shares: a symbol in the path, a time in the query."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field

from orderbook_kit.market.tick import SYMBOL_PATTERN

__all__ = [
    "INVALID",
    "UNAVAILABLE",
    "UNKNOWN",
    "Book",
    "Candle",
    "DeadLetters",
    "Dependency",
    "Health",
    "IsoTime",
    "Problem",
    "Quote",
    "RecentTick",
    "Symbol",
]

Symbol = Annotated[str, Path(pattern=SYMBOL_PATTERN, description="e.g. TTF-GAS")]

# RFC 3339 (ISO 8601 with a zone): 2026-01-01T12:00:00Z, 2026-01-01T13:00:00.5+01:00. A plain
# number is not a time here, though pydantic would read it as seconds since 1970.
ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})", re.ASCII
)


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


class Book(BaseModel):
    """One symbol's order book as the API's reader holds it now (rebuilt from the book topics:
    the newest snapshot, then the updates after it). ``in_sync`` false: the reader lost the book
    (a gap, a checksum that differs) and waits for the next snapshot; the levels are then empty.
    Each level is ``[price, size, cumulative size from the best level]``, bids highest first,
    asks lowest first."""

    symbol: str
    seq: int = Field(description="the last update applied")
    in_sync: bool
    bids: list[tuple[float, int, int]]
    asks: list[tuple[float, int, int]]
    checksum: int | None = Field(description="CRC-32 of the top 10 levels (see the README)")
    imbalance: float | None = Field(
        description="(bid size - ask size) / (bid size + ask size) over the top 5 levels"
    )
    updated_at: datetime | None = Field(description="when the reader last changed it")
