"""The top-of-book tick: one validated snapshot of the best bid and ask of one instrument.

Bad market data is rejected at the door with a message that names the field and the rule, so a
crossed book or a negative size never reaches a chart or a store unnoticed.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError, SchemaSerializer
from typing_extensions import TypedDict

from orderbook_kit.settings.rules import SYMBOL_PATTERN

__all__ = ["MAX_SEQ", "SYMBOL_PATTERN", "Tick", "as_utc", "utc_now"]

# A seq must fit a signed 64-bit integer, as it does in pandas (int64), Kafka and SQL (BIGINT).
MAX_SEQ = 2**63 - 1

Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Size = Annotated[float, Field(gt=0, allow_inf_nan=False)]


_PUBLISHED = frozenset({"publish_time"})


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """An aware time in UTC (None stays None); ValueError if it falls outside the years 1-9999
    once converted (9999-12-31T23:00-05:00 is past the last datetime in UTC)."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is outside the years 1-9999 once converted to UTC") from None


class Tick(BaseModel):
    """Best bid and ask of ``symbol`` at ``event_time``; ``seq`` counts ticks per symbol from 0."""

    # strict: types as declared. JSON "1" is not a seq and "30.0" is not a price, even though
    # pydantic would happily convert them in its default (lax) mode; true is not a number either.
    # (JSON integers are accepted for floats: 30 is a valid price.)
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    symbol: str = Field(pattern=SYMBOL_PATTERN, description="instrument code, e.g. TTF-GAS")
    seq: int = Field(ge=0, le=MAX_SEQ, description="per-symbol sequence number, +1 for each tick")
    bid: Price = Field(description="best bid price (EUR/MWh for TTF-GAS)")
    ask: Price = Field(description="best ask price; always above the bid")
    bid_size: Size = Field(description="quantity at the best bid (lots)")
    ask_size: Size = Field(description="quantity at the best ask (lots)")
    event_time: AwareDatetime = Field(description="when the market showed this quote (UTC)")
    publish_time: AwareDatetime | None = Field(
        default=None, description="when the producer sent it to Kafka (UTC); set by the producer"
    )

    @field_validator("event_time", "publish_time")
    @classmethod
    def _to_utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)

    @model_validator(mode="after")
    def _book_not_crossed(self) -> Tick:
        # Custom error types ("crossed_book", "locked_book") let the decoder name the reason
        # without parsing the message text.
        if self.bid > self.ask:
            raise PydanticCustomError(
                "crossed_book",
                "crossed book: bid {bid} is above ask {ask}; bid must be below ask",
                {"bid": self.bid, "ask": self.ask},
            )
        if self.bid == self.ask:
            raise PydanticCustomError(
                "locked_book",
                "locked book: bid equals ask ({bid}); bid must be below ask",
                {"bid": self.bid},
            )
        return self

    @property
    def mid(self) -> float:
        # Halves first: exactly (bid + ask) / 2, without overflowing to inf near float's maximum.
        return self.bid / 2 + self.ask / 2

    @property
    def spread(self) -> float:
        return self.ask - self.bid

    def published_json(self, at: datetime | None = None) -> bytes:
        """The same bytes as ``self.published(at).to_json()``, without making the copy.

        The producer's path for every tick: the fields go to pydantic's serializer as a dict,
        which saves about 1.5 µs a tick (45%) - in a producer whose I/O thread competes for the
        interpreter, that is about 10% more ticks per second.
        """
        stamp = utc_now() if at is None else at.astimezone(UTC)
        return _fields_serializer().to_json({**self.__dict__, "publish_time": stamp})

    def to_json(self) -> bytes:
        """UTF-8 JSON bytes, as sent to Kafka. ``Tick.from_json`` reads them back unchanged."""
        # The model's serializer writes bytes itself: no str made and encoded again.
        return self.__pydantic_serializer__.to_json(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> Tick:
        """Parse and validate JSON; raises ``pydantic.ValidationError`` naming each bad field."""
        return cls.model_validate_json(data)

    def published(self, at: datetime | None = None) -> Tick:
        """A copy stamped with ``publish_time`` (now, by default)."""
        stamp = utc_now() if at is None else at.astimezone(UTC)
        # What model_copy(update=...) does, without its generic machinery: this runs once per
        # tick sent, and was a third of the producer's own cost per message (measured: 6.7 µs
        # against 2.4 µs). The other fields are already validated; publish_time is aware UTC.
        copy = object.__new__(Tick)
        object.__setattr__(copy, "__dict__", {**self.__dict__, "publish_time": stamp})
        object.__setattr__(copy, "__pydantic_fields_set__", self.model_fields_set | _PUBLISHED)
        object.__setattr__(copy, "__pydantic_extra__", None)
        object.__setattr__(copy, "__pydantic_private__", None)
        return copy


@functools.cache
def _fields_serializer() -> SchemaSerializer:
    """pydantic's serializer of a dict of Tick's fields: it writes them exactly as it writes a
    Tick (same order, same float and time formats). Built from the model's own fields, so the
    two cannot drift apart; built once, on first use."""
    fields = {name: field.annotation for name, field in Tick.model_fields.items()}
    return TypeAdapter(TypedDict("TickFields", fields)).serializer  # type: ignore[operator]
