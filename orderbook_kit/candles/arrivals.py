"""What the candles service makes of each message of the clean topic, before any window sees it.

Quix Streams reads a message in three calls of ours: the key's deserializer, the value's, and the
timestamp extractor (which gives the engine a message's event time). Here they are:

- :class:`PartitionClockKey`: every message of a partition gets the same key, so the windows keep
  one clock per partition (see :mod:`orderbook_kit.market.candles` for why), and each window's
  value holds a candle per symbol;
- :class:`ArrivalDeserializer`: the message as an :data:`Arrival`, a tick ready for the windows or
  the reason it is not one. It never raises, whatever the bytes: a message the windows cannot
  use is set aside on the skipped topic, never allowed to stop the service;
- :func:`event_time_ms`: the tick's event time; for a message set aside, the record's own time.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from orderbook_kit.candles.engine import Deserializer, SerializationContext, Serializer
from orderbook_kit.market.candles import WindowTick, millis
from orderbook_kit.market.decoding import MAX_CLOCK_SKEW, DecodeFailure, clip, decode_tick
from orderbook_kit.market.reasons import CandleReason, Reason
from orderbook_kit.market.tick import utc_now

__all__ = [
    "CLOCK_KEY",
    "Arrival",
    "ArrivalDeserializer",
    "PartitionClockKey",
    "PayloadSerializer",
    "event_time_ms",
    "refused",
]

log = logging.getLogger(__name__)

# The windows' key: one for every message, so each partition has one clock.
CLOCK_KEY = b"partition"


class Arrival(NamedTuple):
    """A message of the clean topic: the tick for the windows, or why there is none."""

    tick: WindowTick | None
    raw: bytes | None  # the message's value, as it came: copied to the skipped topic if need be
    reason: str | None
    detail: str


def refused(arrival: Arrival, reason: str, detail: str) -> Arrival:
    return Arrival(None, arrival.raw, reason, clip(detail))


class PartitionClockKey(Deserializer):
    """The key of every message: :data:`CLOCK_KEY` (the symbol is in the value)."""

    def __call__(self, value: bytes, ctx: SerializationContext) -> Any:
        return CLOCK_KEY


class ArrivalDeserializer(Deserializer):
    """A message's value as an :class:`Arrival`: decoded and checked as the gate checks it (size,
    JSON, schema, book rules), then against this service's clock and the engine's range."""

    def __call__(self, value: bytes, ctx: SerializationContext) -> Any:
        try:
            return arrival_of(value)
        except Exception as exc:  # a bug of the kit: set aside, named, never raised
            log.exception("reading a message of %s raised; it was set aside", ctx.topic)
            return Arrival(None, value, Reason.INTERNAL_ERROR.value, clip(repr(exc)))


def arrival_of(value: bytes | None) -> Arrival:
    decoded = decode_tick(value)
    if isinstance(decoded, DecodeFailure):
        return Arrival(None, value, decoded.reason.value, decoded.detail)
    tick = decoded
    # The gate refuses ticks from the future; a message written past it must not move a
    # partition's clock to the year 9999 and make every later tick late.
    if tick.event_time - utc_now() > MAX_CLOCK_SKEW:  # a difference: no overflow near 9999
        return Arrival(
            None,
            value,
            CandleReason.TIME_AHEAD.value,
            f"event_time {tick.event_time.isoformat()} is ahead of this service's clock by more "
            f"than {MAX_CLOCK_SKEW.total_seconds():g} s",
        )
    time_ms = millis(tick.event_time)
    if time_ms < 0:
        return Arrival(
            None,
            value,
            CandleReason.BEFORE_1970.value,
            f"event_time {tick.event_time.isoformat()} is before 1970, where the engine's "
            "windows begin",
        )
    return Arrival(WindowTick.of(tick), value, None, "")


def event_time_ms(arrival: Arrival, headers: Any, timestamp_ms: int, timestamp_type: Any) -> int:
    """The engine's timestamp of a message: its tick's event time; for a message set aside, the
    record's own (never negative: -1 means none)."""
    if arrival is not None and arrival.tick is not None:
        return arrival.tick.time_ms
    return max(timestamp_ms, 0)


class PayloadSerializer(Serializer):
    """Writes the bytes of a ``(key, payload)`` pair (the key goes to the record's key)."""

    def __call__(self, value: tuple[str | None, bytes], ctx: SerializationContext) -> bytes:
        return value[1]
