"""The book service's judgement without Kafka: the exchange's feed with every kind of fault goes
through :func:`judge_book_message` as the raw topic would deliver it. Nothing wrong is ever
accepted, every fault is named, and after the exchange's next snapshot the book is the true one.
Hostile bytes of any kind are set aside with a reason, never raised."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderbook_kit.errors import BookOutOfSyncError
from orderbook_kit.market.book_decoding import (
    BookRejection,
    decode_book_message,
    kind_headers,
)
from orderbook_kit.market.book_faults import BOOK_FAULT_KINDS, BookFaultInjector
from orderbook_kit.market.book_keeper import SymbolBook, judge_book_message
from orderbook_kit.market.book_messages import BookSnapshot, BookUpdate
from orderbook_kit.market.depth_simulator import DepthSimulator
from orderbook_kit.market.order_book import OrderBook
from orderbook_kit.market.reasons import BookReason

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SYMBOLS = ["TTF-GAS", "EUA-CO2"]
FAULTY_TICKS = 300
CLEAN_TICKS = 120  # past every symbol's next exchange snapshot (one every 40 updates)


def run_feed(
    seed: int, rates: dict[str, float], ticks: int = FAULTY_TICKS
) -> tuple[
    DepthSimulator, dict[str, SymbolBook], list[BookUpdate], list[tuple[str | None, BookReason]]
]:
    """The faulty feed, then a clean one to past every symbol's next exchange snapshot, through
    the keeper: (the simulator, the keeper's books, what it accepted, (fault, reason) of what
    it set aside)."""
    simulator = DepthSimulator(SYMBOLS, seed=seed, updates_per_tick=2)
    injector = BookFaultInjector(rates, seed=seed)
    records = list(injector.records(simulator.exchange_feed(ticks, snapshot_every=40)))
    records += list(
        BookFaultInjector({}).records(simulator.exchange_feed(CLEAN_TICKS, snapshot_every=40))
    )
    books: dict[str, SymbolBook] = {}
    accepted, rejected = [], []
    for record in records:
        verdict = judge_book_message(
            books, decode_book_message(record.headers, record.key, record.value)
        )
        if verdict.accepted:
            assert isinstance(verdict.message, BookUpdate)
            accepted.append(verdict.message)
        elif verdict.reason is not None:
            rejected.append((record.fault, verdict.reason))
    return simulator, books, accepted, rejected


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    rates=st.fixed_dictionaries(
        {kind: st.sampled_from([0.0, 0.01, 0.05]) for kind in BOOK_FAULT_KINDS}
    ),
)
def test_nothing_wrong_is_accepted_and_the_next_snapshot_restores_the_true_book(
    seed: int, rates: dict[str, float]
) -> None:
    simulator, books, accepted, rejected = run_feed(seed, rates)
    truth: dict[str, OrderBook] = {}
    replay = DepthSimulator(SYMBOLS, seed=seed, updates_per_tick=2)
    true_updates = {(u.symbol, u.seq): u for u in replay.updates(FAULTY_TICKS + CLEAN_TICKS)}
    last: dict[str, int] = {}
    for update in accepted:  # only true updates, each once, in rising seq order
        true = true_updates[update.symbol, update.seq]
        assert (update.changes, update.checksum) == (true.changes, true.checksum)
        assert update.seq > last.get(update.symbol, 0)
        last[update.symbol] = update.seq
    for symbol in SYMBOLS:
        truth[symbol] = simulator.books[symbol]
        assert books[symbol].book == truth[symbol], books[symbol]
    for fault, reason in rejected:
        if fault == "garble":
            assert reason is BookReason.NOT_JSON
        elif fault is None:  # a good update the book could not take: after a fault
            assert reason in {BookReason.SEQ_GAP, BookReason.OUT_OF_SYNC}


def test_each_kind_of_fault_is_named() -> None:
    _, _, _, rejected = run_feed(3, dict.fromkeys(BOOK_FAULT_KINDS, 0.02), ticks=1500)
    reasons = {reason for _, reason in rejected}
    assert {
        BookReason.NOT_JSON,
        BookReason.DUPLICATE,
        BookReason.SEQ_GAP,
        BookReason.CHECKSUM_MISMATCH,
        BookReason.OUT_OF_SYNC,
    } <= reasons
    assert {reason for fault, reason in rejected if fault == "repeat"} <= {
        BookReason.DUPLICATE,
        BookReason.OUT_OF_SYNC,
    }


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), ticks=st.integers(1, 80))
def test_a_corrupted_update_never_passes_for_a_true_one(seed: int, ticks: int) -> None:
    simulator = DepthSimulator("TTF-GAS", seed=seed, updates_per_tick=3)
    book = OrderBook("TTF-GAS", 0.001)
    corrupter = BookFaultInjector({"corrupt": 1.0})
    for update in simulator.updates(ticks):
        (spoiled,) = corrupter.records([update])
        trial = OrderBook.from_snapshot(book.snapshot(START))
        with pytest.raises(BookOutOfSyncError):
            trial.apply(BookUpdate.from_json(spoiled.value))
            trial.verify(update)
        book.apply(update)


def test_a_snapshot_at_the_books_seq_that_differs_replaces_the_book() -> None:
    simulator = DepthSimulator("TTF-GAS", seed=1, updates_per_tick=1)
    books: dict[str, SymbolBook] = {}
    for update in simulator.updates(20):
        judge_book_message(books, update)
    true = simulator.books["TTF-GAS"]
    wrong = books["TTF-GAS"].book
    assert wrong is not None
    price = max(wrong.bids) - 50  # a deep bid the checksum's top levels do not see
    wrong.bids[price] = 5
    wrong._bid_prices.insert(0, price)
    verdict = judge_book_message(books, true.snapshot(START))
    assert verdict.resynced and books["TTF-GAS"].snapshot_differed == 1
    assert books["TTF-GAS"].book == true


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from([b"update", b"snapshot", b"", b"UPDATE", None]),
    key=st.one_of(st.none(), st.binary(max_size=20), st.just(b"TTF-GAS")),
    value=st.one_of(
        st.none(),
        st.binary(max_size=400),
        st.sampled_from(
            [
                b"{}",
                b"[]",
                b"null",
                b"[" * 5000,
                b'{"symbol":"TTF-GAS","seq":1,"changes":[],"checksum":0,"event_time":"0001-01-01T00:00:00Z"}',
                b'{"symbol":"TTF-GAS","seq":9223372036854775807,"changes":[{"side":"bid","price":1e308,"size":1}],"checksum":4294967295,"event_time":"9999-12-31T23:59:59Z"}',
            ]
        ),
    ),
)
def test_hostile_records_are_set_aside_with_a_reason_never_raised(
    kind: bytes | None, key: bytes | None, value: bytes | None
) -> None:
    headers = [] if kind is None else [("kind", kind)]
    decoded = decode_book_message(headers, key, value)
    books: dict[str, SymbolBook] = {}
    verdict = judge_book_message(books, decoded)
    if isinstance(decoded, BookRejection):
        assert verdict.reason is decoded.reason and decoded.detail
        assert len(decoded.detail) <= 600


def test_the_kind_header_labels_each_message() -> None:
    simulator = DepthSimulator("TTF-GAS", seed=4)
    update = next(iter(simulator.updates(1)))
    snapshot = simulator.books["TTF-GAS"].snapshot(START)
    for message in (update, snapshot):
        decoded = decode_book_message(kind_headers(message), b"TTF-GAS", message.to_json())
        assert decoded == message
    # Labelled as the other kind, each is refused for its fields.
    assert isinstance(
        decode_book_message(kind_headers(snapshot), b"TTF-GAS", update.to_json()), BookRejection
    )
    assert isinstance(
        decode_book_message(kind_headers(update), b"TTF-GAS", snapshot.to_json()), BookRejection
    )
    assert isinstance(snapshot, BookSnapshot)
