"""ipywidgets controls for the simulator: sliders for tick interval and volatility, plus symbol
and seed, driving a price-path preview and (optionally) a running simulator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import ipywidgets as widgets
import plotly.graph_objects as go

from .simulator import KNOWN_INSTRUMENTS, OrderbookSimulator

__all__ = ["SimulatorControls", "preview_figure"]

PREVIEW_SECONDS = 60.0
PREVIEW_START = datetime(2026, 1, 1, tzinfo=UTC)


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
        xaxis_title="seconds", yaxis_title="price",
    )  # fmt: skip
    return figure


@dataclass
class SimulatorControls:
    """Sliders whose values redraw a preview and, if given, retune a running simulator."""

    interval: widgets.FloatLogSlider
    volatility: widgets.FloatLogSlider
    symbol: widgets.Dropdown
    seed: widgets.IntText
    preview: go.FigureWidget
    simulator: OrderbookSimulator | None = None

    @classmethod
    def create(
        cls, *, interval_s: float = 0.05, volatility: float = 0.002, symbol: str = "TTF-GAS",
        seed: int = 42, simulator: OrderbookSimulator | None = None,
    ) -> SimulatorControls:  # fmt: skip
        style = {"description_width": "110px"}
        controls = cls(
            interval=widgets.FloatLogSlider(value=interval_s, base=10, min=-2, max=0, step=0.1,
                description="interval (s)", style=style, readout_format=".3f"),
            volatility=widgets.FloatLogSlider(value=volatility, base=10, min=-4, max=-1,
                step=0.1, description="volatility", style=style, readout_format=".4f"),
            symbol=widgets.Dropdown(options=sorted(KNOWN_INSTRUMENTS), value=symbol,
                description="symbol", style=style),
            seed=widgets.IntText(value=seed, description="seed", style=style),
            preview=go.FigureWidget(),
            simulator=simulator,
        )  # fmt: skip
        for control in (controls.interval, controls.volatility, controls.symbol, controls.seed):
            control.observe(controls._changed, names="value")
        controls.redraw()
        return controls

    def redraw(self) -> None:
        fresh = preview_figure(self.symbol.value, self.interval.value, self.volatility.value,
                               self.seed.value)  # fmt: skip
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
        sliders = widgets.VBox([self.interval, self.volatility, self.symbol, self.seed])
        return widgets.VBox([sliders, self.preview])
