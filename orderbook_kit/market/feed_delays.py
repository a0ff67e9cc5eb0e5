"""A feed handler that loses its connection for a while, holds its ticks back, and sends them all
at once when it reconnects: the way late data comes to a stream processor in real pipelines.

Each symbol's ticks still come in seq and time order (the quality gate lets them through), but
the other symbols of the partition have moved on meanwhile - by the partition's clock the held
ticks are late, some by more than a window's grace period.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from orderbook_kit.market.tick import Tick

__all__ = ["hold_back"]


def hold_back(
    ticks: Iterable[Tick], symbol: str, *, held_from: datetime, released_at: datetime
) -> Iterator[Tick]:
    """``ticks`` in the same order, except ``symbol``'s from ``held_from`` on: those are held until
    the first tick stamped ``released_at`` or later has gone, then sent together, in order (the
    reconnect). Ticks still held when ``ticks`` ends are sent at the end."""
    if released_at <= held_from:
        raise ValueError(
            f"released_at ({released_at.isoformat()}) must be after held_from "
            f"({held_from.isoformat()}): ticks are held from the one time until the other"
        )
    held: list[Tick] = []
    released = False
    for tick in ticks:
        if not released and tick.symbol == symbol and tick.event_time >= held_from:
            held.append(tick)
            continue
        yield tick
        if not released and tick.event_time >= released_at:
            released = True
            yield from held
            held.clear()
    yield from held
