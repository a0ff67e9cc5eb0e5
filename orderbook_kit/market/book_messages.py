"""The order book on the wire: a snapshot of a symbol's book, and the updates that follow it.

As exchanges publish depth (Coinbase ``level2``, Binance depth streams, ICE iMpact price-level
books): a *snapshot* lists every price level to a depth, then each *update* lists the levels that
changed, with the level's new absolute size (0 removes it) and a per-symbol sequence number that
goes up by one. A reader that applies every update in order holds the exchange's book; one that
misses an update cannot tell from the sizes alone, so each update carries a *checksum* of the book
after it (as Kraken and OKX do): a reader whose book gives another checksum knows it is wrong.

Prices sit on the instrument's grid (``tick_size``); sizes are whole lots. The checksum is defined
on integers, so that a reader in any language computes the same number (see :func:`book_checksum`
and the README's "The order book on Kafka").
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Iterable, Sequence
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from orderbook_kit.market.simulator import instrument_for
from orderbook_kit.market.tick import MAX_SEQ, SYMBOL_PATTERN, as_utc

__all__ = [
    "CHECKSUM_LEVELS",
    "MAX_CHANGES",
    "MAX_DEPTH",
    "MAX_LEVEL_SIZE",
    "MAX_PRICE_TICKS",
    "BookSnapshot",
    "BookUpdate",
    "LevelChange",
    "Side",
    "book_checksum",
    "price_in_ticks",
]

Side = Literal["bid", "ask"]
# Levels a side the checksum covers (Kraken: 25; the kit's books are 10 deep by default).
CHECKSUM_LEVELS = 10
# Levels a side a snapshot may hold, and level changes one update may carry: bounds, so one
# hostile message cannot make a reader allocate without end.
MAX_DEPTH = 1000
MAX_CHANGES = 200
# Whole lots at one level: far above any real book, well inside a signed 64-bit integer.
MAX_LEVEL_SIZE = 10**12
# How far from the grid a price may be, in ticks, and still count as on it (float rounding), and
# the highest price in ticks: below it a double still tells prices a tick apart with room to spare.
GRID_TOLERANCE = 1e-3
MAX_PRICE_TICKS = 10**12

Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Lots = Annotated[int, Field(ge=0, le=MAX_LEVEL_SIZE)]
Checksum = Annotated[int, Field(ge=0, le=2**32 - 1)]


def price_in_ticks(price: float, tick_size: float) -> int | None:
    """``price`` as a whole number of ``tick_size`` (1 to ``MAX_PRICE_TICKS``), or None if it is
    not on that grid or not in that range."""
    ticks = price / tick_size
    if not math.isfinite(ticks):
        return None
    nearest = round(ticks)
    if not 1 <= nearest <= MAX_PRICE_TICKS or abs(ticks - nearest) > GRID_TOLERANCE:
        return None
    return nearest


def book_checksum(
    bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]], levels: int = CHECKSUM_LEVELS
) -> int:
    """CRC-32 (zlib's, IEEE 802.3) of the ASCII text of the top ``levels`` of each side.

    ``bids`` best (highest) first, ``asks`` best (lowest) first, each level as (price in ticks,
    size in lots). The text is every bid level written ``b<price>:<size>``, then every ask level
    ``a<price>:<size>``, joined by commas: a book with bids 7000 (12 lots) and 6999 (5) and an
    ask at 7002 (3) is ``b7000:12,b6999:5,a7002:3``. An empty book is the empty text (0)."""
    parts = [f"b{price}:{size}" for price, size in itertools.islice(bids, levels)]
    parts += [f"a{price}:{size}" for price, size in itertools.islice(asks, levels)]
    return zlib.crc32(",".join(parts).encode("ascii"))


class LevelChange(BaseModel):
    """One price level's new absolute size (whole lots); 0 removes the level."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    side: Side
    price: Price
    size: Lots


class BookUpdate(BaseModel):
    """The levels of ``symbol``'s book that changed, as one step of its sequence.

    ``seq`` is 1 for the first update after the empty book and goes up by one; ``checksum`` is
    :func:`book_checksum` of the book once the changes are applied. Changes are in book order
    (bids best first, then asks best first), each level at most once, on the symbol's grid.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    symbol: str = Field(pattern=SYMBOL_PATTERN)
    seq: int = Field(ge=1, le=MAX_SEQ)
    changes: list[LevelChange] = Field(min_length=1, max_length=MAX_CHANGES)
    checksum: Checksum
    event_time: AwareDatetime
    publish_time: AwareDatetime | None = None

    _utc = field_validator("event_time", "publish_time")(as_utc)

    @model_validator(mode="after")
    def _in_book_order_on_the_grid(self) -> BookUpdate:
        tick_size = instrument_for(self.symbol).tick_size
        bids = [c for c in self.changes if c.side == "bid"]
        asks = [c for c in self.changes if c.side == "ask"]
        if self.changes != bids + asks:
            raise PydanticCustomError(
                "unsorted_levels", "changes must list every bid level before any ask level"
            )
        for side, changes, sign in (("bid", bids, -1), ("ask", asks, 1)):
            ticks = [_on_grid(c.price, tick_size, side) for c in changes]
            _check_order(ticks, sign, side)
        return self

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> BookUpdate:
        return cls.model_validate_json(data)


SnapshotLevel = tuple[Price, Annotated[int, Field(ge=1, le=MAX_LEVEL_SIZE)]]  # [price, size]


class BookSnapshot(BaseModel):
    """``symbol``'s whole book as of update ``seq`` (0: before the first update, empty).

    ``bids`` best (highest) first, ``asks`` best (lowest) first, each level ``[price, size]``
    with a size of at least one lot. ``update_partition`` and ``update_offset`` say where in the
    update topic the update ``seq`` is (offset -1: no update yet), so a reader can start reading
    the updates right after it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    symbol: str = Field(pattern=SYMBOL_PATTERN)
    seq: int = Field(ge=0, le=MAX_SEQ)
    tick_size: float = Field(gt=0, allow_inf_nan=False)
    bids: list[SnapshotLevel] = Field(max_length=MAX_DEPTH)
    asks: list[SnapshotLevel] = Field(max_length=MAX_DEPTH)
    checksum: Checksum
    event_time: AwareDatetime
    update_partition: int = Field(ge=0, le=2**31 - 1)
    update_offset: int = Field(ge=-1, le=MAX_SEQ)
    publish_time: AwareDatetime | None = None

    _utc = field_validator("event_time", "publish_time")(as_utc)

    @model_validator(mode="after")
    def _a_book(self) -> BookSnapshot:
        bid_ticks = [_on_grid(price, self.tick_size, "bid") for price, _ in self.bids]
        ask_ticks = [_on_grid(price, self.tick_size, "ask") for price, _ in self.asks]
        _check_order(bid_ticks, -1, "bid")
        _check_order(ask_ticks, 1, "ask")
        if bid_ticks and ask_ticks and bid_ticks[0] >= ask_ticks[0]:
            raise PydanticCustomError(
                "crossed_book",
                "crossed book: best bid {bid} is not below best ask {ask}",
                {"bid": self.bids[0][0], "ask": self.asks[0][0]},
            )
        expected = book_checksum(
            zip(bid_ticks, (size for _, size in self.bids), strict=True),
            zip(ask_ticks, (size for _, size in self.asks), strict=True),
        )
        if self.checksum != expected:
            raise PydanticCustomError(
                "checksum_mismatch",
                "checksum {checksum} does not match the levels (they give {expected})",
                {"checksum": self.checksum, "expected": expected},
            )
        return self

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> BookSnapshot:
        return cls.model_validate_json(data)


def _on_grid(price: float, tick_size: float, side: str) -> int:
    ticks = price_in_ticks(price, tick_size)
    if ticks is None:
        raise PydanticCustomError(
            "off_grid",
            "{side} price {price} is not on the price grid (a multiple of {tick_size}, at most "
            "{most} of them)",
            {"side": side, "price": price, "tick_size": tick_size, "most": MAX_PRICE_TICKS},
        )
    return ticks


def _check_order(ticks: Sequence[int], sign: int, side: str) -> None:
    """Strictly best first: bids falling (``sign`` -1), asks rising (1); no level twice."""
    for before, after in itertools.pairwise(ticks):
        if (after - before) * sign <= 0:
            kind = "duplicate_level" if after == before else "unsorted_levels"
            order = "highest" if side == "bid" else "lowest"
            raise PydanticCustomError(
                kind,
                "{side} levels must be in book order, {order} first, each price once",
                {"side": side, "order": order},
            )
