"""Hostile messages, as an attacker (or a broken feed) would send them, for the unit tests of the
quality rules and the integration tests of the gate and the reader.

Each case is a Kafka key and value and the reason the kit must give. A case's ``seq`` is chosen to
hurt: most claim the very seq the next good tick will carry, so that a rule which let the message
change the gate's memory would reject the good tick after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from orderbook_kit.market.reasons import Reason
from orderbook_kit.market.tick import Tick

SYMBOL = "TTF-GAS"
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Hostile:
    name: str
    key: bytes | None
    value: bytes | None
    reason: Reason


def good_tick(seq: int, symbol: str = SYMBOL) -> Tick:
    """A clean tick of the good stream: one per second from START, prices barely moving."""
    price = 35.0 + (seq % 5) * 0.005
    return Tick(
        symbol=symbol,
        seq=seq,
        bid=price,
        ask=price + 0.01,
        bid_size=10.0,
        ask_size=12.0,
        event_time=START + timedelta(seconds=seq),
    ).published(START + timedelta(seconds=seq, milliseconds=5))


def body(seq: int, /, **changes: object) -> dict[str, object]:
    return json.loads(good_tick(seq).to_json()) | changes


def encoded(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def hostile_cases(next_seq: int) -> list[Hostile]:
    """The table, for a good stream whose next tick will have seq ``next_seq``."""
    key = SYMBOL.encode()
    deep = 2_500  # far deeper than the parser's limit, and still under the size limit
    wide = {f"k{i}": i for i in range(40_000)}  # about 500 KB of unknown keys
    just_wide = {f"k{i}": 0 for i in range(1_500)}  # under the size limit: 1,500 errors
    far_future = (datetime.now(UTC) + timedelta(days=365 * 3000)).isoformat()
    tick = encoded(body(next_seq))

    def case(name: str, value: bytes | None, reason: Reason, key: bytes | None = key) -> Hostile:
        return Hostile(name, key, value, reason)

    return [
        case("10,000 nested lists", b"[" * 10_000 + b"]" * 10_000, Reason.TOO_LARGE),
        case("deep list", b"[" * deep + b"]" * deep, Reason.NOT_JSON),
        case("deep object", b'{"a":' * deep + b"1" + b"}" * deep, Reason.NOT_JSON),
        case(
            "deep inside a tick",
            tick[:-1] + b',"x":' + b"[" * deep + b"]" * deep + b"}",
            Reason.NOT_JSON,
        ),
        case("500 KB of unknown keys", encoded(body(next_seq) | wide), Reason.TOO_LARGE),
        case("1,500 unknown keys", encoded(body(next_seq) | just_wide), Reason.INVALID_SCHEMA),
        case("null value", None, Reason.NOT_JSON),
        case("empty value", b"", Reason.NOT_JSON),
        case("not UTF-8", b"\xff\xfe\x00garbage", Reason.NOT_JSON),
        case("a JSON list holding a tick", encoded([body(next_seq)]), Reason.INVALID_SCHEMA),
        case(
            "numbers as strings",
            encoded(body(next_seq, seq=str(next_seq), bid="35.0")),
            Reason.INVALID_SCHEMA,
        ),
        case("a bool for seq", encoded(body(next_seq, seq=True)), Reason.INVALID_SCHEMA),
        case(
            "a float for seq", encoded(body(next_seq, seq=float(next_seq))), Reason.INVALID_SCHEMA
        ),
        case("seq 10**30", encoded(body(next_seq, seq=10**30)), Reason.INVALID_SCHEMA),
        case(
            "a price of 1e400 (inf)",
            tick.replace(b'"bid":', b'"bid":1e400,"x":'),
            Reason.INVALID_SCHEMA,
        ),
        case(
            "a 10,000-character symbol",
            encoded(body(next_seq, symbol="A" * 10_000)),
            Reason.INVALID_SCHEMA,
        ),
        case(
            "past year 9999 once in UTC",
            encoded(body(next_seq, event_time="9999-12-31T23:00:00-05:00")),
            Reason.INVALID_SCHEMA,
        ),
        case(
            "crossed, with seq 10**18",
            encoded(body(next_seq, seq=10**18, bid=40.0, ask=39.0)),
            Reason.CROSSED_BOOK,
        ),
        case("the next seq keyed by another symbol", tick, Reason.KEY_MISMATCH, key=b"NBP-GAS"),
        case("no key", tick, Reason.KEY_MISMATCH, key=None),
        case("a key that is not UTF-8", tick, Reason.KEY_MISMATCH, key=b"\xff"),
        case(
            "event time in the year 9999",
            encoded(body(next_seq, event_time="9999-01-01T00:00:00Z")),
            Reason.TIME_AHEAD,
        ),
        case(
            "event and publish time 3000 years ahead",
            encoded(body(next_seq, event_time=far_future, publish_time=far_future)),
            Reason.TIME_AHEAD,
        ),
        case("a valid tick with seq 2**62", encoded(body(next_seq, seq=2**62)), Reason.SEQ_GAP),
        case(
            "prices near float's maximum",
            encoded(body(next_seq, bid=1e308, ask=1.5e308)),
            Reason.PRICE_JUMP,
        ),
    ]
