"""The tick model: market invariants with clear messages, lossless JSON, an exportable schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from orderbook_kit.market.tick import Tick

VALID = {
    "symbol": "TTF-GAS",
    "seq": 7,
    "bid": 35.005,
    "ask": 35.015,
    "bid_size": 40.0,
    "ask_size": 25.0,
    "event_time": datetime(2026, 11, 24, 9, 0, 0, 123456, tzinfo=UTC),
}


def test_valid_tick_and_derived_values() -> None:
    tick = Tick(**VALID)
    assert tick.mid == pytest.approx(35.01)
    assert tick.spread == pytest.approx(0.01)
    assert tick.publish_time is None


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"bid": 0}, "bid", "greater than 0"),
        ({"ask": -1.0}, "ask", "greater than 0"),
        ({"bid_size": 0}, "bid_size", "greater than 0"),
        ({"ask_size": -5}, "ask_size", "greater than 0"),
        ({"seq": -1}, "seq", "greater than or equal to 0"),
        ({"symbol": "ttf gas"}, "symbol", "should match pattern"),
        ({"symbol": ""}, "symbol", "should match pattern"),
        ({"bid": float("nan")}, "bid", "finite number"),
        ({"event_time": datetime(2026, 1, 1)}, "event_time", "timezone info"),
    ],
)
def test_bad_fields_are_named(change: dict, field: str, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        Tick(**{**VALID, **change})
    (problem,) = error.value.errors()
    assert problem["loc"] == (field,)
    assert message in problem["msg"]


def test_crossed_book_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"crossed book: bid 35\.02 is above ask 35\.0"):
        Tick(**{**VALID, "bid": 35.02, "ask": 35.0})


def test_locked_book_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"locked book: bid equals ask \(35.0\)"):
        Tick(**{**VALID, "bid": 35.0, "ask": 35.0})


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Tick(**VALID, venue="ICE")


def test_times_are_converted_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    tick = Tick(**{**VALID, "event_time": datetime(2026, 11, 24, 10, 0, tzinfo=cet)})
    assert tick.event_time == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert tick.event_time.utcoffset() == timedelta(0)


def test_json_round_trip_is_lossless() -> None:
    tick = Tick(**VALID).published(datetime(2026, 11, 24, 9, 0, 1, 5, tzinfo=UTC))
    data = tick.to_json()
    assert isinstance(data, bytes)
    assert Tick.from_json(data) == tick
    assert b'"symbol":"TTF-GAS"' in data


prices = st.floats(min_value=1e-9, max_value=1e12, allow_nan=False, allow_infinity=False)
times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
) | st.datetimes(
    min_value=datetime(2, 1, 1),
    max_value=datetime(9998, 1, 1),
    timezones=st.sampled_from([timezone(timedelta(hours=h)) for h in (-11, -5, 1, 14)]),
)


@given(
    seq=st.integers(min_value=0, max_value=2**63 - 1),
    bid=prices,
    spread=st.floats(min_value=1e-6, max_value=1e6),
    sizes=st.tuples(prices, prices),
    event_time=times,
    at=times,
)
def test_published_json_is_byte_for_byte_the_stamped_copys_json(
    seq: int,
    bid: float,
    spread: float,
    sizes: tuple[float, float],
    event_time: datetime,
    at: datetime,
) -> None:
    # The producer's fast path must put on the wire exactly what the model itself would write.
    ask = bid + spread
    assume(ask > bid)  # a spread below the float's resolution at that price locks the book
    fields = {"seq": seq, "bid": bid, "ask": ask, "bid_size": sizes[0], "ask_size": sizes[1]}
    tick = Tick(**{**VALID, **fields, "event_time": event_time})
    assert tick.published_json(at) == tick.published(at).to_json()
    assert Tick.from_json(tick.published_json(at)) == tick.published(at)


def test_published_json_stamps_now_and_leaves_the_tick_unchanged() -> None:
    tick = Tick(**VALID)
    before = datetime.now(UTC)
    stamped = Tick.from_json(tick.published_json())
    assert stamped.publish_time is not None and before <= stamped.publish_time
    assert stamped.publish_time <= datetime.now(UTC)
    assert tick.publish_time is None  # frozen: the caller's tick is not stamped
    assert stamped.model_copy(update={"publish_time": None}) == tick


def test_json_schema_lists_every_field() -> None:
    schema = Tick.model_json_schema()
    assert set(schema["required"]) == {
        "symbol",
        "seq",
        "bid",
        "ask",
        "bid_size",
        "ask_size",
        "event_time",
    }
    assert schema["properties"]["bid"]["exclusiveMinimum"] == 0
    assert schema["additionalProperties"] is False
