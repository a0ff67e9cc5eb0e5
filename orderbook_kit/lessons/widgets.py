"""ipywidgets controls for the simulator: sliders for tick interval and volatility, plus symbol
and seed, driving a price-path preview and (optionally) a running simulator.

What each control retunes:

- **interval** and **volatility**: the preview *and* the running simulator, from its next tick;
- **symbol** and **seed**: the preview only (a running simulator keeps its symbols, and its
  random numbers are already drawn from its own seed).

The sliders step through round values (0.01, 0.02, 0.05, ...), so what the slider shows is
exactly what the simulator uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import ipywidgets as widgets
import plotly.graph_objects as go

from orderbook_kit.market.simulator import KNOWN_INSTRUMENTS, OrderbookSimulator
from orderbook_kit.settings import defaults

__all__ = ["INTERVALS_S", "VOLATILITIES", "SimulatorControls", "preview_figure", "round_steps"]

PREVIEW_SECONDS = 60.0
PREVIEW_START = datetime(2026, 1, 1, tzinfo=UTC)
STYLE = {"description_width": "110px"}  # room for the longest label, "interval (s)"


def round_steps(low_exponent: int, high_exponent: int) -> list[float]:
    """1, 2, 5 times each power of ten from 10**low to 10**high: a log scale of round values."""
    steps = [
        float(f"{mantissa}e{exponent}")
        for exponent in range(low_exponent, high_exponent)
        for mantissa in (1, 2, 5)
    ]
    return [*steps, float(f"1e{high_exponent}")]


INTERVALS_S = round_steps(-2, 0)  # 0.01 s ... 1 s
VOLATILITIES = round_steps(-4, -1)  # 0.0001 ... 0.1 per sqrt(second)


def preview_figure(symbol: str, interval_s: float, volatility: float, seed: int) -> go.Figure:
    """One minute of simulated bid/ask, computed instantly (no waiting, no Kafka)."""
    simulator = OrderbookSimulator(symbol, interval_s=interval_s, volatility=volatility, seed=seed)
    count = max(2, int(PREVIEW_SECONDS / interval_s))
    ticks = list(simulator.ticks(count, start_time=PREVIEW_START))
    times = [(t.event_time - PREVIEW_START).total_seconds() for t in ticks]
    figure = go.Figure()
    figure.add_scatter(x=times, y=[t.bid for t in ticks], name="bid", line={"shape": "hv"})
    figure.add_scatter(x=times, y=[t.ask for t in ticks], name="ask", line={"shape": "hv"})
    figure.update_layout(
        title=f"{symbol}: {count} ticks, every {interval_s:g} s, volatility {volatility:g}/sqrt(s)",
        xaxis_title="seconds",
        yaxis_title="price",
    )
    return figure


def _slider(description: str, values: Sequence[float], value: float) -> widgets.SelectionSlider:
    # A value from the environment that is not a round one is kept, in its place on the scale.
    options = sorted({*values, value})
    return widgets.SelectionSlider(
        options=[(f"{option:g}", option) for option in options],
        value=value,
        description=description,
        style=STYLE,
        continuous_update=False,  # recompute when the slider is let go, not on every pixel
    )


@dataclass
class SimulatorControls:
    """Sliders whose values redraw a preview and, if given, retune a running simulator."""

    interval: widgets.SelectionSlider
    volatility: widgets.SelectionSlider
    symbol: widgets.Dropdown
    seed: widgets.IntText
    preview: go.FigureWidget
    simulator: OrderbookSimulator | None = None

    @classmethod
    def create(
        cls,
        *,
        interval_s: float = defaults.TICK_INTERVAL_S,
        volatility: float = defaults.VOLATILITY,
        symbol: str = defaults.SYMBOL,
        seed: int = defaults.SEED,
        simulator: OrderbookSimulator | None = None,
    ) -> SimulatorControls:
        controls = cls(
            interval=_slider("interval (s)", INTERVALS_S, interval_s),
            volatility=_slider("volatility", VOLATILITIES, volatility),
            symbol=widgets.Dropdown(
                options=sorted(KNOWN_INSTRUMENTS), value=symbol, description="symbol", style=STYLE
            ),
            seed=widgets.IntText(value=seed, description="seed", style=STYLE),
            preview=go.FigureWidget(),
            simulator=simulator,
        )
        for control in (controls.interval, controls.volatility, controls.symbol, controls.seed):
            control.observe(controls._changed, names="value")
        controls.redraw()
        return controls

    def redraw(self) -> None:
        fresh = preview_figure(
            self.symbol.value, self.interval.value, self.volatility.value, self.seed.value
        )
        with self.preview.batch_update():
            self.preview.data = ()
            for trace in fresh.data:
                self.preview.add_trace(trace)
            self.preview.layout = fresh.layout

    def _changed(self, _change: dict) -> None:
        if self.simulator is not None:
            self.simulator.interval_s = self.interval.value
            self.simulator.volatility = self.volatility.value
        self.redraw()

    def widget(self) -> widgets.Widget:
        note = widgets.HTML(
            "<i>interval and volatility retune the preview and the live simulator; "
            "symbol and seed, the preview only</i>"
        )
        sliders = widgets.VBox([self.interval, self.volatility, self.symbol, self.seed, note])
        return widgets.VBox([sliders, self.preview])
