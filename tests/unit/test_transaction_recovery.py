"""What the exactly-once keeper does after a batch's transaction failed: read the batch again
from the committed offsets - unless they show the transaction committed after all (a commit the
broker had begun, finished when the producer was replaced), when the batch counts as it is.

The consumer here is a record of what was asked of it: the decision is the keeper's alone."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st
from kafka import TopicPartition

from orderbook_kit.kafka.transactions import TransactionAbortedError
from orderbook_kit.runtime.group_loop import KafkaTransactions

TOPIC = "orderbook.raw"


@dataclass
class Consumer:
    """Assigned partitions and their committed offsets; what was sought."""

    committed_offsets: dict[TopicPartition, int | None]
    sought: dict[TopicPartition, int | str] = field(default_factory=dict)

    def assignment(self) -> set[TopicPartition]:
        return set(self.committed_offsets)

    def committed(self, tp: TopicPartition, timeout_ms: int | None = None) -> int | None:
        return self.committed_offsets[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought[tp] = offset

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.sought[tp] = "beginning"

    def group_metadata(self) -> object:
        return object()


@dataclass
class Keeper:
    forgotten: list[set[TopicPartition]] = field(default_factory=list)
    rejoined: int = 0

    def transactions(self) -> KafkaTransactions:
        return KafkaTransactions(
            writer=self._no_writer, on_abort=self.forgotten.append, rejoin=self._rejoin
        )

    def _no_writer(self) -> object:
        raise AssertionError("recover() never asks for the writer")

    def _rejoin(self) -> None:
        self.rejoined += 1


partitions = st.lists(st.integers(0, 5), min_size=1, max_size=6, unique=True)


@given(
    partitions.flatmap(
        lambda ps: st.tuples(
            st.just(ps),
            st.lists(
                st.one_of(st.none(), st.integers(0, 1000)), min_size=len(ps), max_size=len(ps)
            ),
            st.lists(st.integers(1, 1000), min_size=1, max_size=len(ps)),
        )
    )
)
def test_a_failed_commit_counts_only_if_the_committed_offsets_reached_the_batch(
    case: tuple[list[int], list[int | None], list[int]],
) -> None:
    numbers, committed, batch_ends = case
    assigned = [TopicPartition(TOPIC, p) for p in numbers]
    consumer = Consumer(dict(zip(assigned, committed, strict=True)))
    batch = dict(zip(assigned, batch_ends, strict=False))  # the batch: some of the partitions
    keeper = Keeper()
    failed = TransactionAbortedError("its commit not answered")
    keeper.transactions().recover(consumer, failed, batch)  # type: ignore[arg-type]
    reached = all((consumer.committed_offsets[tp] or 0) >= end for tp, end in batch.items())
    if reached:  # it committed after all: nothing is read again, nothing forgotten
        assert consumer.sought == {} and keeper.forgotten == []
    else:  # every partition back to its committed offset, the batch forgotten
        assert consumer.sought == {
            tp: "beginning" if offset is None else offset
            for tp, offset in consumer.committed_offsets.items()
        }
        assert keeper.forgotten == [set(assigned)]
    assert keeper.rejoined == 0


def test_a_transaction_lost_while_written_is_always_read_again() -> None:
    # No offsets: it failed before its commit, so nothing of it can have committed.
    tp = TopicPartition(TOPIC, 0)
    consumer, keeper = Consumer({tp: 40}), Keeper()
    keeper.transactions().recover(consumer, TransactionAbortedError("epoch bumped"))  # type: ignore[arg-type]
    assert consumer.sought == {tp: 40} and keeper.forgotten == [{tp}]


def test_a_member_the_group_moved_on_from_joins_again_without_seeking() -> None:
    tp = TopicPartition(TOPIC, 1)
    consumer, keeper = Consumer({tp: 7}), Keeper()
    lost = TransactionAbortedError("unknown member", member_lost=True)
    keeper.transactions().recover(consumer, lost, {tp: 9})  # type: ignore[arg-type]
    assert consumer.sought == {} and keeper.forgotten == [{tp}] and keeper.rejoined == 1
