"""Plotly figures of a tick frame (as returned by ``consumer.read_ticks``), and a live chart.

The live chart is a ``FigureWidget`` updated from a background thread with ``batch_update``, so the
notebook - and its sliders - stay responsive while ticks stream in.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .models import Tick

__all__ = [
    "LiveChart",
    "latency_figure",
    "price_figure",
    "rejections_figure",
    "spread_and_sizes_figure",
]

TIME_COLUMN = "event_time"


def price_figure(frame: pd.DataFrame, title: str = "Top of book") -> go.Figure:
    """Bid, ask and mid over time, one set of lines per symbol."""
    figure = go.Figure()
    for symbol, rows in frame.groupby("symbol", sort=True):
        for column, dash in (("bid", "solid"), ("ask", "solid"), ("mid", "dot")):
            figure.add_scatter(x=rows[TIME_COLUMN], y=rows[column], name=f"{symbol} {column}",
                               mode="lines", line={"dash": dash, "shape": "hv"})  # fmt: skip
    figure.update_layout(title=title, xaxis_title="event time (UTC)", yaxis_title="price",
                         legend_title="series")  # fmt: skip
    return figure


def spread_and_sizes_figure(frame: pd.DataFrame) -> go.Figure:
    """Spread (top) and bid/ask sizes (bottom) over time."""
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, subplot_titles=("spread", "sizes"))
    for symbol, rows in frame.groupby("symbol", sort=True):
        figure.add_scatter(x=rows[TIME_COLUMN], y=rows["spread"], name=f"{symbol} spread",
                           mode="lines", line={"shape": "hv"}, row=1, col=1)  # fmt: skip
        for column in ("bid_size", "ask_size"):
            figure.add_scatter(x=rows[TIME_COLUMN], y=rows[column], name=f"{symbol} {column}",
                               mode="lines", row=2, col=1)  # fmt: skip
    figure.update_layout(title="Spread and sizes")
    return figure


def latency_figure(frame: pd.DataFrame) -> go.Figure:
    """Histogram of publish-to-consume latency in milliseconds."""
    latency_ms = (frame["consume_time"] - frame["publish_time"]).dt.total_seconds() * 1000
    figure = go.Figure(go.Histogram(x=latency_ms, nbinsx=40, name="latency"))
    figure.update_layout(title="Publish-to-consume latency", xaxis_title="milliseconds",
                         yaxis_title="ticks")  # fmt: skip
    return figure


def rejections_figure(dead_letters: pd.DataFrame) -> go.Figure:
    """Rejected messages by reason (bars, most frequent first), stacked by key (symbol).

    ``dead_letters`` is a frame from ``quality.dead_letters.read_dead_letters``.
    """
    counts = dead_letters.fillna({"key": "(no key)"}).groupby(["reason", "key"]).size()
    order = counts.groupby(level="reason").sum().sort_values(ascending=False).index
    figure = go.Figure()
    for key, per_reason in counts.groupby(level="key", sort=True):
        per_reason = per_reason.droplevel("key").reindex(order, fill_value=0)
        figure.add_bar(x=list(per_reason.index), y=per_reason.to_numpy(), name=str(key))
    figure.update_layout(barmode="stack", title="Rejected by the quality gate, by reason",
                         xaxis_title="reason", yaxis_title="messages",
                         legend_title="symbol")  # fmt: skip
    return figure


class LiveChart:
    """A live bid/ask/mid chart of one symbol, fed by a tick iterator in a background thread.

    ``source`` is called with a stop event and returns the ticks to show (for example
    ``lambda stop: simulator.stream(duration_s=30, stop=stop)``). Shows the last ``window`` ticks.
    """

    def __init__(
        self,
        source: Callable[[threading.Event], Iterator[Tick]],
        *,
        symbol: str | None = None,
        window: int = 300,
    ) -> None:
        self.source = source
        self.symbol = symbol
        self.figure = go.FigureWidget()
        for name in ("bid", "ask", "mid"):
            self.figure.add_scatter(name=name, mode="lines", line={"shape": "hv"})
        self.figure.update_layout(title=f"Live top of book {symbol or ''}".strip(),
                                  xaxis_title="event time (UTC)", yaxis_title="price")  # fmt: skip
        self._points: deque[Tick] = deque(maxlen=window)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.received = 0
        self.error: BaseException | None = None

    def start(self) -> LiveChart:
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="live-chart", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def wait(self, timeout_s: float) -> bool:
        """Block until the source ends (True) or ``timeout_s`` passes (False)."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        return not self.running

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            for tick in self.source(self._stop):
                if self.symbol is not None and tick.symbol != self.symbol:
                    continue
                self._points.append(tick)
                self.received += 1
                self._redraw()
                if self._stop.is_set():
                    break
        except Exception as exc:  # shown to the learner via .error instead of dying silently
            self.error = exc

    def _redraw(self) -> None:
        times = [t.event_time for t in self._points]
        with self.figure.batch_update():
            for trace, values in zip(
                self.figure.data,
                ([t.bid for t in self._points], [t.ask for t in self._points],
                 [t.mid for t in self._points]),
                strict=True,
            ):  # fmt: skip
                trace.x, trace.y = times, values
