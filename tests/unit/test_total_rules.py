"""No message can crash a reader: every decode and every check answers, for any value of any field.

Hypothesis builds messages from the values an attacker (or a broken feed) would pick for each of a
tick's fields - the ends of the datetime range in any time zone, floats at their limits (largest,
smallest subnormal, infinities, NaN), integers far beyond 64 bits, wrong types, odd encodings - and
feeds them, in sequences mixed with valid ticks at the ends of their ranges, to the shared decoder
and to the quality gate's checker, whose clock may itself sit at year 1 or 9999.

Each message must get a verdict with a reason from the rules (never ``internal_error``, which is
only the second line of defence, tested at the end) and a bounded detail; no exception escapes.
"""

from __future__ import annotations

import json
import math
import os
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderbook_kit.market.checks import QualityChecker, Verdict
from orderbook_kit.market.decoding import MAX_DETAIL_CHARS, DecodeFailure, decode_message
from orderbook_kit.market.reasons import Reason
from orderbook_kit.market.tick import MAX_SEQ, SYMBOL_PATTERN, Tick

SYMBOL = "TTF-GAS"
FIELDS = ("symbol", "seq", "bid", "ask", "bid_size", "ask_size", "event_time", "publish_time")

# Offsets as far as datetime allows (±23:59), so converting to UTC can cross year 1 or 9999.
zones = st.one_of(
    st.just(UTC),
    st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m))),
)
edge_times = st.sampled_from(
    [
        datetime.min.replace(tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1, 1, 1, 0, 0, 1, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
    ]
)
aware_times = st.one_of(edge_times, st.datetimes(timezones=zones))
time_texts = st.one_of(
    aware_times.map(datetime.isoformat),
    st.datetimes().map(datetime.isoformat),  # no zone
    st.sampled_from(
        [
            "9999-12-31T23:59:59.999999Z",
            "0001-01-01T00:00:00+23:59",  # before year 1 in UTC
            "9999-12-31T23:59:59-23:59",  # after year 9999 in UTC
            "10000-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "",
            "now",
        ]
    ),
    st.integers(-(2**70), 2**70),  # a number where a time should be
    st.floats(),
)
edge_floats = st.sampled_from(
    [
        sys.float_info.max,
        -sys.float_info.max,
        sys.float_info.min,  # smallest normal
        5e-324,  # smallest subnormal
        math.nextafter(sys.float_info.max, 0),
        0.0,
        -0.0,
        math.inf,
        -math.inf,
        math.nan,
    ]
)
numbers = st.one_of(edge_floats, st.floats(), st.integers(-(2**1100), 2**1100))
huge_ints = st.one_of(
    st.integers(),
    st.sampled_from([MAX_SEQ, MAX_SEQ + 1, -1, 2**64, -(2**63), 10**400]),
)
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
symbols = st.one_of(st.just(SYMBOL), st.from_regex(SYMBOL_PATTERN, fullmatch=True), st.text())


def field_values(name: str) -> st.SearchStrategy[Any]:
    if name == "symbol":
        return st.one_of(symbols, odd_values)
    if name == "seq":
        return st.one_of(huge_ints, numbers, odd_values)
    if name.endswith("time"):
        return st.one_of(time_texts, odd_values)
    return st.one_of(numbers, odd_values)


@st.composite
def hostile_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A dict of a tick's fields, each missing, odd or at an edge, sometimes with an extra one."""
    body: dict[str, Any] = {}
    for name in FIELDS:
        if draw(st.integers(0, 9)) > 0:  # a field is missing one time in ten
            body[name] = draw(field_values(name))
    if draw(st.booleans()):
        body[draw(st.text(max_size=10))] = draw(odd_values)
    return body


def encode(body: object, style: str) -> bytes:
    """``body`` as JSON bytes, as a careful or a careless producer would write it."""
    text = json.dumps(body, default=str, allow_nan=True)  # NaN/Infinity: not JSON, but sent
    if style == "utf-16":
        return text.encode("utf-16")
    if style == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    if style == "latin-1":
        return text.encode("latin-1", errors="replace")
    if style == "surrogates":  # a lone surrogate, which UTF-8 cannot carry
        return text.encode() + "\ud800".encode("utf-8", errors="surrogatepass")
    if style == "cut":
        return text.encode()[: max(1, len(text) // 2)]
    return text.encode()


encodings = st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "bom", "latin-1", "surrogates"])


def _in_utc_range(moment: datetime) -> bool:
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True


tick_times = aware_times.filter(_in_utc_range)


@st.composite
def valid_ticks(draw: st.DrawFn) -> Tick:
    """A valid tick of SYMBOL whose values may sit at the very ends of their ranges."""
    low, high = 5e-324, sys.float_info.max
    bid = draw(st.one_of(st.floats(low, high), st.sampled_from([low, 1.0, high / 2])))
    ask = draw(st.one_of(st.floats(bid, high), st.just(high)))
    if not bid < ask:
        bid, ask = (1.0, 2.0) if bid >= high else (bid, math.nextafter(bid, math.inf))
    event = draw(tick_times)
    # Published when it happened or later (or not stamped): the decoder's own rule holds.
    published = draw(st.one_of(st.none(), st.just(event), tick_times.map(lambda t: max(t, event))))
    return Tick(
        symbol=SYMBOL,
        seq=draw(st.one_of(st.integers(0, MAX_SEQ), st.sampled_from([0, MAX_SEQ]))),
        bid=bid,
        ask=ask,
        bid_size=draw(st.floats(low, high)),
        ask_size=draw(st.floats(low, high)),
        event_time=event,
        publish_time=published,
    )


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes | str | None, bytes | None]:
    kind = draw(st.integers(0, 3))
    if kind == 0:  # a valid tick at the ends of its ranges, keyed by its symbol
        return SYMBOL.encode(), draw(valid_ticks()).to_json()
    key = draw(st.one_of(st.just(SYMBOL.encode()), st.none(), st.binary(max_size=40), st.text()))
    if kind == 1:
        return key, draw(st.one_of(st.none(), st.binary(max_size=200)))
    return key, encode(draw(hostile_bodies()), draw(encodings))


clocks = st.one_of(
    st.just(None),  # the real clock
    edge_times,
    st.datetimes(timezones=st.just(UTC)),
)


def assert_answered(verdict: Verdict | Tick | DecodeFailure) -> None:
    if isinstance(verdict, Tick):
        return
    assert verdict.reason is not None or verdict.tick is not None  # type: ignore[union-attr]
    if verdict.reason is not None:
        assert verdict.reason is not Reason.INTERNAL_ERROR, verdict.detail
        assert 0 < len(verdict.detail) <= MAX_DETAIL_CHARS


# HYPOTHESIS_EXAMPLES=5000 for a longer hunt than the test run's.
FAST = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FAST
@given(message=messages())
def test_the_decoder_answers_every_message(message: tuple[bytes | str | None, bytes]) -> None:
    key, value = message
    decoded = decode_message(key, value)
    assert isinstance(decoded, Tick | DecodeFailure)
    if isinstance(decoded, DecodeFailure):
        assert decoded.reason is not Reason.INTERNAL_ERROR, decoded.detail
        assert 0 < len(decoded.detail) <= MAX_DETAIL_CHARS


@FAST
@given(sequence=st.lists(messages(), min_size=1, max_size=25), clock=clocks)
def test_the_checker_answers_every_message_of_any_sequence(
    sequence: list[tuple[bytes | str | None, bytes]], clock: datetime | None
) -> None:
    checker = QualityChecker() if clock is None else QualityChecker(clock=lambda: clock)
    for key, value in sequence:
        verdict = checker.check(key, value)
        assert_answered(verdict)
        if verdict.accepted:
            assert verdict.tick is not None and verdict.tick.symbol == SYMBOL
    # What it remembers can be saved and read back by a gate that takes over.
    saved = json.loads(json.dumps(checker.changes(), allow_nan=False))
    successor = QualityChecker()
    for symbol, snapshot in saved.items():
        successor.restore(symbol, snapshot)
    assert successor.tracked_symbols == checker.tracked_symbols


@FAST
@given(first=valid_ticks(), second=valid_ticks())
def test_valid_ticks_at_the_ends_of_their_ranges_get_a_rule_verdict(
    first: Tick, second: Tick
) -> None:
    # Any two valid ticks in a row: the second is judged against the first (seq, time, mid
    # ratio at float's limits) and gets a verdict of the rules, never an exception.
    checker = QualityChecker(clock=lambda: datetime.max.replace(tzinfo=UTC))
    assert checker.check(SYMBOL, first.to_json()).accepted
    assert_answered(checker.check(SYMBOL, second.to_json()))


def test_the_last_second_of_year_9999_is_a_tick_not_a_crash() -> None:
    # The message: it stopped the gate for good (publish_time + skew overflowed).
    last = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    tick = Tick(
        symbol=SYMBOL, seq=0, bid=1.0, ask=2.0, bid_size=1.0, ask_size=1.0, event_time=last
    ).published(last)
    assert decode_message(SYMBOL, tick.to_json()) == tick
    # To the gate's clock of today it is from the future; the ticks after it are still clean.
    checker = QualityChecker()
    assert checker.check(SYMBOL, tick.to_json()).reason is Reason.TIME_AHEAD
    now = datetime.now(UTC)
    following = tick.model_copy(update={"seq": 0, "event_time": now, "publish_time": now})
    assert checker.check(SYMBOL, following.to_json()).accepted


class _BrokenRule(QualityChecker):
    """A checker with a bug: its market rule raises on a bid of exactly 13.0."""

    def _market_problem(self, tick: Tick, state: Any) -> Verdict | None:  # type: ignore[override]
        if tick.bid == 13.0:
            raise ZeroDivisionError("float division by zero")
        return super()._market_problem(tick, state)


def tick_json(seq: int, bid: float) -> bytes:
    now = datetime.now(UTC)
    return Tick(
        symbol=SYMBOL, seq=seq, bid=bid, ask=bid + 0.01, bid_size=1.0, ask_size=1.0, event_time=now
    ).to_json()


def test_a_rule_that_raises_sets_the_message_aside_as_internal_error() -> None:
    checker = _BrokenRule()
    assert checker.check(SYMBOL, tick_json(0, 12.9)).accepted
    verdict = checker.check(SYMBOL, tick_json(1, 13.0))
    assert verdict.reason is Reason.INTERNAL_ERROR
    assert "ZeroDivisionError" in verdict.detail and "bug of orderbook_kit" in verdict.detail
    # The checker goes on: the next ticks of the symbol are judged as usual, and clean.
    assert checker.check(SYMBOL, tick_json(2, 12.95)).accepted
    assert checker.check(SYMBOL, tick_json(3, 12.96)).accepted


def test_a_decoder_that_raises_gives_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import orderbook_kit.market.decoding as decoding

    def broken(value: bytes | None) -> Tick | DecodeFailure:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(decoding, "decode_tick", broken)
    failure = decode_message(SYMBOL, tick_json(0, 10.0))
    assert isinstance(failure, DecodeFailure)
    assert failure.reason is Reason.INTERNAL_ERROR
    assert failure.detail.startswith("OverflowError while decoding: date value out of range")
