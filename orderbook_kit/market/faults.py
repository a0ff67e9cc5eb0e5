"""Fault injection: turn a stream of good ticks into the messy stream a real feed sometimes sends.

Each kind of fault has its own probability. Every message comes out labelled with the fault it
carries (or ``None``), using the same :class:`~orderbook_kit.market.reasons.Reason` codes the
quality gate writes into its dead-letter header - so "what went in" and "what the gate said" can
be compared one to one.

Faults are injected so that each message has exactly one thing wrong with it, and so that the
clean ticks around a fault stay clean for a gate that remembers the last tick of each symbol:

- most faults *replace* a tick (a crossed book, a seq gap, a timestamp in the past...);
- ``duplicate``, ``out_of_order``, ``not_json``, ``too_large`` and ``key_mismatch`` *add* a message
  after a clean tick: a resent copy, a stale older tick, a garbled fragment, a copy padded far
  beyond any tick's size, or a copy keyed by another symbol (which may land in another partition).
  These never take a seq number, so they make no gap; the stream then has more messages than the
  simulator made ticks;
- faults that need history (sequence, time and price checks) start after a symbol's first clean
  tick, because a gate has nothing to compare the very first tick with.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from orderbook_kit.market.checks import CONFIRMING_TICKS
from orderbook_kit.market.decoding import MAX_CLOCK_SKEW, MAX_MESSAGE_BYTES
from orderbook_kit.market.reasons import HISTORY_REASONS, Reason
from orderbook_kit.market.tick import Tick
from orderbook_kit.settings import defaults

__all__ = ["FAULT_KINDS", "PRICE_JUMP_FACTOR", "FaultInjector", "RawMessage"]

# What the injector can produce: every reason a feed can cause (an internal error is the kit's).
FAULT_KINDS: tuple[Reason, ...] = tuple(r for r in Reason if r is not Reason.INTERNAL_ERROR)

# An injected jump moves bid and ask by 25%, far beyond any sensible gate limit (default 5%).
PRICE_JUMP_FACTOR = 0.25

_ADDED = {
    Reason.DUPLICATE,
    Reason.OUT_OF_ORDER,
    Reason.NOT_JSON,
    Reason.TOO_LARGE,
    Reason.KEY_MISMATCH,
}
_NEEDS_HISTORY = HISTORY_REASONS


@dataclass(frozen=True)
class RawMessage:
    """One Kafka message to send as is: ``key``, ``value`` bytes, and the fault it carries."""

    key: str
    value: bytes
    fault: Reason | None = None


@dataclass
class _History:
    """What the injector remembers of one symbol's clean ticks."""

    clean: list[RawMessage] = field(default_factory=list)  # the last few, newest last
    last_clean: Tick | None = None
    seq_shift: int = 0  # seq numbers skipped so far by injected gaps
    jumps_since_clean: int = 0  # injected price jumps since the last clean tick


class FaultInjector:
    """Labels each tick clean or faulty, with ``rates[kind]`` the probability of each fault.

    ``rates`` maps a :class:`Reason` (or its name, e.g. ``"crossed_book"``) to a probability; the
    probabilities must add up to at most 1. ``injected`` counts what was produced, by kind.
    """

    def __init__(
        self, rates: Mapping[Reason | str, float], *, seed: int | None = defaults.SEED
    ) -> None:
        self.rates = _validated(rates)
        self._random = random.Random(seed)
        self._history: dict[str, _History] = {}
        self.injected: Counter[Reason] = Counter()
        self.clean = 0

    @classmethod
    def uniform(cls, rate: float, *, seed: int | None = defaults.SEED) -> FaultInjector:
        """The same probability ``rate`` for every kind of fault."""
        return cls(dict.fromkeys(FAULT_KINDS, rate), seed=seed)

    def messages(self, ticks: Iterable[Tick]) -> Iterator[RawMessage]:
        """The messages for ``ticks``, each stamped with ``publish_time`` as it is produced."""
        for tick in ticks:
            yield from self._messages_for(tick.published())

    def _messages_for(self, tick: Tick) -> Iterator[RawMessage]:
        history = self._history.setdefault(tick.symbol, _History())
        if history.seq_shift:
            tick = tick.model_copy(update={"seq": tick.seq + history.seq_shift})
        fault = self._draw()
        if fault in _NEEDS_HISTORY and history.last_clean is None:
            fault = None
        if fault is Reason.PRICE_JUMP:
            # Enough jumps in a row would be a real move of the market to the gate: stay below.
            if history.jumps_since_clean + 1 >= CONFIRMING_TICKS:
                fault = None
            else:
                history.jumps_since_clean += 1
        if fault is Reason.SEQ_GAP:
            skipped = self._random.randint(1, 3)
            history.seq_shift += skipped
            tick = tick.model_copy(update={"seq": tick.seq + skipped})
        if fault is None or fault in _ADDED:
            clean = RawMessage(tick.symbol, tick.to_json())
            yield self._count(clean)
            if fault is not None:
                yield self._count(self._added(fault, clean, history))
            history.clean = [*history.clean[-4:], clean]
            history.last_clean = tick
            history.jumps_since_clean = 0
            return
        yield self._count(self._replaced(fault, tick, history))

    def _draw(self) -> Reason | None:
        roll = self._random.random()
        for kind, rate in self.rates.items():
            if roll < rate:
                return kind
            roll -= rate
        return None

    def _added(self, fault: Reason, clean: RawMessage, history: _History) -> RawMessage:
        if fault is Reason.DUPLICATE:
            return RawMessage(clean.key, clean.value, fault)
        if fault is Reason.OUT_OF_ORDER:
            older = self._random.choice(history.clean)  # a clean tick sent before this one
            return RawMessage(older.key, older.value, fault)
        if fault is Reason.TOO_LARGE:  # valid JSON, padded past any tick's size
            padding = b" " * (MAX_MESSAGE_BYTES + self._random.randint(1, 1024))
            return RawMessage(clean.key, clean.value + padding, fault)
        if fault is Reason.KEY_MISMATCH:
            return RawMessage(f"NOT-{clean.key}"[:32], clean.value, fault)
        # NOT_JSON: a fragment of the message, as if a write was cut short.
        cut = self._random.randint(1, len(clean.value) - 2)
        return RawMessage(clean.key, clean.value[:cut], fault)

    def _replaced(self, fault: Reason, tick: Tick, history: _History) -> RawMessage:
        # model_copy(update=...) does not validate, which is exactly what lets us build bad ticks
        # that serialise like good ones: only the fault differs from a clean message.
        rand = self._random
        changes: dict[str, object] = {}
        if fault is Reason.CROSSED_BOOK:
            changes = {"bid": tick.ask, "ask": tick.bid}
        elif fault is Reason.LOCKED_BOOK:
            changes = {"ask": tick.bid}
        elif fault is Reason.NON_POSITIVE_PRICE:
            changes = {rand.choice(["bid", "ask"]): rand.choice([0.0, -tick.bid])}
        elif fault is Reason.NON_POSITIVE_SIZE:
            changes = {rand.choice(["bid_size", "ask_size"]): rand.choice([0.0, -1.0])}
        elif fault is Reason.TIME_BACKWARDS:
            assert history.last_clean is not None
            back = timedelta(seconds=rand.uniform(0.01, 1.0))
            changes = {"event_time": history.last_clean.event_time - back}
        elif fault is Reason.TIME_AHEAD:
            assert tick.publish_time is not None
            ahead = MAX_CLOCK_SKEW + timedelta(seconds=rand.uniform(1, 60))
            changes = {"event_time": tick.publish_time + ahead}
        elif fault is Reason.PRICE_JUMP:
            factor = 1 + rand.choice([PRICE_JUMP_FACTOR, -PRICE_JUMP_FACTOR])
            changes = {"bid": tick.bid * factor, "ask": tick.ask * factor}
        elif fault is Reason.INVALID_SCHEMA:
            # Symbol and seq stay readable, so the gate still sees the sequence advance.
            body = json.loads(tick.to_json())
            if rand.random() < 0.5:
                del body["ask_size"]
            else:
                body["venue"] = "XYZ"
            return RawMessage(tick.symbol, json.dumps(body, separators=(",", ":")).encode(), fault)
        # SEQ_GAP: the tick itself is fine; its seq was already moved on.
        return RawMessage(tick.symbol, tick.model_copy(update=changes).to_json(), fault)

    def _count(self, message: RawMessage) -> RawMessage:
        if message.fault is None:
            self.clean += 1
        else:
            self.injected[message.fault] += 1
        return message


def _validated(rates: Mapping[Reason | str, float]) -> dict[Reason, float]:
    checked: dict[Reason, float] = {}
    for name, rate in rates.items():
        try:
            kind = Reason(name)
            if kind not in FAULT_KINDS:
                raise ValueError
        except ValueError:
            known = ", ".join(FAULT_KINDS)
            raise ValueError(f"unknown fault kind {name!r}; use one of: {known}") from None
        if not 0 <= rate <= 1:
            raise ValueError(f"the rate of {kind} must be between 0 and 1, got {rate}")
        checked[kind] = float(rate)
    total = sum(checked.values())
    if total > 1 + 1e-9:
        raise ValueError(
            f"fault rates add up to {total:g}; they must add up to at most 1 (the rest is clean)"
        )
    return checked
