"""Read from Kafka by time: ``GET /ticks/{symbol}/recent`` (clean ticks) and
``GET /dead-letters`` (what the quality gate rejected, by reason)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from orderbook_kit.api.dependencies import DEPENDENCY_TIMEOUT_S, Api, Unavailable, records
from orderbook_kit.api.schemas import INVALID, UNAVAILABLE, DeadLetters, RecentTick, Symbol
from orderbook_kit.kafka.reader import ReadResult, read_ticks
from orderbook_kit.market.frames import empty_frame
from orderbook_kit.quality.dead_letters import dead_letters_frame, read_dead_letters

__all__ = ["MAX_RECENT_SECONDS", "MAX_RECENT_TICKS", "READ_TIMEOUT_S", "router"]

MAX_RECENT_SECONDS = 3600
MAX_RECENT_TICKS = 10_000
READ_TIMEOUT_S = 2 * DEPENDENCY_TIMEOUT_S  # a read of recent ticks or dead letters from Kafka

router = APIRouter(tags=["kafka"])

Seconds = Annotated[float, Query(gt=0, le=MAX_RECENT_SECONDS)]
Limit = Annotated[int, Query(ge=1, le=MAX_RECENT_TICKS)]


@router.get(
    "/ticks/{symbol}/recent",
    response_model=list[RecentTick],
    responses={**INVALID, **UNAVAILABLE},
)
def recent_ticks(
    symbol: Symbol, api: Api, seconds: Seconds = 60, limit: Limit = 1000
) -> list[dict[str, Any]]:
    """``symbol``'s clean ticks of the last ``seconds``, read from Kafka by time (the newest
    ``limit`` of them)."""
    settings = api.settings
    since = datetime.now(UTC) - timedelta(seconds=seconds)
    result = api.kafka(
        lambda: read_ticks(
            settings.topics.clean,
            settings=settings,
            from_time=since,
            timeout_s=READ_TIMEOUT_S,
            max_messages=MAX_RECENT_TICKS * 10,  # every symbol's: bounded either way
        ),
        no_topic=lambda: ReadResult(empty_frame()),
    )
    if result.outage is not None:
        raise Unavailable(f"Kafka at {settings.kafka.bootstrap_servers} failed: {result.outage}")
    frame = result.frame
    if frame.empty:
        return []
    frame = frame[frame["symbol"] == symbol].sort_values(["event_time", "seq"])
    return records(frame[list(RecentTick.model_fields)].tail(limit))


@router.get("/dead-letters", response_model=DeadLetters, responses={**INVALID, **UNAVAILABLE})
def dead_letters(api: Api, seconds: Seconds = 300) -> DeadLetters:
    """How many messages the quality gate rejected in the last ``seconds``, by reason (read from
    the dead-letter topic by time)."""
    since = datetime.now(UTC) - timedelta(seconds=seconds)
    frame = api.kafka(
        lambda: read_dead_letters(api.settings, from_time=since, timeout_s=READ_TIMEOUT_S),
        no_topic=lambda: dead_letters_frame([]),
    )
    counts = frame["reason"].value_counts()
    return DeadLetters(
        seconds=seconds,
        total=int(counts.sum()),
        by_reason={str(reason): int(n) for reason, n in counts.items()},
    )
