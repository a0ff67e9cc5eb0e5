"""Fault injection for the book's feed: the messy stream of updates a real transport sometimes
delivers, for the book service and the readers to catch.

Each update may suffer one fault, each with its own probability:

- ``drop``: never sent (the next update of its symbol follows a gap);
- ``repeat``: sent twice (the copy is a duplicate);
- ``reorder``: sent after the message that follows it (the one after it arrives first: a gap,
  then the late one);
- ``corrupt``: its first level's size changed by a lot, the checksum left as it was (the book
  after it is not the one the update describes: a checksum mismatch, or a crossed book). The
  first level: it is among the top levels the checksum covers. A level spoiled deeper than those
  would pass the checksum - as with every exchange's top-N checksum - and be caught only when
  the next snapshot is compared with the book, level by level;
- ``garble``: its bytes cut in half (no longer JSON).

The exchange's snapshots are left as they are: they are how a reader recovers. Every record comes
out labelled with its fault (or ``None``), so a test can count what went in and what came out.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from orderbook_kit.market.book_decoding import kind_headers
from orderbook_kit.market.book_messages import MAX_LEVEL_SIZE, BookSnapshot, BookUpdate

__all__ = [
    "BOOK_FAULT_KINDS",
    "BookFaultInjector",
    "RawBookRecord",
    "raw_book_records",
    "raw_record",
]

BOOK_FAULT_KINDS = ("drop", "repeat", "reorder", "corrupt", "garble")


@dataclass(frozen=True)
class RawBookRecord:
    """One record for the raw topic: key, value bytes, its ``kind`` header, the message it was
    made from, and the fault it carries."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    message: BookUpdate | BookSnapshot
    fault: str | None = None


def raw_record(message: BookUpdate | BookSnapshot, fault: str | None = None) -> RawBookRecord:
    """``message`` as a record of the raw topic (keyed by its symbol, labelled by its kind)."""
    return RawBookRecord(
        message.symbol.encode(), message.to_json(), kind_headers(message), message, fault
    )


class BookFaultInjector:
    """Labels each update clean or faulty, ``rates[kind]`` the probability of each fault (they
    must add up to at most 1). ``injected`` counts what was produced, by kind."""

    def __init__(self, rates: Mapping[str, float], *, seed: int | None = None) -> None:
        unknown = set(rates) - set(BOOK_FAULT_KINDS)
        if unknown:
            raise ValueError(
                f"unknown book fault(s) {sorted(unknown)}; the kinds are "
                f"{', '.join(BOOK_FAULT_KINDS)}"
            )
        if any(not 0 <= p <= 1 for p in rates.values()) or sum(rates.values()) > 1:
            raise ValueError(f"fault probabilities must be 0 to 1 and add up to at most 1: {rates}")
        self.rates = {kind: rates.get(kind, 0.0) for kind in BOOK_FAULT_KINDS}
        self.injected: Counter[str] = Counter()
        self._random = random.Random(seed)

    def records(self, messages: Iterable[BookUpdate | BookSnapshot]) -> Iterator[RawBookRecord]:
        """The raw records of ``messages``, with faults."""
        held: RawBookRecord | None = None  # a reordered update, sent after the next message
        for message in messages:
            out = self._faulty(message)
            if held is not None:
                out.append(held)
                held = None
            if out and out[0].fault == "reorder":
                held = out.pop(0)
            yield from out
        if held is not None:
            yield held

    def _faulty(self, message: BookUpdate | BookSnapshot) -> list[RawBookRecord]:
        if isinstance(message, BookSnapshot):
            return [raw_record(message)]
        fault = self._draw()
        if fault is not None:
            self.injected[fault] += 1
        if fault == "drop":
            return []
        if fault == "repeat":
            return [raw_record(message), raw_record(message, fault)]
        if fault == "corrupt":
            return [raw_record(_corrupted(message), fault)]
        if fault == "garble":
            good = raw_record(message)
            return [
                RawBookRecord(
                    good.key, good.value[: len(good.value) // 2], good.headers, message, fault
                )
            ]
        return [raw_record(message, fault)]

    def _draw(self) -> str | None:
        draw = self._random.random()
        for kind, rate in self.rates.items():
            if draw < rate:
                return kind
            draw -= rate
        return None


def _corrupted(update: BookUpdate) -> BookUpdate:
    """``update`` with its first level's size changed (its checksum kept). Changes are listed
    best first, so that level is among the book's top ones after the update - or, a level
    removed above the new best, comes back as the best: the book after it differs there."""
    first, *rest = update.changes
    size = first.size + 1000 if first.size + 1000 <= MAX_LEVEL_SIZE else 1
    return update.model_copy(update={"changes": [first.model_copy(update={"size": size}), *rest]})


def raw_book_records(
    messages: Iterable[BookUpdate | BookSnapshot], injector: BookFaultInjector | None = None
) -> Iterable[RawBookRecord]:
    """The raw records of ``messages``: as they are, or through ``injector``."""
    if injector is None:
        return (raw_record(message) for message in messages)
    return injector.records(messages)
