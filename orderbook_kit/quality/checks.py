"""The quality rules: is this message a clean tick, and if not, why not?

Pure logic, no Kafka: :class:`QualityChecker` looks at message values one at a time, in log order,
and remembers the last tick of each symbol. The rules, in the order they are applied (the first
that fails names the reason):

1. the message is a valid tick (JSON, schema, bid below ask, positive prices and sizes);
2. its ``seq`` follows the symbol's last one: equal is a ``duplicate``, lower is ``out_of_order``,
   more than one higher is a ``seq_gap`` (the ticks in between were lost upstream);
3. its ``event_time`` is not before the last accepted tick's (``time_backwards``);
4. its mid is within ``price_jump_limit`` (relative) of the last accepted mid (``price_jump``) -
   unless it is the ``CONFIRMING_TICKS``-th tick in a row at a new level that agrees with the
   rejected ones before it: then the market really moved, and the new level is accepted.

The sequence moves on with every message that carries a readable seq, even a rejected one, so one
bad tick is reported once and does not make the next good tick look like a gap. Times and prices
are compared with the last *accepted* tick only, so one bad price cannot poison the reference.
After a seq gap the checker resynchronises on the new seq.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from ..decoding import DecodeFailure, decode_tick
from ..models import Tick
from ..reasons import Reason

__all__ = ["CONFIRMING_TICKS", "DEFAULT_PRICE_JUMP_LIMIT", "QualityChecker", "Verdict"]

# A 5% move of the mid between two ticks of a gas contract is far outside normal trading; the
# default simulator moves about 0.05% per tick.
DEFAULT_PRICE_JUMP_LIMIT = 0.05
# A one-tick spike is an error; three ticks in a row at the new level are the market moving.
# Without this, a gate whose reference fell behind a real move would reject every tick after it.
CONFIRMING_TICKS = 3


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
    last_seq: int
    last_time: datetime | None = None  # of the last accepted tick
    last_mid: float | None = None  # of the last accepted tick
    jumped_mids: list[float] = field(default_factory=list)  # consecutive jumps that agree


class QualityChecker:
    """Applies the rules above to messages of any number of symbols, in the order they come."""

    def __init__(self, price_jump_limit: float = DEFAULT_PRICE_JUMP_LIMIT) -> None:
        if not price_jump_limit > 0:
            raise ValueError(
                f"price_jump_limit must be > 0 (e.g. 0.05 for 5%), got {price_jump_limit}"
            )
        self.price_jump_limit = price_jump_limit
        self._symbols: dict[str, _SymbolState] = {}

    def check(self, value: bytes | None) -> Verdict:
        decoded = decode_tick(value)
        if isinstance(decoded, DecodeFailure):
            self._advance_readable_seq(value)
            return Verdict(decoded.reason, decoded.detail)
        tick = decoded
        state = self._symbols.get(tick.symbol)
        if state is None:  # the first tick of a symbol: nothing to compare with yet
            self._symbols[tick.symbol] = _SymbolState(tick.seq, tick.event_time, tick.mid)
            return Verdict(None, tick=tick)
        rejected = self._sequence_problem(tick, state) or self._market_problem(tick, state)
        if rejected is not None:
            return rejected
        state.last_time, state.last_mid = tick.event_time, tick.mid
        state.jumped_mids.clear()
        return Verdict(None, tick=tick)

    def _sequence_problem(self, tick: Tick, state: _SymbolState) -> Verdict | None:
        last = state.last_seq
        if tick.seq == last:
            return Verdict(Reason.DUPLICATE, f"seq {tick.seq} was already seen", tick)
        if tick.seq < last:
            return Verdict(Reason.OUT_OF_ORDER, f"seq {tick.seq} arrived after seq {last}", tick)
        state.last_seq = tick.seq
        if tick.seq > last + 1:
            missing = f"{last + 1}" if tick.seq == last + 2 else f"{last + 1} to {tick.seq - 1}"
            return Verdict(Reason.SEQ_GAP, f"seq {missing} missing before seq {tick.seq}", tick)
        return None

    def _market_problem(self, tick: Tick, state: _SymbolState) -> Verdict | None:
        if state.last_time is not None and tick.event_time < state.last_time:
            behind = (state.last_time - tick.event_time).total_seconds()
            return Verdict(
                Reason.TIME_BACKWARDS,
                f"event_time {tick.event_time.isoformat()} is {behind:.3f} s before the last "
                f"accepted tick's",
                tick,
            )
        if state.last_mid is not None:
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

    def _advance_readable_seq(self, value: bytes | None) -> None:
        """A rejected message whose symbol and seq can still be read moves the sequence on."""
        try:
            body = json.loads(value) if value is not None else None
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(body, dict):
            return
        symbol, seq = body.get("symbol"), body.get("seq")
        if not isinstance(symbol, str) or type(seq) is not int or seq < 0:
            return
        state = self._symbols.get(symbol)
        if state is None:
            self._symbols[symbol] = _SymbolState(seq)
        elif seq > state.last_seq:
            state.last_seq = seq
