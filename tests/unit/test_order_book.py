"""The order book without Kafka: its messages, the book kept from them, and the depth simulator.

What a reader of the update stream relies on: the simulator's books are the ticks' market (same
seed, same ticks; the best bid and ask after each tick's updates are the tick's), a book rebuilt
from the messages alone - from the start, or from a snapshot - equals the simulator's true book,
and every way of losing or spoiling an update is noticed (a gap, a checksum, a crossed book).
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from orderbook_kit.errors import BookOutOfSyncError
from orderbook_kit.market.book_messages import (
    CHECKSUM_LEVELS,
    MAX_CHANGES,
    MAX_LEVEL_SIZE,
    MAX_PRICE_TICKS,
    BookSnapshot,
    BookUpdate,
    book_checksum,
)
from orderbook_kit.market.depth_simulator import DepthSimulator
from orderbook_kit.market.order_book import OrderBook
from orderbook_kit.market.simulator import OrderbookSimulator

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SYMBOLS = ["TTF-GAS", "NBP-GAS"]


def wire(update: BookUpdate) -> BookUpdate:
    """What a reader gets: the update's JSON, validated again."""
    return BookUpdate.from_json(update.to_json())


def empty_books(simulator: DepthSimulator) -> dict[str, OrderBook]:
    return {s: OrderBook(s, book.tick_size) for s, book in simulator.books.items()}


def error_types(error: ValidationError) -> set[str]:
    return {e["type"] for e in error.errors()}


# --- the simulator is the ticks' market -----------------------------------------------------


def test_the_same_seed_gives_the_same_ticks_whatever_the_depth_activity() -> None:
    plain = list(OrderbookSimulator(SYMBOLS, seed=7).ticks(600, start_time=START))
    deep = DepthSimulator(SYMBOLS, seed=7, depth=12, updates_per_tick=4)
    assert [tick for tick, _ in deep.events(600, start_time=START)] == plain


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    depth=st.integers(1, 25),
    updates_per_tick=st.integers(0, 5),
)
def test_a_book_rebuilt_from_the_updates_alone_shows_every_tick_and_is_the_true_book(
    seed: int, depth: int, updates_per_tick: int
) -> None:
    simulator = DepthSimulator(SYMBOLS, seed=seed, depth=depth, updates_per_tick=updates_per_tick)
    rebuilt = empty_books(simulator)
    for tick, updates in simulator.events(300, start_time=START):
        book = rebuilt[tick.symbol]
        for update in updates:
            received = wire(update)
            book.apply(received)
            book.verify(received)  # the checksum of every update holds
            assert book.checksum() == book_checksum(*book.levels())  # as documented
        assert book.best_bid() == (tick.bid, tick.bid_size)
        assert book.best_ask() == (tick.ask, tick.ask_size)
        assert len(book.bids) == len(book.asks) == depth
    assert rebuilt == simulator.books


def test_a_book_started_from_a_snapshot_mid_stream_ends_as_the_true_book() -> None:
    simulator = DepthSimulator("TTF-GAS", seed=3, updates_per_tick=3)
    for _ in simulator.updates(200, start_time=START):
        pass
    true = simulator.books["TTF-GAS"]
    snapshot = BookSnapshot.from_json(true.snapshot(START).to_json())
    assert snapshot.seq == true.seq and len(snapshot.bids) == len(snapshot.asks) == 10
    book = OrderBook.from_snapshot(snapshot)
    later = START + timedelta(minutes=1)
    for update in simulator.updates(300, start_time=later):
        book.apply(wire(update))
        book.verify(update)
    assert book == true
    assert book.checksum() == true.checksum()


# --- what goes wrong is noticed ---------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 1000), data=st.data())
def test_a_dropped_update_is_a_gap(seed: int, data: st.DataObject) -> None:
    updates = list(DepthSimulator("TTF-GAS", seed=seed, updates_per_tick=1).updates(100))
    dropped = data.draw(st.integers(1, len(updates) - 2))
    book = OrderBook("TTF-GAS", 0.005)
    for update in updates[:dropped]:
        book.apply(update)
    with pytest.raises(BookOutOfSyncError) as caught:
        book.apply(updates[dropped + 1])
    assert caught.value.reason == "gap" and "1 update(s) missing" in str(caught.value)


def test_a_repeated_update_changes_nothing() -> None:
    updates = list(DepthSimulator("TTF-GAS", seed=1, updates_per_tick=2).updates(50))
    book = OrderBook("TTF-GAS", 0.005)
    for update in updates:
        book.apply(update)
    before = (book.seq, dict(book.bids), dict(book.asks))
    book.apply(updates[-3])  # an older one, delivered again
    assert (book.seq, book.bids, book.asks) == before


SPOILABLE = list(
    DepthSimulator("TTF-GAS", seed=5, updates_per_tick=2).updates(60, start_time=START)
)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_an_update_whose_sizes_were_altered_is_caught_in_the_checksummed_levels(
    data: st.DataObject,
) -> None:
    at = data.draw(st.integers(1, len(SPOILABLE) - 1))
    original = SPOILABLE[at]
    index = data.draw(st.integers(0, len(original.changes) - 1))
    change = original.changes[index]
    new_size = data.draw(st.integers(0, 10_000).filter(lambda s: s != change.size))
    changes = list(original.changes)
    changes[index] = change.model_copy(update={"size": new_size})
    spoiled = original.model_copy(update={"changes": changes})
    book, true = OrderBook("TTF-GAS", 0.005), OrderBook("TTF-GAS", 0.005)
    for update in SPOILABLE[:at]:
        book.apply(update)
        true.apply(update)
    true.apply(original)
    try:
        book.apply(spoiled)  # a removed level kept can cross the book ...
        book.verify(spoiled)  # ... else its checksum tells
    except BookOutOfSyncError as caught:
        assert caught.reason in {"crossed", "checksum"}
        return
    # Not caught: then the book differs only below the levels the checksum covers (a level
    # the update removed from the end of the book, kept) - as with any exchange's checksum.
    assert book != true and book.levels(CHECKSUM_LEVELS) == true.levels(CHECKSUM_LEVELS)


def test_a_crossed_book_after_an_update_is_out_of_sync() -> None:
    book = OrderBook("TTF-GAS", 0.005)
    first = BookUpdate.model_validate(
        {
            "symbol": "TTF-GAS",
            "seq": 1,
            "changes": [
                {"side": "bid", "price": 35.0, "size": 5},
                {"side": "ask", "price": 35.01, "size": 5},
            ],
            "checksum": 0,
            "event_time": START,
        }
    )
    book.apply(first)
    crossing = first.model_copy(
        update={"seq": 2, "changes": [first.changes[0].model_copy(update={"price": 35.02})]}
    )
    with pytest.raises(BookOutOfSyncError) as caught:
        book.apply(crossing)
    assert caught.value.reason == "crossed" and "35.02" in str(caught.value)


# --- the messages ---------------------------------------------------------------------------


def test_the_checksum_is_crc32_of_the_levels_as_documented() -> None:
    text = b"b7000:12,b6999:5,a7002:3"
    assert book_checksum([(7000, 12), (6999, 5)], [(7002, 3)]) == zlib.crc32(text)
    assert book_checksum([], []) == 0
    # Only the top levels count.
    deep = [(7000 - i, 1) for i in range(30)]
    assert book_checksum(deep, [], levels=10) == book_checksum(deep[:10], [], levels=10)


def update(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "symbol": "TTF-GAS",
        "seq": 1,
        "changes": [
            {"side": "bid", "price": 35.0, "size": 5},
            {"side": "ask", "price": 35.01, "size": 0},
        ],
        "checksum": 1,
        "event_time": "2026-01-05T09:00:00Z",
    }
    return {**base, **fields}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {
                "changes": [
                    {"side": "ask", "price": 35.01, "size": 1},
                    {"side": "bid", "price": 35.0, "size": 1},
                ]
            },
            "unsorted_levels",
        ),
        (
            {
                "changes": [
                    {"side": "bid", "price": 34.0, "size": 1},
                    {"side": "bid", "price": 35.0, "size": 1},
                ]
            },
            "unsorted_levels",
        ),
        (
            {
                "changes": [
                    {"side": "bid", "price": 35.0, "size": 1},
                    {"side": "bid", "price": 35.0, "size": 2},
                ]
            },
            "duplicate_level",
        ),
        ({"changes": [{"side": "bid", "price": 35.001, "size": 1}]}, "off_grid"),
        ({"changes": [{"side": "bid", "price": 35.0, "size": -1}]}, "greater_than_equal"),
        (
            {"changes": [{"side": "bid", "price": 35.0, "size": MAX_LEVEL_SIZE + 1}]},
            "less_than_equal",
        ),
        ({"changes": [{"side": "bid", "price": 35.0, "size": 1.5}]}, "int_type"),
        ({"changes": [{"side": "bid", "price": 35.0, "size": True}]}, "int_type"),
        ({"changes": [{"side": "middle", "price": 35.0, "size": 1}]}, "literal_error"),
        ({"changes": []}, "too_short"),
        (
            {
                "changes": [
                    {"side": "bid", "price": 35.0 - i * 0.005, "size": 1}
                    for i in range(MAX_CHANGES + 1)
                ]
            },
            "too_long",
        ),
        ({"seq": 0}, "greater_than_equal"),
        ({"checksum": 2**32}, "less_than_equal"),
        ({"event_time": "2026-01-05T09:00:00"}, "timezone_aware"),
        ({"event_time": "9999-12-31T23:00:00-05:00"}, "value_error"),  # past 9999 in UTC
    ],
)
def test_a_malformed_update_is_refused_naming_why(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        BookUpdate.model_validate_json(json.dumps(update(**fields)))
    assert reason in error_types(caught.value)


def snapshot(**fields: object) -> dict[str, object]:
    bids, asks = [(7000, 3), (6999, 4)], [(7002, 5)]
    base: dict[str, object] = {
        "symbol": "TTF-GAS",
        "seq": 9,
        "tick_size": 0.005,
        "bids": [[p * 0.005, s] for p, s in bids],
        "asks": [[p * 0.005, s] for p, s in asks],
        "checksum": book_checksum(bids, asks),
        "event_time": "2026-01-05T09:00:00Z",
        "update_partition": 0,
        "update_offset": 41,
    }
    return {**base, **fields}


def test_a_snapshot_reads_back_as_the_book_it_describes() -> None:
    snap = BookSnapshot.model_validate_json(json.dumps(snapshot()))
    book = OrderBook.from_snapshot(snap)
    assert book.best_bid() == (35.0, 3) and book.best_ask() == (35.01, 5)
    assert book.checksum() == snap.checksum
    assert (
        BookSnapshot.from_json(book.snapshot(START, update_offset=41).to_json()).bids == snap.bids
    )


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"bids": [[34.995, 4], [35.0, 3]]}, "unsorted_levels"),
        ({"asks": [[35.01, 5], [35.01, 6]]}, "duplicate_level"),
        ({"asks": [[34.995, 5]]}, "crossed_book"),
        ({"asks": [[35.0, 5]]}, "crossed_book"),
        ({"checksum": 12345}, "checksum_mismatch"),
        ({"bids": [[35.0, 0]]}, "greater_than_equal"),
        ({"asks": [[35.0123, 5]]}, "off_grid"),
        ({"tick_size": 0.0}, "greater_than"),
        ({"update_offset": -2}, "greater_than_equal"),
    ],
)
def test_a_malformed_snapshot_is_refused_naming_why(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        BookSnapshot.model_validate_json(json.dumps(snapshot(**fields)))
    assert reason in error_types(caught.value)


ON_THE_GRID = st.integers(1, MAX_PRICE_TICKS + 10).map(lambda ticks: round(ticks * 0.005, 3))


@settings(max_examples=300)
@given(
    price=st.one_of(st.floats(allow_nan=True, allow_infinity=True), ON_THE_GRID),
    size=st.one_of(st.integers(), st.integers(0, 1000)),
)
def test_any_price_and_size_are_taken_or_refused_never_a_crash(price: float, size: int) -> None:
    data = json.dumps(update(changes=[{"side": "bid", "price": price, "size": size}]))
    try:
        parsed = BookUpdate.model_validate_json(data)
    except ValidationError as refused:
        assert error_types(refused) <= {
            "off_grid",
            "greater_than",
            "finite_number",
            "greater_than_equal",
            "less_than_equal",
        }
        return
    assert 0 < parsed.changes[0].price < float("inf") and 0 <= size <= MAX_LEVEL_SIZE
    book = OrderBook("TTF-GAS", 0.005)
    book.apply(parsed)  # on the grid, in bounds: the book takes it
    assert book.best_bid() == (None if size == 0 else (parsed.changes[0].price, size))


def test_the_book_as_a_frame_and_its_imbalance() -> None:
    book = OrderBook.from_snapshot(BookSnapshot.model_validate_json(json.dumps(snapshot())))
    frame = book.to_frame()
    assert list(frame["side"]) == ["bid", "bid", "ask"]
    assert list(frame["cumulative"]) == [3, 7, 5]  # outwards from the best level
    assert book.imbalance() == pytest.approx((7 - 5) / 12)
    assert OrderBook("TTF-GAS", 0.005).imbalance() == 0.0
