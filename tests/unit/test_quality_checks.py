"""The quality rules, one by one, on hand-made messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from orderbook_kit.market.checks import QualityChecker, Verdict
from orderbook_kit.market.reasons import Reason

START = datetime(2026, 1, 1, tzinfo=UTC)


def message(
    seq: int, symbol: str = "TTF-GAS", seconds: float | None = None, **fields: object
) -> bytes:
    body = {
        "symbol": symbol,
        "seq": seq,
        "bid": 35.0,
        "ask": 35.01,
        "bid_size": 10.0,
        "ask_size": 12.0,
        "event_time": (START + timedelta(seconds=seq if seconds is None else seconds)).isoformat(),
    }
    return json.dumps(body | fields).encode()


def check(checker: QualityChecker, value: bytes | None, key: str = "TTF-GAS") -> Verdict:
    """Messages are keyed by their symbol, as the kit's producers key them."""
    return checker.check(key, value)


def reasons(checker: QualityChecker, *values: bytes) -> list[Reason | None]:
    return [checker.check(symbol_of(value), value).reason for value in values]


def symbol_of(value: bytes | None) -> str:
    try:
        return str(json.loads(value or b"")["symbol"])
    except (ValueError, KeyError, TypeError):
        return "TTF-GAS"


def test_clean_ticks_pass_and_carry_the_tick() -> None:
    checker = QualityChecker()
    verdicts = [check(checker, message(seq)) for seq in range(5)]
    assert all(v.accepted and v.tick is not None for v in verdicts)
    assert [v.tick.seq for v in verdicts if v.tick] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("value", "reason", "detail"),
    [
        (b'{"symbol": "TTF', Reason.NOT_JSON, "Invalid JSON: EOF while parsing a string at line 1"),
        (None, Reason.NOT_JSON, "empty message (null value)"),
        (message(1, venue="X"), Reason.INVALID_SCHEMA, "venue: Extra inputs are not permitted"),
        (message(1, bid=35.02), Reason.CROSSED_BOOK, "crossed book: bid 35.02 is above ask 35.01"),
        (message(1, ask=35.0), Reason.LOCKED_BOOK, "locked book: bid equals ask (35.0)"),
        (message(1, bid=0), Reason.NON_POSITIVE_PRICE, "bid: Input should be greater than 0"),
        (message(1, ask_size=-1), Reason.NON_POSITIVE_SIZE, "ask_size: Input should be greater"),
        (message(0), Reason.DUPLICATE, "seq 0 was already seen"),
        (message(3), Reason.SEQ_GAP, "seq 1 to 2 missing before seq 3"),
        (message(2), Reason.SEQ_GAP, "seq 1 missing before seq 2"),
        (message(1, seconds=-0.5), Reason.TIME_BACKWARDS, "is 0.500 s before the last accepted"),
        (message(1, bid=40.0, ask=40.01), Reason.PRICE_JUMP, "mid moved +14.3% (from 35.005 to"),
    ],
)
def test_each_rule_names_its_reason(value: bytes | None, reason: Reason, detail: str) -> None:
    checker = QualityChecker()
    assert check(checker, message(0)).accepted
    verdict = check(checker, value)
    assert verdict.reason is reason
    assert detail in verdict.detail


def test_older_seq_is_out_of_order() -> None:
    checker = QualityChecker()
    verdicts = reasons(checker, message(0), message(1), message(2), message(0))
    assert verdicts == [None, None, None, Reason.OUT_OF_ORDER]
    assert check(checker, message(1)).detail == "seq 1 arrived after seq 2"


def test_after_a_gap_the_sequence_resynchronises() -> None:
    checker = QualityChecker()
    verdicts = reasons(checker, message(0), message(5), message(6), message(7))
    assert verdicts == [None, Reason.SEQ_GAP, None, None]


def test_a_bad_tick_with_a_readable_seq_does_not_make_a_gap() -> None:
    checker = QualityChecker()
    crossed = message(1, bid=36.0)
    assert reasons(checker, message(0), crossed, message(2)) == [None, Reason.CROSSED_BOOK, None]
    # A message whose seq cannot be read cannot move the sequence: the next one shows the gap.
    assert reasons(checker, b"garbage", message(4)) == [Reason.NOT_JSON, Reason.SEQ_GAP]


def test_rejected_prices_and_times_do_not_become_the_reference() -> None:
    checker = QualityChecker()
    spike = message(1, bid=50.0, ask=50.01)
    past = message(2, seconds=-10)
    verdicts = reasons(checker, message(0), spike, past, message(3))
    assert verdicts == [None, Reason.PRICE_JUMP, Reason.TIME_BACKWARDS, None]


def test_the_limit_is_configurable_and_checked() -> None:
    checker = QualityChecker(price_jump_limit=0.2)
    assert reasons(checker, message(0), message(1, bid=40.0, ask=40.01)) == [None, None]
    with pytest.raises(ValueError, match=r"price_jump_limit must be > 0 \(e.g. 0.05 for 5%\)"):
        QualityChecker(price_jump_limit=0)


def test_symbols_are_checked_independently() -> None:
    checker = QualityChecker()
    values = [
        message(0),
        message(0, "NBP-GAS", bid=85.0, ask=85.01),
        message(1),
        message(1, "NBP-GAS", bid=85.0, ask=85.01),
    ]
    assert reasons(checker, *values) == [None, None, None, None]


def test_equal_event_times_are_not_backwards() -> None:
    checker = QualityChecker()
    assert reasons(checker, message(0, seconds=1), message(1, seconds=1)) == [None, None]


def test_a_new_price_level_is_accepted_once_confirmed() -> None:
    checker = QualityChecker()
    moved = [message(seq, bid=40.0 + seq / 100, ask=40.01 + seq / 100) for seq in range(1, 5)]
    verdicts = reasons(checker, message(0), *moved)
    assert verdicts == [None, Reason.PRICE_JUMP, Reason.PRICE_JUMP, None, None]


def test_jumps_to_different_levels_do_not_confirm_each_other() -> None:
    checker = QualityChecker()
    up, down = {"bid": 40.0, "ask": 40.01}, {"bid": 30.0, "ask": 30.01}
    values = [message(0), message(1, **up), message(2, **down), message(3, **up), message(4)]
    verdicts = reasons(checker, *values)
    assert verdicts == [None, Reason.PRICE_JUMP, Reason.PRICE_JUMP, Reason.PRICE_JUMP, None]
