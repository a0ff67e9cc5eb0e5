"""Fault injection, checked against the quality rules: every label matches the gate's verdict."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderbook_kit.errors import SettingsError
from orderbook_kit.ingest.__main__ import build_parser, fault_injector
from orderbook_kit.market.checks import QualityChecker
from orderbook_kit.market.faults import FAULT_KINDS, FaultInjector
from orderbook_kit.market.reasons import Reason
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.market.tick import Tick

START = datetime(2026, 1, 1, tzinfo=UTC)
SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]

rate_maps = st.dictionaries(
    st.sampled_from(FAULT_KINDS),
    st.floats(min_value=0.0, max_value=0.07),
    max_size=len(FAULT_KINDS),
)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), rates=rate_maps, symbols=st.integers(1, 3))
def test_every_message_is_judged_as_labelled(
    seed: int, rates: dict[Reason, float], symbols: int
) -> None:
    simulator = OrderbookSimulator(SYMBOLS[:symbols], seed=seed)
    injector = FaultInjector(rates, seed=seed)
    checker = QualityChecker()
    labels: Counter[Reason | None] = Counter()
    for message in injector.messages(simulator.ticks(400, start_time=START)):
        verdict = checker.check(message.key, message.value)
        assert verdict.reason == message.fault, (message, verdict)
        labels[message.fault] += 1
    assert labels[None] == injector.clean
    assert {kind: n for kind, n in labels.items() if kind is not None} == injector.injected
    assert set(injector.injected) <= {kind for kind, rate in rates.items() if rate > 0}


def test_every_kind_is_injected_at_a_high_rate() -> None:
    injector = FaultInjector.uniform(0.07, seed=1)
    messages = list(injector.messages(OrderbookSimulator(SYMBOLS).ticks(600, start_time=START)))
    assert set(injector.injected) == set(FAULT_KINDS)
    # Added faults make more messages than ticks; replaced ones do not.
    added_kinds = (
        Reason.DUPLICATE,
        Reason.OUT_OF_ORDER,
        Reason.NOT_JSON,
        Reason.TOO_LARGE,
        Reason.KEY_MISMATCH,
    )
    added = sum(injector.injected[kind] for kind in added_kinds)
    assert len(messages) == 600 + added


def test_no_faults_means_the_ticks_unchanged() -> None:
    ticks = list(OrderbookSimulator(SYMBOLS).ticks(30, start_time=START))
    messages = list(FaultInjector({}).messages(ticks))
    assert [m.fault for m in messages] == [None] * 30
    assert [m.key for m in messages] == [t.symbol for t in ticks]
    decoded = [Tick.from_json(m.value) for m in messages]
    assert [t.model_copy(update={"publish_time": None}) for t in decoded] == ticks
    assert all(t.publish_time is not None for t in decoded)


def test_same_seed_same_faults() -> None:
    def labels(seed: int) -> list[Reason | None]:
        ticks = OrderbookSimulator(seed=3).ticks(300, start_time=START)
        return [m.fault for m in FaultInjector.uniform(0.05, seed=seed).messages(ticks)]

    assert labels(7) == labels(7)
    assert labels(7) != labels(8)


def test_history_faults_wait_for_a_first_clean_tick() -> None:
    ticks = OrderbookSimulator(SYMBOLS).ticks(3, start_time=START)
    messages = list(FaultInjector({Reason.SEQ_GAP: 1.0}).messages(ticks))
    assert [m.fault for m in messages] == [None, None, None]


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        (
            {"crossed": 0.1},
            "unknown fault kind 'crossed'; use one of: too_large, not_json, invalid_schema",
        ),
        ({"crossed_book": 1.5}, "the rate of crossed_book must be between 0 and 1, got 1.5"),
        ({"duplicate": 0.6, "seq_gap": 0.6}, "fault rates add up to 1.2; they must add up to"),
    ],
)
def test_bad_rates_are_refused_with_the_fix(rates: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FaultInjector(rates)


def test_ingest_fault_flags() -> None:
    def injector(*flags: str) -> FaultInjector | None:
        return fault_injector(build_parser().parse_args(list(flags)), seed=7)

    assert injector() is None  # a clean feed by default
    both = injector("--fault-rate", "0.01", "--fault", "seq_gap=0.05")
    assert both is not None and both.rates[Reason.SEQ_GAP] == 0.05
    assert both.rates[Reason.CROSSED_BOOK] == 0.01
    with pytest.raises(SettingsError, match=r"^--fault: 'seq_gap' is not KIND=PROBABILITY; use"):
        injector("--fault", "seq_gap")
    with pytest.raises(SettingsError, match=r"^--fault: unknown fault kind 'gap'"):
        injector("--fault", "gap=0.1")
    with pytest.raises(SettingsError, match=r"^--fault-rate: fault rates add up to 1\.4"):
        injector("--fault-rate", "0.1")
