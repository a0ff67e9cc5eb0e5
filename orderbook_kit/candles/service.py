"""The candles service: the Quix Streams application of :mod:`.application`, run with the kit's
conventions (its topics made first, limits by count, duration, idleness or a stop event, a
summary at the end, metrics).

Exactly once, and its state: the engine keeps each window in RocksDB under the state folder, and
every change in a changelog topic, written in the same Kafka transaction as the candles and the
clean topic's offsets. Killed at any moment, a restarted service - on this machine or another, in
the same group - rebuilds the windows of its partitions from their changelogs and goes on from
the committed offsets: each window is sent once, whole.
"""

from __future__ import annotations

import logging
import threading
import time

from orderbook_kit.candles.application import CandleCounts, build_candles_app, state_folder
from orderbook_kit.candles.engine import Application
from orderbook_kit.candles.metrics import CandlesMetrics
from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.admin import admin_client, ensure_topic, topic_identity
from orderbook_kit.settings.environment import Settings

__all__ = ["CandlesService"]

log = logging.getLogger(__name__)

# How often the watcher looks at the stop event, the limits, and hands totals to the metrics.
WATCH_INTERVAL_S = 0.2


class CandlesService:
    """``with CandlesService(settings) as service: service.run(...)``: the candles of the clean
    topic, by event time, exactly once. Makes no connection until entered."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: CandlesMetrics | None = None,
        on_skipped: object = None,  # the command line's printer: the engine logs instead
        loglevel: str | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.counts = CandleCounts()
        if metrics is not None:
            self.counts.on_delay = metrics.delay.observe
            metrics.state.folder = state_folder(settings)
        # The engine's own log: at the service's level (ORDERBOOK_LOG_LEVEL), WARNING at least.
        self._loglevel = loglevel or settings.service.log_level
        self._app: Application | None = None
        self._processed = 0

    def __enter__(self) -> CandlesService:
        self.ensure_topics()
        self._app = build_candles_app(self.settings, self.counts, loglevel=self._loglevel)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, /, *rest: object) -> None:
        self._app = None

    def ensure_topics(self) -> None:
        """The clean topic must exist (the gate makes it); the outputs are made with as many
        partitions, so a symbol's candles sit in the partition number of its ticks."""
        topics = self.settings.topics
        kafka = self.settings.kafka
        with admin_client(kafka.bootstrap_servers, kafka.client_timeout_s) as admin:
            if topics.clean not in admin.list_topics():
                raise OrderbookKitError(
                    f"topic {topics.clean!r} does not exist: start the quality gate first "
                    "(python -m orderbook_kit.quality), or set ORDERBOOK_CLEAN_TOPIC"
                )
            _, partitions = topic_identity(admin, topics.clean)
            for topic in (
                topics.candles_1s,
                topics.candles_1m,
                topics.spreads_5m,
                topics.candles_live,
                topics.candles_skipped,
            ):
                ensure_topic(admin, topic, partitions)

    def run(
        self,
        *,
        count: int | None = None,
        duration_s: float | None = None,
        idle_s: float | None = None,
        stop: threading.Event | None = None,
    ) -> CandleCounts:
        """Run until ``count`` messages were read, ``duration_s`` passed, none came for
        ``idle_s``, or ``stop`` is set (or Ctrl-C / SIGTERM: the engine finishes and commits)."""
        app = self._app
        if app is None:
            raise RuntimeError("use the service in a with block: it connects when entered")
        done = threading.Event()
        watcher = threading.Thread(
            target=self._watch,
            args=(app, count, duration_s, stop, done),
            name="candles-watcher",
            daemon=True,
        )
        watcher.start()
        try:
            app.run(timeout=idle_s or 0.0, collect=False)
        finally:
            done.set()
            watcher.join(timeout=5)
            self._hand_over()
        return self.counts

    def _watch(
        self,
        app: Application,
        count: int | None,
        duration_s: float | None,
        stop: threading.Event | None,
        done: threading.Event,
    ) -> None:
        deadline = None if duration_s is None else time.monotonic() + duration_s
        while not done.wait(WATCH_INTERVAL_S):
            self._hand_over()
            read = self.counts.windowed + sum(self.counts.skipped.values())
            if (
                (stop is not None and stop.is_set())
                or (deadline is not None and time.monotonic() >= deadline)
                or (count is not None and read >= count)
            ):
                app.stop()
                return

    def _hand_over(self) -> None:
        if self.metrics is not None:
            self.metrics.count(self.counts)
