"""One message never stops a service, through real Kafka and PostgreSQL.

- A tick in the last second of year 9999 (it once stopped the gate for good) is dead-lettered with
  its reason, and the ticks of its symbol after it stay clean.
- A rule that raises (a bug, made on purpose here) sets its message aside as ``internal_error``,
  counted in the gate's metrics; the gate goes on, and the symbol's next ticks are clean.
- Valid ticks whose every value sits at the end of its range (year 1 and 9999, the largest float
  and the smallest subnormal, the largest seq) are stored, archived and read back unchanged.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orderbook_kit.archive.queries import Archive
from orderbook_kit.archive.sink import ArchiveSink
from orderbook_kit.database.client import connect
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.kafka.reader import read_records, read_ticks
from orderbook_kit.market.checks import QualityChecker, Verdict
from orderbook_kit.market.reasons import Reason
from orderbook_kit.market.tick import MAX_SEQ, Tick
from orderbook_kit.quality.gate import HEADER_DETAIL, HEADER_REASON, QualityGate, header
from orderbook_kit.quality.metrics import GateMetrics
from orderbook_kit.settings.environment import Settings
from orderbook_kit.store.sink import StoreSink
from tests.conftest import produce_clean

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SYMBOL = "TTF-GAS"
POISON_BID = 13.0  # the broken rule below raises on exactly this bid


@pytest.fixture
def settings(pipeline_settings: Settings) -> Settings:
    return pipeline_settings


def live_tick(seq: int, bid: float = 30.0) -> Tick:
    now = datetime.now(UTC) - timedelta(seconds=1)
    return Tick(
        symbol=SYMBOL, seq=seq, bid=bid, ask=bid + 0.01, bid_size=5.0, ask_size=5.0, event_time=now
    )


def produce_raw(settings: Settings, ticks: list[Tick]) -> None:
    with TickProducer(settings, topic=settings.topics.raw) as producer:
        for tick in ticks:
            producer.send_raw(tick.symbol, tick.to_json())
        producer.flush()


def routed(settings: Settings) -> tuple[list[Tick], dict[int, tuple[str, str]]]:
    """The clean ticks, and each dead letter's (reason, detail) by the seq it carries."""
    clean = read_ticks(settings.topics.clean, settings=settings, timeout_s=30).frame
    dead = read_records(settings.topics.dead_letters, settings=settings, timeout_s=30).records
    letters = {
        Tick.from_json(record.value).seq: (
            header(record, HEADER_REASON) or "",
            header(record, HEADER_DETAIL) or "",
        )
        for record in dead
    }
    return clean["seq"].tolist(), letters


def test_the_last_second_of_9999_is_a_dead_letter_and_its_symbol_flows_on(
    settings: Settings,
) -> None:
    last = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    hostile = live_tick(3).model_copy(update={"event_time": last, "publish_time": last})
    produce_raw(settings, [live_tick(0), live_tick(1), live_tick(2), hostile])
    produce_raw(settings, [live_tick(seq) for seq in range(3, 8)])

    stats = QualityGate(settings).run(count=9, duration_s=60)

    assert stats.processed == 9
    clean, letters = routed(settings)
    assert clean == list(range(8))  # seq 3 came again, valid: accepted
    assert list(letters) == [3] and letters[3][0] == Reason.TIME_AHEAD


class _BrokenGate(QualityGate):
    """A gate whose checker has a bug: one of its rules raises on a bid of POISON_BID."""

    def _new_checker(self) -> QualityChecker:
        return _BrokenChecker(self.settings.gate.price_jump_limit)


class _BrokenChecker(QualityChecker):
    def _market_problem(self, tick: Tick, state: Any) -> Verdict | None:  # type: ignore[override]
        if tick.bid == POISON_BID:
            raise ArithmeticError("a rule's bug, made on purpose")
        return super()._market_problem(tick, state)


def test_a_rule_that_raises_dead_letters_its_message_and_the_gate_goes_on(
    settings: Settings,
) -> None:
    ticks = [live_tick(seq, 13.01) for seq in range(3)]
    ticks += [live_tick(3, POISON_BID)] + [live_tick(seq, 13.02) for seq in range(4, 10)]
    produce_raw(settings, ticks)
    metrics = GateMetrics()

    stats = _BrokenGate(settings, metrics=metrics).run(count=len(ticks), duration_s=60)

    assert stats.processed == len(ticks)
    assert stats.rejected == {Reason.INTERNAL_ERROR: 1}
    clean, letters = routed(settings)
    assert clean == [0, 1, 2, *range(4, 10)]  # the seq after it is not a gap
    reason, detail = letters[3]
    assert reason == Reason.INTERNAL_ERROR and "ArithmeticError" in detail
    counted = {
        sample.labels["reason"]: sample.value
        for family in metrics.registry.collect()
        if family.name == "orderbook_gate_messages"
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    assert counted[Reason.INTERNAL_ERROR] == 1 and counted[""] == 9


def edge_ticks() -> list[Tick]:
    """Valid ticks of one symbol, every value at an end of its range, in seq order."""
    biggest, tiniest = sys.float_info.max, 5e-324
    first, last = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    values = [
        (tiniest, 1e-323, tiniest, biggest, first, first),
        (1.0, biggest, biggest, tiniest, first, last),
        (biggest / 2, biggest, 1.0, 1.0, last, last),
        (tiniest, biggest, biggest, biggest, last, None),
    ]
    ticks = [
        Tick(
            symbol="EDGE.X",
            seq=seq,
            bid=bid,
            ask=ask,
            bid_size=bid_size,
            ask_size=ask_size,
            event_time=event,
            publish_time=published,
        )
        for seq, (bid, ask, bid_size, ask_size, event, published) in enumerate(values)
    ]
    return [*ticks, ticks[0].model_copy(update={"seq": MAX_SEQ})]


def test_ticks_at_the_ends_of_their_ranges_are_stored_archived_and_read_unchanged(
    settings: Settings,
) -> None:
    sent = edge_ticks()
    # As raw bytes: the producer's send() would stamp publish_time now, before year 9999's events.
    produce_clean(settings, [(t.symbol.encode(), t.to_json()) for t in sent])

    stored = StoreSink(settings).run(count=len(sent), duration_s=60)
    archived = ArchiveSink(settings).run(count=len(sent), duration_s=60)
    frame = read_ticks(settings.topics.clean, settings=settings, timeout_s=30).frame

    assert (stored.stored, stored.skipped_count) == (len(sent), 0)
    assert (archived.archived, archived.skipped_count) == (len(sent), 0)
    fields = ["seq", "bid", "ask", "bid_size", "ask_size", "event_time"]
    expected = [tuple(getattr(t, f) for f in fields) for t in sent]
    with connect(settings.store.database_url, timeout_s=10, schema=settings.store.schema) as conn:
        rows = conn.execute(f"SELECT {', '.join(fields)} FROM ticks ORDER BY seq").fetchall()
    assert [tuple(row) for row in rows] == expected
    with Archive(settings) as archive:
        cold = archive.query(f"SELECT {', '.join(fields)} FROM ticks ORDER BY seq")
    assert [tuple(row) for row in cold.itertuples(index=False)] == expected
    assert [tuple(row) for row in frame[fields].itertuples(index=False)] == expected
