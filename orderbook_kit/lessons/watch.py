"""Watching the running pipeline from a notebook, as Prometheus does: scrape every service once a
second into a table - counters, lag, freshness - and chart it live.

Lag is asked of the broker (as a lag exporter does), not of the services: a paused or dead
service cannot report how far behind it is, and that is exactly when lag matters.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go
from kafka.errors import KafkaError
from plotly.subplots import make_subplots

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.monitoring.lag import GroupLagCollector
from orderbook_kit.monitoring.scrape import Scrape, scrape
from orderbook_kit.settings.environment import Settings

__all__ = ["COUNTERS", "PipelineWatch", "WatchChart", "rates"]

# Counters charted as rates: column -> (service, series, labels).
COUNTERS: dict[str, tuple[str, str, dict[str, str]]] = {
    "ingest_acknowledged": ("ingest", "orderbook_ingest_messages_acknowledged_total", {}),
    "gate_clean": ("quality", "orderbook_gate_messages_total", {"route": "clean"}),
    "gate_dead_letters": ("quality", "orderbook_gate_messages_total", {"route": "dead_letter"}),
    "store_rows": ("store", "orderbook_store_rows_written_total", {}),
}
SCRAPE_TIMEOUT_S = 1.0  # a paused service must not hold the watch up: it just counts as down


@dataclass
class PipelineWatch:
    """Scrapes ``services`` (name -> metrics URL) and asks the broker for the lag of ``groups``
    ((group, topic) pairs); each :meth:`sample` is one row."""

    services: dict[str, str]
    settings: Settings
    groups: Iterable[tuple[str, str]] = ()
    _lags: dict[str, GroupLagCollector] = field(init=False, default_factory=dict)
    _started: float = field(init=False, default_factory=time.monotonic)

    def __post_init__(self) -> None:
        for group, topic in self.groups:
            self._lags[group] = GroupLagCollector(self.settings, group, topic)

    def sample(self) -> dict[str, float]:
        """Now: the seconds since the watch (or its last run) began, each service's counters
        (NaN while it does not answer), whether it answers (``up_<service>``), the newest tick's
        age at each service, and each group's lag."""
        row: dict[str, float] = {"t": time.monotonic() - self._started}
        scrapes: dict[str, Scrape | None] = {}
        for name, url in self.services.items():
            try:
                scrapes[name] = scrape(url, timeout_s=SCRAPE_TIMEOUT_S)
            except OrderbookKitError:
                scrapes[name] = None
            row[f"up_{name}"] = float(scrapes[name] is not None)
        for column, (service, series, labels) in COUNTERS.items():
            found = scrapes.get(service)
            if service in self.services:
                row[column] = math.nan if found is None else found.value(series, **labels)
        for name, found in scrapes.items():
            ages = [] if found is None else found.select("orderbook_last_tick_age_seconds")
            row[f"age_{name}"] = max((s.value for s in ages), default=math.nan)
        for group, collector in self._lags.items():
            try:
                row[f"lag_{group}"] = float(sum(collector.lags().values()))
            except (KafkaError, OSError):
                row[f"lag_{group}"] = math.nan
        return row

    def run(
        self,
        seconds: float,
        *,
        every_s: float = 1.0,
        on_row: Callable[[pd.DataFrame], None] | None = None,
        stop: threading.Event | None = None,
        at: dict[float, Callable[[], object]] | None = None,
    ) -> pd.DataFrame:
        """Sample every ``every_s`` for ``seconds`` (or until ``stop``); the rows, with rates.
        ``on_row`` gets the table so far after each sample (to redraw a chart); ``at`` runs
        actions at given seconds into the run (``{5: gate.pause, 12: gate.resume}``)."""
        rows: list[dict[str, float]] = []
        began_run = self._started = time.monotonic()  # each run's table starts at t = 0
        deadline = began_run + seconds
        pending = sorted((at or {}).items())
        while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            began = time.monotonic()
            while pending and began - began_run >= pending[0][0]:
                pending.pop(0)[1]()
            rows.append(self.sample())
            if on_row is not None:
                on_row(rates(pd.DataFrame(rows)))
            time.sleep(max(0.0, every_s - (time.monotonic() - began)))
        return rates(pd.DataFrame(rows))

    def close(self) -> None:
        for collector in self._lags.values():
            collector.close()


def rates(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``<counter>_per_s`` column for each counter: its increase per second
    between samples (what PromQL's ``rate()`` does over a window)."""
    if frame.empty:
        return frame
    frame = frame.copy()
    elapsed = frame["t"].diff()
    for column in COUNTERS:
        if column in frame:
            frame[f"{column}_per_s"] = (frame[column].diff() / elapsed).clip(lower=0)
    return frame


class WatchChart:
    """Three live panels - throughput, lag, freshness - redrawn from a watch's table."""

    def __init__(self, title: str = "The pipeline, scraped once a second") -> None:
        figure = make_subplots(
            rows=3,
            cols=1,
            shared_xaxes=True,
            subplot_titles=("messages per second", "consumer lag (messages)", "newest tick (s)"),
            vertical_spacing=0.08,
        )
        self.figure = go.FigureWidget(figure)
        self.figure.update_layout(title=title, height=700, xaxis3_title="seconds")
        self._traces: dict[str, int] = {}

    def update(self, frame: pd.DataFrame) -> None:
        panels = {
            **{f"{c}_per_s": 1 for c in COUNTERS},
            **{c: 2 for c in frame.columns if c.startswith("lag_")},
            **{c: 3 for c in frame.columns if c.startswith("age_")},
        }
        with self.figure.batch_update():
            for column, row in panels.items():
                if column not in frame:
                    continue
                if column not in self._traces:
                    name = column.removesuffix("_per_s").replace("_", " ")
                    self.figure.add_scatter(name=name, mode="lines", row=row, col=1)
                    self._traces[column] = len(self.figure.data) - 1
                trace = self.figure.data[self._traces[column]]
                trace.x = list(frame["t"])
                # A gap where a service did not answer: None, as JSON has no NaN.
                trace.y = [None if pd.isna(v) else v for v in frame[column]]
