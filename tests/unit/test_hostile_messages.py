"""Hostile input against the quality rules: one bad message never stalls, crashes or poisons them.

Every case of ``tests/hostile.py`` must get its own reason, a bounded detail, and leave the gate's
memory as it was: the good ticks after it (including one with the very seq it claimed) stay clean.
"""

from __future__ import annotations

import pytest

from orderbook_kit.market.checks import QualityChecker
from orderbook_kit.market.decoding import MAX_DETAIL_CHARS, MAX_MESSAGE_BYTES, decode_message
from orderbook_kit.market.reasons import Reason
from orderbook_kit.market.tick import Tick
from tests.hostile import SYMBOL, Hostile, body, encoded, good_tick, hostile_cases

CASES = hostile_cases(next_seq=3)


def feed_good(checker: QualityChecker, seqs: range) -> list[Reason | None]:
    return [checker.check(SYMBOL, good_tick(seq).to_json()).reason for seq in seqs]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_hostile_message_gets_its_reason_and_changes_nothing(case: Hostile) -> None:
    checker = QualityChecker()
    assert feed_good(checker, range(3)) == [None] * 3
    verdict = checker.check(case.key, case.value)
    assert verdict.reason is case.reason, verdict.detail
    assert 0 < len(verdict.detail) <= MAX_DETAIL_CHARS
    # The good stream goes on, from the seq the hostile message claimed, all clean.
    assert feed_good(checker, range(3, 10)) == [None] * 7
    assert checker.tracked_symbols == 1


def test_the_whole_table_interleaved_with_a_good_stream() -> None:
    checker = QualityChecker()
    verdicts = []
    for seq in range(40):
        assert checker.check(SYMBOL, good_tick(seq).to_json()).accepted, seq
        for case in hostile_cases(next_seq=seq + 1):
            verdicts.append((case.name, checker.check(case.key, case.value).reason, case.reason))
    assert [(name, got) for name, got, expected in verdicts if got is not expected] == []


def test_the_first_message_of_a_symbol_cannot_claim_it_from_another_key() -> None:
    # The case: keyed NBP-GAS, the body TTF-GAS seq 3; then the real TTF-GAS ticks.
    checker = QualityChecker()
    assert checker.check("NBP-GAS", good_tick(3).to_json()).reason is Reason.KEY_MISMATCH
    assert feed_good(checker, range(4)) == [None] * 4


def test_an_outlier_seq_needs_a_following_tick_to_become_the_reference() -> None:
    checker = QualityChecker()
    feed_good(checker, range(3))
    assert checker.check(SYMBOL, encoded(body(3, seq=2**62))).reason is Reason.SEQ_GAP
    assert feed_good(checker, range(3, 6)) == [None] * 3
    # A real gap, confirmed by the tick after it, still resynchronises.
    assert feed_good(checker, range(10, 13)) == [Reason.SEQ_GAP, None, None]
    assert feed_good(checker, range(6, 8)) == [Reason.OUT_OF_ORDER] * 2


def test_a_rejected_message_explains_its_seq_without_claiming_it() -> None:
    checker = QualityChecker()
    feed_good(checker, range(3))
    crossed = encoded(body(3, bid=40.0, ask=39.0))
    assert checker.check(SYMBOL, crossed).reason is Reason.CROSSED_BOOK
    # seq 3 is accounted for, so 4 is no gap; and if the real seq 3 comes after all, it is clean.
    assert feed_good(checker, [3, 4]) == [None, None]  # type: ignore[arg-type]
    checker = QualityChecker()
    feed_good(checker, range(3))
    checker.check(SYMBOL, crossed)
    assert feed_good(checker, [4]) == [None]  # type: ignore[arg-type]


def test_memory_is_kept_only_for_accepted_symbols() -> None:
    checker = QualityChecker()
    feed_good(checker, range(2))
    for index in range(20_000):
        invalid = encoded(body(2, symbol=f"S{index}", bid=0))
        assert checker.check(f"S{index}", invalid).reason is Reason.NON_POSITIVE_PRICE
    assert checker.tracked_symbols == 1


def test_memory_is_bounded_even_for_valid_symbols() -> None:
    checker = QualityChecker(max_symbols=100)
    for index in range(1_000):
        assert checker.check(f"S{index}", good_tick(0, symbol=f"S{index}").to_json()).accepted
    assert checker.tracked_symbols == 100
    # The least recently seen were forgotten: their next tick is a first tick again.
    assert checker.check("S0", good_tick(7, symbol="S0").to_json()).accepted
    assert checker.check("S999", good_tick(7, symbol="S999").to_json()).reason is Reason.SEQ_GAP


def test_a_dead_letter_detail_lists_the_first_errors_and_counts_the_rest() -> None:
    many = encoded(body(3) | {f"k{i}": 0 for i in range(1_500)})
    assert len(many) < MAX_MESSAGE_BYTES
    failure = decode_message(SYMBOL, many)
    assert not isinstance(failure, Tick)
    assert failure.detail.startswith("k0: Extra inputs are not permitted; k1: Extra inputs")
    assert failure.detail.endswith("and 1,497 more error(s)")
    huge_name = encoded(body(3) | {"x" * 15_000: 0})
    failure = decode_message(SYMBOL, huge_name)
    assert not isinstance(failure, Tick) and len(failure.detail) < 200


def test_strict_types_nothing_converted() -> None:
    as_strings = encoded(body(0, seq="0", bid="35.0", bid_size="10"))
    failure = decode_message(SYMBOL, as_strings)
    assert not isinstance(failure, Tick)
    assert failure.reason is Reason.INVALID_SCHEMA
    assert "seq: Input should be a valid integer" in failure.detail
    # A JSON integer is still a valid price: 35 is 35.0.
    assert isinstance(decode_message(SYMBOL, encoded(body(0, bid=35, ask=36))), Tick)


def test_detail_of_a_too_large_message_gives_its_size() -> None:
    value = b" " * (MAX_MESSAGE_BYTES + 1)
    failure = decode_message(SYMBOL, value)
    assert not isinstance(failure, Tick) and failure.reason is Reason.TOO_LARGE
    assert failure.detail.startswith("16,385 bytes; a tick is at most 16,384 bytes")
