"""A local book kept in sync with updates and snapshots that arrive dropped, repeated, reordered,
spoiled, and in any order between the two streams: every fault is noticed, and once a snapshot
newer than the damage arrives, the book is the true book again."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from orderbook_kit.market.book_messages import BookSnapshot, BookUpdate
from orderbook_kit.market.book_sync import BookSync
from orderbook_kit.market.depth_simulator import DepthSimulator
from orderbook_kit.market.order_book import OrderBook

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
Message = BookUpdate | BookSnapshot


def feed(ticks: int, snapshot_every: int, seed: int = 11) -> tuple[list[Message], OrderBook]:
    """Updates in order, with a snapshot of the true book after every ``snapshot_every`` ticks
    and one at the end; and the true book."""
    simulator = DepthSimulator("TTF-GAS", seed=seed, updates_per_tick=3)
    true = simulator.books["TTF-GAS"]
    messages: list[Message] = [true.snapshot(START)]  # seq 0: the empty book
    for index, (_, updates) in enumerate(simulator.events(ticks, start_time=START), start=1):
        messages.extend(updates)
        if index % snapshot_every == 0:
            messages.append(true.snapshot(START, update_offset=true.seq - 1))
    messages.append(true.snapshot(START, update_offset=true.seq - 1))
    return messages, true


def spoiled(update: BookUpdate) -> BookUpdate:
    change = update.changes[0]
    changes = [change.model_copy(update={"size": change.size + 1}), *update.changes[1:]]
    return update.model_copy(update={"changes": changes})


def run(messages: list[Message]) -> BookSync:
    sync = BookSync("TTF-GAS")
    for message in messages:
        if isinstance(message, BookUpdate):
            sync.on_update(message)
        else:
            sync.on_snapshot(message)
    return sync


def updates_only_between(messages: list[Message]) -> list[int]:
    """Indexes of updates, leaving out the first and last few (snapshots cover the ends)."""
    indexes = [i for i, m in enumerate(messages) if isinstance(m, BookUpdate)]
    return indexes[5:-5]


def test_a_clean_feed_keeps_the_true_book_without_a_loss() -> None:
    messages, true = feed(200, snapshot_every=50)
    sync = run(messages)
    assert sync.book == true and not sync.lost and sync.snapshots_used == 1


def test_each_fault_is_noticed_and_the_next_snapshot_repairs_it() -> None:
    messages, true = feed(200, snapshot_every=1000)  # snapshots at the start and the end only
    at = updates_only_between(messages)[100]
    cases = {
        "gap": messages[:at] + messages[at + 1 :],  # dropped
        "gap ": [*messages[:at], messages[at + 1], messages[at], *messages[at + 2 :]],  # swapped
        "checksum": [*messages[:at], spoiled(messages[at]), *messages[at + 1 :]],  # type: ignore[arg-type]
    }
    for reason, faulty in cases.items():
        sync = run(faulty[:-1])  # up to the final snapshot: the book is lost
        assert sync.book is None and set(sync.lost) <= {reason.strip(), "crossed"}, reason
        sync.on_snapshot(faulty[-1])  # type: ignore[arg-type]
        assert sync.book == true, reason
    repeated = run([*messages[:at], messages[at], messages[at], *messages[at + 1 :]])
    assert repeated.book == true and not repeated.lost and repeated.repeats == 1


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), faults=st.integers(0, 8))
def test_whatever_the_faults_and_the_order_the_last_snapshot_gives_the_true_book(
    seed: int, faults: int
) -> None:
    messages, true = feed(120, snapshot_every=15, seed=seed % 50)
    rand = random.Random(seed)
    body, last = messages[:-1], messages[-1]
    for _ in range(faults):
        at = rand.randrange(1, len(body) - 1)
        kind = rand.choice(["drop", "repeat", "swap", "spoil"])
        if kind == "drop":
            del body[at]
        elif kind == "repeat":
            body.insert(rand.randrange(at, len(body)), body[at])
        elif kind == "swap":  # two messages of the two streams, or of one, out of order
            body[at], body[at + 1] = body[at + 1], body[at]
        elif isinstance(body[at], BookUpdate):
            body[at] = spoiled(body[at])  # type: ignore[arg-type]
    sync = run([*body, last])
    assert sync.book == true, sync
