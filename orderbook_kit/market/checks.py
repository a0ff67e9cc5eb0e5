"""The quality rules: is this message a clean tick, and if not, why not?

Pure logic, no Kafka: :class:`QualityChecker` looks at messages (key and value) one at a time, in
log order, and remembers the last accepted tick of each symbol. The rules, in the order they are
applied (the first that fails names the reason):

1. the message is a tick of the symbol it is keyed by (size, JSON, schema, bid below ask, positive
   prices and sizes, key = symbol) and did not happen after it was published or after now
   (``time_ahead``, with ``MAX_CLOCK_SKEW`` of tolerance);
2. its ``seq`` follows the symbol's last accepted one: equal is a ``duplicate``, lower is
   ``out_of_order``, higher with seqs missing in between is a ``seq_gap``;
3. its ``event_time`` is not before the last accepted tick's (``time_backwards``);
4. its mid is within ``price_jump_limit`` (relative) of the last accepted mid (``price_jump``) -
   unless it is the ``CONFIRMING_TICKS``-th tick in a row at a new level that agrees with the
   rejected ones before it: then the market really moved, and the new level is accepted.

One message never changes how the ticks after it are judged:

- only an accepted tick moves the references (last seq, time and mid);
- a rejected message whose symbol and seq are readable only *explains* that seq: the next good tick
  after it is not a gap (one bad tick is reported once), and a good tick with that same seq is
  still accepted;
- after a gap the checker resynchronises on the new seq only once the next tick continues it, so
  one tick with seq 10**18 is a ``seq_gap`` and the real ticks after it stay clean;
- memory is kept only for symbols with an accepted tick, at most ``max_symbols`` of them (the
  least recently seen is forgotten first), and at most ``SEQ_WINDOW`` explained seqs each.

That memory can be saved and restored (:meth:`QualityChecker.changes`, :meth:`~QualityChecker.
restore`), so that a gate that restarts, or takes over another gate's partitions, judges the next
message exactly as the last gate would have (see ``checker_memory.py``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orderbook_kit.market.decoding import (
    MAX_CLOCK_SKEW,
    DecodeFailure,
    decode_message,
    internal_failure,
    readable_identity,
)
from orderbook_kit.market.reasons import Reason
from orderbook_kit.market.tick import Tick, utc_now
from orderbook_kit.settings import defaults

__all__ = [
    "CONFIRMING_TICKS",
    "DEFAULT_PRICE_JUMP_LIMIT",
    "MAX_TRACKED_SYMBOLS",
    "SEQ_WINDOW",
    "QualityChecker",
    "Verdict",
]

DEFAULT_PRICE_JUMP_LIMIT = defaults.PRICE_JUMP_LIMIT  # why 5%: see defaults.py
# A one-tick spike is an error; three ticks in a row at the new level are the market moving.
# Without this, a gate whose reference fell behind a real move would reject every tick after it.
CONFIRMING_TICKS = 3
# Far more instruments than one feed carries; beyond it, the least recently seen is forgotten
# (its next tick is accepted as a new first tick) instead of memory growing without end.
MAX_TRACKED_SYMBOLS = 10_000
# Seqs of rejected messages are remembered this far ahead of the last accepted seq (and of a gap
# waiting for confirmation): enough for any run of bad ticks, and a bound on memory.
SEQ_WINDOW = 64


@dataclass(frozen=True)
class Verdict:
    """The checker's answer for one message: ``reason`` is None for a clean tick."""

    reason: Reason | None
    detail: str = ""
    tick: Tick | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


@dataclass
class _SymbolState:
    """What the checker remembers of one symbol: its last accepted tick, and what came after."""

    last_seq: int
    last_time: datetime
    last_mid: float
    explained: set[int] = field(default_factory=set)  # seqs of rejected messages after last_seq
    gap_at: int | None = None  # seq of the last seq_gap tick: a new sequence, unconfirmed
    jumped_mids: list[float] = field(default_factory=list)  # consecutive jumps that agree

    def within_window(self, seq: int) -> bool:
        starts = (self.last_seq, self.gap_at if self.gap_at is not None else self.last_seq)
        return any(start < seq <= start + SEQ_WINDOW for start in starts)

    def continues(self, start: int, seq: int) -> bool:
        """Does ``seq`` follow ``start`` with every seq in between explained by a rejection?"""
        missing = seq - start - 1
        if missing <= 0:
            return missing == 0
        explained = self.explained
        return missing <= len(explained) and all(s in explained for s in range(start + 1, seq))

    def accept(self, tick: Tick) -> None:
        self.last_seq, self.last_time, self.last_mid = tick.seq, tick.event_time, tick.mid
        self.gap_at = None
        self.jumped_mids.clear()
        self._forget_outside_window()

    def await_confirmation(self, gap_seq: int) -> None:
        """A gap at ``gap_seq``: resynchronise on it only if the next tick continues it."""
        self.gap_at = gap_seq
        self._forget_outside_window()

    def _forget_outside_window(self) -> None:
        self.explained = {seq for seq in self.explained if self.within_window(seq)}

    def snapshot(self) -> dict[str, Any]:
        """Everything remembered, as JSON-ready values."""
        return {
            "last_seq": self.last_seq,
            "last_time": self.last_time.isoformat(),
            "last_mid": self.last_mid,
            "explained": sorted(self.explained),
            "gap_at": self.gap_at,
            "jumped_mids": list(self.jumped_mids),
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> _SymbolState:
        """The state :meth:`snapshot` saved; ValueError if ``data`` is not one."""
        try:
            last_time = datetime.fromisoformat(data["last_time"])
            gap_at = data["gap_at"]
            state = cls(
                last_seq=_whole(data["last_seq"]),
                last_time=last_time,
                last_mid=_positive(data["last_mid"]),
                gap_at=None if gap_at is None else _whole(gap_at),
                jumped_mids=[_positive(mid) for mid in data["jumped_mids"][:CONFIRMING_TICKS]],
            )
            explained = {_whole(seq) for seq in data["explained"][: 2 * SEQ_WINDOW]}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a saved symbol state: {exc!r}") from None
        if last_time.tzinfo is None:
            raise ValueError("not a saved symbol state: last_time has no time zone")
        state.explained = {seq for seq in explained if state.within_window(seq)}
        return state


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _positive(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"{value!r} is not a positive number")
    return float(value)


class QualityChecker:
    """Applies the rules above to messages of any number of symbols, in the order they come.

    ``clock`` gives the current time for the ``time_ahead`` rule (tests pass a fixed one).
    """

    def __init__(
        self,
        price_jump_limit: float = DEFAULT_PRICE_JUMP_LIMIT,
        *,
        clock: Callable[[], datetime] = utc_now,
        max_symbols: int = MAX_TRACKED_SYMBOLS,
    ) -> None:
        if not price_jump_limit > 0:
            raise ValueError(
                f"price_jump_limit must be > 0 (e.g. {DEFAULT_PRICE_JUMP_LIMIT} for "
                f"{DEFAULT_PRICE_JUMP_LIMIT:.0%}), got {price_jump_limit}"
            )
        self.price_jump_limit = price_jump_limit
        self._clock = clock
        self._max_symbols = max_symbols
        self._symbols: OrderedDict[str, _SymbolState] = OrderedDict()
        self._changed: set[str] = set()  # symbols whose memory changed since changes()

    @property
    def tracked_symbols(self) -> int:
        """How many symbols the checker remembers (bounded by ``max_symbols``)."""
        return len(self._symbols)

    def changes(self) -> dict[str, dict[str, Any]]:
        """The memory of each symbol that changed since the last call, as :meth:`restore`
        takes it back (JSON-ready)."""
        changed, self._changed = self._changed, set()
        return {s: self._symbols[s].snapshot() for s in sorted(changed) if s in self._symbols}

    def restore(self, symbol: str, snapshot: Mapping[str, Any]) -> None:
        """Remember ``symbol`` as a :meth:`changes` snapshot says (ValueError if it is not one).
        Restore symbols least recently seen first: beyond ``max_symbols``, those go first."""
        self._symbols[symbol] = _SymbolState.from_snapshot(snapshot)
        self._symbols.move_to_end(symbol)
        while len(self._symbols) > self._max_symbols:
            self._symbols.popitem(last=False)

    def check(self, key: bytes | str | None, value: bytes | None) -> Verdict:
        """The verdict on one message with Kafka key ``key`` and value ``value``.

        Total: a rule that raises (a bug of the kit) gives an ``internal_error`` verdict naming
        the exception, so one message never stops the gate; the next is judged as usual.
        """
        try:
            verdict, symbol = self._judge(key, value)
        except Exception as exc:
            failure = internal_failure(exc, "checking")
            # Like any rejected message, it explains its seq: the next tick is not a gap.
            self._explain(*readable_identity(key, value))
            return Verdict(failure.reason, failure.detail)
        if symbol is not None and symbol in self._symbols:
            self._changed.add(symbol)
        return verdict

    def _judge(self, key: bytes | str | None, value: bytes | None) -> tuple[Verdict, str | None]:
        decoded = decode_message(key, value)
        if isinstance(decoded, DecodeFailure):
            self._explain(decoded.symbol, decoded.seq)
            return Verdict(decoded.reason, decoded.detail), decoded.symbol
        tick = decoded
        state = self._symbols.get(tick.symbol)
        verdict = self._future_problem(tick)
        if verdict is None and state is not None:
            self._symbols.move_to_end(tick.symbol)
            verdict = self._sequence_problem(tick, state) or self._market_problem(tick, state)
        if verdict is None:
            if state is None:  # a first tick: nothing to compare it with yet
                self._remember(tick)
            else:
                state.accept(tick)
            return Verdict(None, tick=tick), tick.symbol
        if verdict.reason is Reason.SEQ_GAP and state is not None:
            state.await_confirmation(tick.seq)
        else:
            self._explain(tick.symbol, tick.seq)
        return verdict, tick.symbol

    def _remember(self, tick: Tick) -> None:
        self._symbols[tick.symbol] = _SymbolState(tick.seq, tick.event_time, tick.mid)
        while len(self._symbols) > self._max_symbols:
            self._symbols.popitem(last=False)

    def _explain(self, symbol: str | None, seq: int | None) -> None:
        """A rejected message carried ``seq``: a later tick after it is not a gap."""
        state = None if symbol is None else self._symbols.get(symbol)
        if state is not None and seq is not None and state.within_window(seq):
            state.explained.add(seq)

    def _future_problem(self, tick: Tick) -> Verdict | None:
        # decode_message compared event_time with the tick's own publish_time; a forged or
        # missing publish_time is caught here, by the gate's own clock.
        now = self._clock()
        if tick.event_time - now > MAX_CLOCK_SKEW:  # not now + skew: no overflow near 9999
            ahead = (tick.event_time - now).total_seconds()
            return Verdict(
                Reason.TIME_AHEAD,
                f"event_time {tick.event_time.isoformat()} is {ahead:,.3f} s in the future",
                tick,
            )
        return None

    def _sequence_problem(self, tick: Tick, state: _SymbolState) -> Verdict | None:
        seq, last = tick.seq, state.last_seq
        if seq == last:
            return Verdict(Reason.DUPLICATE, f"seq {seq} was already seen", tick)
        if seq < last:
            return Verdict(Reason.OUT_OF_ORDER, f"seq {seq} arrived after seq {last}", tick)
        if state.continues(last, seq):
            return None
        if state.gap_at is not None and seq > state.gap_at and state.continues(state.gap_at, seq):
            return None  # the tick after a gap continues the new sequence: resynchronise
        missing = f"{last + 1}" if seq == last + 2 else f"{last + 1} to {seq - 1}"
        return Verdict(Reason.SEQ_GAP, f"seq {missing} missing before seq {seq}", tick)

    def _market_problem(self, tick: Tick, state: _SymbolState) -> Verdict | None:
        if tick.event_time < state.last_time:
            behind = (state.last_time - tick.event_time).total_seconds()
            return Verdict(
                Reason.TIME_BACKWARDS,
                f"event_time {tick.event_time.isoformat()} is {behind:.3f} s before the last "
                f"accepted tick's",
                tick,
            )
        move = tick.mid / state.last_mid - 1
        if abs(move) > self.price_jump_limit and not self._confirms_new_level(tick, state):
            return Verdict(
                Reason.PRICE_JUMP,
                f"mid moved {move:+.1%} (from {state.last_mid:g} to {tick.mid:g}); "
                f"the limit is {self.price_jump_limit:.1%}",
                tick,
            )
        return None

    def _confirms_new_level(self, tick: Tick, state: _SymbolState) -> bool:
        """Record a jump; True once ``CONFIRMING_TICKS`` consecutive jumps agree on a level."""
        jumped = state.jumped_mids
        if jumped and abs(tick.mid / jumped[-1] - 1) > self.price_jump_limit:
            jumped.clear()  # a jump to yet another level: start counting again
        jumped.append(tick.mid)
        return len(jumped) >= CONFIRMING_TICKS
