"""Plotly figures of a tick frame (as returned by ``consumer.read_ticks``), and a live chart.

The live chart is a ``FigureWidget`` updated from a background thread with ``batch_update``, so the
notebook - and its sliders - stay responsive while ticks stream in.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from orderbook_kit.market.tick import Tick

__all__ = [
    "LiveChart",
    "candles_figure",
    "depth_figure",
    "latency_figure",
    "price_figure",
    "rejections_figure",
    "spread_and_sizes_figure",
]

TIME_COLUMN = "event_time"


def price_figure(frame: pd.DataFrame, title: str = "Top of book") -> go.Figure:
    """Bid, ask and mid over time: one panel per symbol, each with its own price axis.

    Symbols trade at very different levels (TTF near 35, NBP near 85 EUR/MWh): on one shared
    axis each would look flat, so every symbol gets a panel scaled to its own moves.
    """
    symbols = sorted(frame["symbol"].unique()) or [""]
    figure = make_subplots(
        rows=len(symbols), cols=1, shared_xaxes=True, subplot_titles=symbols, vertical_spacing=0.08
    )
    for row, symbol in enumerate(symbols, start=1):
        rows = frame[frame["symbol"] == symbol]
        for column, dash in (("bid", "solid"), ("ask", "solid"), ("mid", "dot")):
            line = {"dash": dash, "shape": "hv"}
            name = f"{symbol} {column}"
            x, y = rows[TIME_COLUMN], rows[column]
            figure.add_scatter(x=x, y=y, name=name, mode="lines", line=line, row=row, col=1)
        figure.update_yaxes(title_text="price", row=row, col=1)
    figure.update_xaxes(title_text="event time (UTC)", row=len(symbols), col=1)
    figure.update_layout(title=title, legend_title="series", height=250 + 220 * len(symbols))
    return figure


def depth_figure(levels: pd.DataFrame, title: str = "Depth of book") -> go.Figure:
    """A depth chart of a book (``OrderBook.to_frame()``): the cumulative size on each side,
    from the best price outwards - bids falling to the left, asks rising to the right, the gap
    between them the spread - with each level's own size as bars."""
    figure = go.Figure()
    colours = {"bid": "seagreen", "ask": "firebrick"}
    for side in ("bid", "ask"):
        rows = levels[levels["side"] == side].sort_values("price")
        shape = "vh" if side == "bid" else "hv"
        figure.add_bar(
            x=rows["price"],
            y=rows["size"],
            name=f"{side} size",
            marker_color=colours[side],
            opacity=0.35,
        )
        figure.add_scatter(
            x=rows["price"],
            y=rows["cumulative"],
            name=f"{side}s, cumulative",
            mode="lines",
            line={"shape": shape, "color": colours[side]},
            fill="tozeroy",
        )
    figure.update_layout(
        title=title, xaxis_title="price", yaxis_title="lots", bargap=0.1, height=420
    )
    return figure


def windows_figure(times_s: list[float], *, length_s: float = 10, step_s: float = 5) -> go.Figure:
    """The same events (dots, at ``times_s`` seconds) in three kinds of window: tumbling
    (``length_s`` long, one after the other), hopping (``length_s`` long, one every ``step_s``:
    they overlap) and sliding (one ending at each event, ``length_s`` long). Overlapping windows
    are drawn on staggered rows."""
    end = max(times_s, default=0.0) + length_s
    kinds = [
        (f"tumbling: {length_s:g} s, back to back", _spans(0, end, length_s, length_s), 1),
        (
            f"hopping: {length_s:g} s, one every {step_s:g} s",
            _spans(step_s - length_s, end, step_s, length_s),
            max(round(length_s / step_s), 1),
        ),
        (
            f"sliding: the {length_s:g} s up to each event",
            [(t - length_s, t) for t in times_s],
            4,
        ),
    ]
    figure = make_subplots(
        rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08,
        subplot_titles=[title for title, _, _ in kinds],
    )  # fmt: skip
    for row, (_, spans, stagger) in enumerate(kinds, start=1):
        for index, (start, stop) in enumerate(spans):
            y = 0.3 + 0.2 * (index % stagger)
            figure.add_shape(
                type="rect", x0=start, x1=stop, y0=y, y1=y + 0.15, row=row, col=1,
                line={"width": 1}, fillcolor="lightblue", opacity=0.6,
            )  # fmt: skip
        figure.add_scatter(
            x=times_s, y=[0.1] * len(times_s), mode="markers", marker={"size": 9},
            showlegend=False, row=row, col=1,
        )  # fmt: skip
        figure.update_yaxes(visible=False, range=[0, 1.2], row=row, col=1)
    figure.update_xaxes(title_text="event time (s)", row=3, col=1)
    figure.update_layout(height=560, title="One stream of events, three kinds of window")
    return figure


def _spans(first: float, end: float, step: float, length: float) -> list[tuple[float, float]]:
    """Windows ``length`` long starting at ``first``, one every ``step``, before ``end``."""
    spans, start = [], first
    while start < end:
        spans.append((start, start + length))
        start += step
    return spans


def candles_figure(candles: pd.DataFrame, title: str) -> go.Figure:
    """A candlestick chart of OHLC candles (``bucket, open, high, low, close, ticks`` columns, as
    ``store.queries.candles`` returns them), with the ticks per candle as bars below."""
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.05
    )
    figure.add_candlestick(
        x=candles["bucket"],
        open=candles["open"],
        high=candles["high"],
        low=candles["low"],
        close=candles["close"],
        name="mid",
        row=1,
        col=1,
    )
    figure.add_bar(x=candles["bucket"], y=candles["ticks"], name="ticks", row=2, col=1)
    figure.update_yaxes(title_text="mid price", row=1, col=1)
    figure.update_yaxes(title_text="ticks", row=2, col=1)
    figure.update_xaxes(rangeslider_visible=False)
    figure.update_xaxes(title_text="event time (UTC)", row=2, col=1)
    figure.update_layout(title=title, height=520, showlegend=False)
    return figure


def spread_and_sizes_figure(frame: pd.DataFrame) -> go.Figure:
    """Spread (top) and bid/ask sizes (bottom) over time."""
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, subplot_titles=("spread", "sizes"))
    for symbol, rows in frame.groupby("symbol", sort=True):
        times = rows[TIME_COLUMN]
        spread, line = rows["spread"], {"shape": "hv"}
        name = f"{symbol} spread"
        figure.add_scatter(x=times, y=spread, name=name, mode="lines", line=line, row=1, col=1)
        for column in ("bid_size", "ask_size"):
            name = f"{symbol} {column}"
            figure.add_scatter(x=times, y=rows[column], name=name, mode="lines", row=2, col=1)
    figure.update_layout(title="Spread and sizes")
    return figure


def latency_figure(frame: pd.DataFrame) -> go.Figure:
    """Histogram of publish-to-consume latency in milliseconds."""
    latency_ms = (frame["consume_time"] - frame["publish_time"]).dt.total_seconds() * 1000
    figure = go.Figure(go.Histogram(x=latency_ms, nbinsx=40, name="latency"))
    figure.update_layout(
        title="Publish-to-consume latency", xaxis_title="milliseconds", yaxis_title="ticks"
    )
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
    figure.update_layout(
        barmode="stack",
        title="Rejected by the quality gate, by reason",
        xaxis_title="reason",
        yaxis_title="messages",
        legend_title="symbol",
    )
    return figure


class LiveChart:
    """A live bid/ask/mid chart of one symbol, fed by a tick iterator in a background thread.

    ``source`` is called with a stop event and returns the ticks to show (for example
    ``lambda stop: simulator.stream(duration_s=30, stop=stop)``). Shows the last ``window`` ticks.
    Nothing here blocks the kernel: :meth:`start` and :meth:`stop` (or the buttons of
    :meth:`controls`) return at once, and the thread redraws at most ``max_redraws_per_s``
    times a second whatever the tick rate - a browser cannot show more, and every redraw
    sends the whole window to it.
    """

    def __init__(
        self,
        source: Callable[[threading.Event], Iterator[Tick]],
        *,
        symbol: str | None = None,
        window: int = 300,
        max_redraws_per_s: float = 10.0,
    ) -> None:
        self.source = source
        self.symbol = symbol
        self.min_redraw_gap_s = 1.0 / max_redraws_per_s
        self.figure = go.FigureWidget()
        for name in ("bid", "ask", "mid"):
            self.figure.add_scatter(name=name, mode="lines", line={"shape": "hv"})
        self.figure.update_layout(
            title=f"Live top of book {symbol or ''}".strip(),
            xaxis_title="event time (UTC)",
            yaxis_title="price",
        )
        self._points: deque[Tick] = deque(maxlen=window)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.received = 0  # ticks shown (of this symbol)
        self.redraws = 0
        self.error: BaseException | None = None
        self._labels: list[widgets.Label] = []  # the status lines of controls(), kept current
        self._draw_lock = threading.Lock()
        self._pending: threading.Timer | None = None  # a redraw the throttle put off

    def start(self) -> LiveChart:
        """Start streaming in the background (again, after a stop); returns at once."""
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="live-chart", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the stream to stop; returns at once (the thread ends within one tick)."""
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def controls(self) -> widgets.Widget:
        """Start and Stop buttons with a status line, above the chart."""
        start = widgets.Button(description="Start", icon="play")
        stop = widgets.Button(description="Stop", icon="stop")
        status = widgets.Label(value=self.status)
        self._labels.append(status)

        def on_start(_: object) -> None:
            self.start()
            self._show_status()

        def on_stop(_: object) -> None:
            self.stop()
            self._show_status()

        start.on_click(on_start)
        stop.on_click(on_stop)
        return widgets.VBox([widgets.HBox([start, stop, status]), self.figure])

    @property
    def status(self) -> str:
        """The status line: "running; 120 ticks shown", "stopped; ..." or "failed: <error>; ..."."""
        if self.error is not None:
            state = f"failed: {type(self.error).__name__}: {self.error}"
        else:
            state = "running" if self.running and not self._stop.is_set() else "stopped"
        return f"{state}; {self.received} ticks shown"

    def _show_status(self) -> None:
        text = self.status
        for label in self._labels:
            label.value = text

    def _run(self) -> None:
        last_redraw = 0.0
        try:
            for tick in self.source(self._stop):
                if self._stop.is_set():
                    break
                if self.symbol is not None and tick.symbol != self.symbol:
                    continue
                self._points.append(tick)
                self.received += 1
                now = time.monotonic()
                if now - last_redraw >= self.min_redraw_gap_s:
                    self._redraw()
                    last_redraw = now
                elif self._pending is None:
                    # Drawn a moment later even if no tick follows (a feed that pauses).
                    self._pending = threading.Timer(self.min_redraw_gap_s, self._redraw)
                    self._pending.daemon = True
                    self._pending.start()
        except Exception as exc:  # shown to the learner via .error instead of dying silently
            self.error = exc
        finally:
            self._redraw()  # the last ticks, whatever the throttle held back
            self._stop.set()  # so the status says "stopped" before the thread has quite ended
            self._show_status()

    def _redraw(self) -> None:
        with self._draw_lock:
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
            points = list(self._points)
            times = [t.event_time for t in points]
            columns = ([t.bid for t in points], [t.ask for t in points], [t.mid for t in points])
            with self.figure.batch_update():
                for trace, values in zip(self.figure.data, columns, strict=True):
                    trace.x, trace.y = times, values
            self.redraws += 1
            self._show_status()  # as often as the chart: the count under it stays true
