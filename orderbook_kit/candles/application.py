"""The candles service as a Quix Streams application: the clean topic in, candles out.

::

    clean ticks ─▶ in its partition? ─┬─▶ 1 s ─┬─────────────▶ candles.1s
                                      │        ├─▶ 1 min ────▶ candles.1m
                                      │        └─▶ 5 min hop ▶ spreads.5m
                                      ├─▶ (running 1 min ───▶ candles.live)
                                      └─▶ set aside ────────▶ candles.skipped

Each window is the engine's own (by event time, state in RocksDB backed by a changelog topic);
only closed windows are sent (``.final()``), and each window's value - a candle per symbol - is
split into one record per symbol, keyed by it. Only the seconds see ticks, with the grace period;
the minute and the five minutes are windows over the closed seconds (stamped with their start, in
order, so they need no grace), one update a second instead of six a tick. Exactly once: the
engine commits the candles, its changelogs and the clean topic's offsets in one Kafka transaction.

Branches run in the order they are built, so the set-aside branch, last, sees whether the second
found the tick late (its ``on_late`` call comes first).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orderbook_kit.candles.arrivals import (
    CLOCK_KEY,
    Arrival,
    ArrivalDeserializer,
    PartitionClockKey,
    PayloadSerializer,
    event_time_ms,
    refused,
)
from orderbook_kit.candles.engine import (
    Application,
    HoppingTimeWindowDefinition,
    StreamingDataFrame,
    TumblingTimeWindowDefinition,
    WindowOnLateCallback,
    message_context,
)
from orderbook_kit.kafka.headers import HEADER_DETAIL, HEADER_REASON
from orderbook_kit.kafka.partitioning import partition_of
from orderbook_kit.market.candles import (
    CANDLE_WINDOWS,
    SPREAD_WINDOW,
    Candle,
    CandleWindow,
    Seconds,
    SpreadStats,
    WindowTick,
    add_to_candles,
    add_to_second,
    roll_candles,
    roll_spreads,
    start_candles,
    start_second,
)
from orderbook_kit.market.reasons import MESSAGE_REASONS, CandleReason, Reason
from orderbook_kit.paths import workbook_folder
from orderbook_kit.settings.environment import Settings
from orderbook_kit.settings.timing import (
    METADATA_MAX_AGE_MS,
    POLL_MS,
    SESSION_TIMEOUT_MS,
    TRANSACTION_TIMEOUT_MS,
)

__all__ = [
    "HEADER_LATE_BY_MS",
    "HEADER_WINDOWS",
    "SKIP_REASONS",
    "WINDOW_NAMES",
    "CandleCounts",
    "build_candles_app",
    "state_folder",
]

HEADER_WINDOWS = "windows"  # on a late tick's copy: the windows it missed
HEADER_LATE_BY_MS = "late_by_ms"  # ... and by how much (the most of them)
# The librdkafka partitioner of the Java client and kafka-python: a symbol's candles go to the
# same partition number as its ticks, whichever client wrote those.
SAME_PARTITIONS_AS_JAVA = "murmur2_random"
FETCH_WAIT_MS = 50
LIVE_WINDOW = CandleWindow("candles_live", 60_000, 60_000)
WINDOW_NAMES = tuple(w.name for w in (*CANDLE_WINDOWS, SPREAD_WINDOW, LIVE_WINDOW))
# Every reason a message can be set aside for (the message's own, then the service's).
SKIP_REASONS = tuple(
    dict.fromkeys([*(r.value for r in MESSAGE_REASONS), *(r.value for r in CandleReason)])
)


@dataclasses.dataclass
class CandleCounts:
    """Running totals of one run of the service (its metrics read them)."""

    # Every key is there from the start (at 0): the metrics read these from another thread,
    # and a dict that only changes values, never its keys, can be copied meanwhile.
    windowed: int = 0  # ticks that went into windows (not the late ones: they are set aside)
    emitted: Counter[str] = dataclasses.field(default_factory=lambda: _zero(WINDOW_NAMES))
    skipped: Counter[str] = dataclasses.field(default_factory=lambda: _zero(SKIP_REASONS))
    late: Counter[str] = dataclasses.field(default_factory=lambda: _zero(WINDOW_NAMES))
    on_delay: Callable[[float], None] | None = None  # seconds from a window's end to sending it

    def summary(self) -> str:
        emitted = ", ".join(f"{n:,} {name}" for name, n in self.emitted.items() if n) or "none"
        skipped = ", ".join(f"{n:,} {why}" for why, n in self.skipped.items() if n) or "none"
        return f"Windowed {self.windowed:,} ticks; sent {emitted}; set aside {skipped}."


def _zero(keys: tuple[str, ...]) -> Counter[str]:
    return Counter(dict.fromkeys(keys, 0))


def state_folder(settings: Settings) -> Path:
    """Where this instance keeps its windows (RocksDB): ``<state_dir>/<instance>``."""
    candles = settings.candles
    root = (
        Path(candles.state_dir)
        if candles.state_dir
        else workbook_folder("candles", "ORDERBOOK_CANDLES_STATE_DIR")
    )
    return root / candles.instance


def build_candles_app(
    settings: Settings,
    counts: CandleCounts,
    *,
    loglevel: str | None = "WARNING",
    auto_offset_reset: str = "earliest",
) -> Application:
    """The candles application of ``settings``, counting into ``counts``; ``app.run()`` runs it.

    Makes no connection: the engine connects when it runs."""
    candles = settings.candles
    app = Application(
        broker_address=settings.kafka.bootstrap_servers,
        consumer_group=candles.group,
        auto_offset_reset=auto_offset_reset,  # type: ignore[arg-type]
        processing_guarantee="exactly-once",
        commit_interval=candles.commit_interval_s,
        state_dir=state_folder(settings),
        loglevel=loglevel,  # type: ignore[arg-type]
        producer_extra_config={
            "partitioner": SAME_PARTITIONS_AS_JAVA,
            # The same after a restart: the new producer fences the killed one and aborts its open
            # transaction at once (a fresh id would leave it to hold back every read-committed
            # reader of the candle topics until it timed out).
            "transactional.id": f"{candles.group}.{candles.instance}",
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
        },
        consumer_extra_config={
            # Static membership: a restarted processor takes its partitions back at once,
            # without waiting for the killed one's session to end...
            "group.instance.id": f"{candles.group}.{candles.instance}",
            # Which process a member is, in the group's description (kafka.groups.group_members).
            "client.id": f"orderbook-candles-{candles.instance}-{os.getpid()}",
            # ... and a dead one's partitions go to the others after 10 s, not librdkafka's 45.
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "topic.metadata.refresh.interval.ms": METADATA_MAX_AGE_MS,
            # A broker answers one connection's requests in order: behind a fetch waiting the
            # default 500 ms for data, each offset query of a restart waited too (a restart took
            # 11 s, most of it so).
            "fetch.wait.max.ms": FETCH_WAIT_MS,
        },
        request_timeout=settings.kafka.client_timeout_s,
        # While it takes partitions and restores their windows, the engine pauses them and each
        # of its steps waits for one poll: at the default 1 s, a restart took 5 s longer.
        consumer_poll_timeout=POLL_MS / 1000,
    )
    topics = settings.topics
    clean = app.topic(
        topics.clean,
        key_deserializer=PartitionClockKey(),
        value_deserializer=ArrivalDeserializer(),
        timestamp_extractor=event_time_ms,
    )
    _Pipeline(app, settings, counts).build(app.dataframe(clean))
    return app


class _Pipeline:
    def __init__(self, app: Application, settings: Settings, counts: CandleCounts) -> None:
        self.app, self.settings, self.counts = app, settings, counts
        self.grace_ms = settings.candles.grace_ms
        self.partitions: int | None = None
        self.homes: dict[str, int] = {}  # symbol -> its partition
        self.symbol = ""  # the symbol of the tick being processed
        # (partition, offset) -> {window: late by ms}, filled by on_late, read by the last branch.
        self.late: dict[tuple[int, int], dict[str, int]] = {}

    def output(self, name: str) -> Any:
        return self.app.topic(name, key_serializer="str", value_serializer=PayloadSerializer())

    def build(self, sdf: StreamingDataFrame) -> None:
        sdf = sdf.apply(self.check, metadata=True)
        ticks = sdf.filter(lambda arrival: arrival.tick is not None).apply(self.window_tick)
        topics = self.settings.topics
        second, minute = CANDLE_WINDOWS
        seconds = (
            ticks.tumbling_window(
                second.length_ms, self.grace_ms, name=second.name, on_late=self.on_late(second)
            )
            .reduce(add_to_second, start_second)
            .final()
        )
        self.send(seconds, second, Candle, topics.candles_1s)
        minutes = seconds.tumbling_window(
            minute.length_ms, 0, name=minute.name, on_late=self.on_late(minute, of_ticks=False)
        )
        self.send(_rolled_up(minutes, roll_candles), minute, Candle, topics.candles_1m)
        spreads = seconds.hopping_window(
            SPREAD_WINDOW.length_ms,
            SPREAD_WINDOW.step_ms,
            0,
            name=SPREAD_WINDOW.name,
            on_late=self.on_late(SPREAD_WINDOW, of_ticks=False),
        )
        self.send(_rolled_up(spreads, roll_spreads), SPREAD_WINDOW, SpreadStats, topics.spreads_5m)
        if self.settings.candles.live:
            live = LIVE_WINDOW
            spec = ticks.tumbling_window(
                live.length_ms, self.grace_ms, name=live.name, on_late=self.on_late(live)
            )
            running = spec.reduce(add_to_candles, start_candles).current()
            running.apply(self.running(), expand=True).to_topic(
                self.output(topics.candles_live), key=_key
            )
        aside = sdf.filter(self.set_aside).apply(self.skipped_record)
        aside = aside.set_headers(_skipped_headers)
        aside.to_topic(self.output(topics.candles_skipped), key=_key)

    def check(self, arrival: Arrival | None, key: Any, timestamp: int, headers: Any) -> Arrival:
        if arrival is None:
            return Arrival(None, None, Reason.NOT_JSON.value, "empty message (null value)")
        if arrival.tick is None:
            return arrival
        if key != CLOCK_KEY:
            return refused(arrival, Reason.KEY_MISMATCH.value, "no key; the key must be the symbol")
        partition = message_context().partition
        symbol = arrival.tick.symbol
        home = self.homes.get(symbol)
        if home is None:  # murmur2 in pure Python: once per symbol, not per tick
            home = self.homes[symbol] = partition_of(symbol, self.partition_count())
        if home != partition:
            return refused(
                arrival,
                CandleReason.WRONG_PARTITION.value,
                f"a tick of {arrival.tick.symbol} in partition {partition}; its symbol's ticks "
                f"are in partition {home} (keyed by the symbol, as the gate writes them)",
            )
        return arrival

    def partition_count(self) -> int:
        if self.partitions is None:
            clean = self.app.topic(self.settings.topics.clean)
            self.partitions = int(clean.broker_config.num_partitions or 1)
        return self.partitions

    def window_tick(self, arrival: Arrival) -> WindowTick:
        self.symbol = arrival.tick.symbol  # type: ignore[union-attr]
        return arrival.tick  # type: ignore[return-value]

    def send(
        self,
        closed: StreamingDataFrame,
        window: CandleWindow,
        record: type[Candle] | type[SpreadStats],
        topic: str,
    ) -> None:
        """Each closed window of ``closed`` to ``topic``, one record per symbol."""
        closed.apply(self.records(window, record), expand=True).to_topic(
            self.output(topic), key=_key
        )

    def records(
        self, window: CandleWindow, record: type[Candle] | type[SpreadStats]
    ) -> Callable[[dict[str, Any]], list[tuple[str, bytes]]]:
        counts = self.counts

        def split(result: dict[str, Any]) -> list[tuple[str, bytes]]:
            start, end = result["start"], result["end"]
            out = [
                (symbol, record.of(symbol, start, end, value).to_json())
                for symbol, value in sorted(result["value"].items())
            ]
            counts.emitted[window.name] += len(out)
            if counts.on_delay is not None:
                counts.on_delay(time.time() - end / 1000)
            return out

        return split

    def running(self) -> Callable[[dict[str, Any]], list[tuple[str, bytes]]]:
        """The running minute of the tick's own symbol (the window holds the partition's)."""
        counts = self.counts

        def split(result: dict[str, Any]) -> list[tuple[str, bytes]]:
            symbol = self.symbol  # the tick being processed: set just before, on this thread
            value = result["value"][symbol]
            candle = Candle.of(symbol, result["start"], result["end"], value)
            counts.emitted[LIVE_WINDOW.name] += 1
            return [(symbol, candle.to_json())]

        return split

    def on_late(self, window: CandleWindow, *, of_ticks: bool = True) -> WindowOnLateCallback:
        """The engine's call for a value that came after ``window`` closed: counted, with no log
        line each. A window of ticks (``of_ticks``) also notes the tick, for the last branch to
        set it aside. (Only a second can find a tick late: the running minute closes after the
        tick's second. A window over closed seconds takes them in order, so never finds one
        late; if it did, the count would say so, and the tick - in its second - stays there.)"""
        late, counts, name = self.late, self.counts, window.name

        def note(
            value: Any,
            key: Any,
            timestamp_ms: int,
            late_by_ms: int,
            start: int,
            end: int,
            store_name: str,
            topic: str,
            partition: int,
            offset: int,
        ) -> bool:
            if of_ticks:
                late.setdefault((partition, offset), {})[name] = late_by_ms
            counts.late[name] += 1
            return False

        return note

    def set_aside(self, arrival: Arrival) -> bool:
        """Whether the message goes to the skipped topic: not a tick, or late for its second.
        A tick that is neither is counted here, after its windows: it went into one."""
        if arrival.reason is not None:
            return True
        context = message_context()
        if (context.partition, context.offset) in self.late:
            return True
        self.counts.windowed += 1
        return False

    def skipped_record(self, arrival: Arrival) -> tuple[str | None, bytes, str, str, str]:
        context = message_context()
        late = self.late.pop((context.partition, context.offset), None)
        symbol = arrival.tick.symbol if arrival.tick is not None else None
        raw = arrival.raw or b""
        if late is None:
            self.counts.skipped[arrival.reason or ""] += 1
            return symbol, raw, arrival.reason or "", arrival.detail, ""
        self.counts.skipped[CandleReason.LATE.value] += 1
        windows = ",".join(sorted(late))
        detail = f"came after its windows closed: {windows}"
        return symbol, raw, CandleReason.LATE.value, detail, str(max(late.values()))


def _rolled_up(
    spec: TumblingTimeWindowDefinition | HoppingTimeWindowDefinition,
    roll: Callable[[dict[str, list[float | int]], Seconds], dict[str, list[float | int]]],
) -> StreamingDataFrame:
    """The closed windows of ``spec``, a window over closed seconds: each second's value rolled
    into the window's with ``roll``."""
    return spec.reduce(
        lambda folded, second: roll(folded, second["value"]),
        lambda second: roll({}, second["value"]),
    ).final()


def _key(value: tuple[Any, ...]) -> Any:
    return value[0]


def _skipped_headers(value: Any, key: Any, timestamp: int, headers: Any) -> list[tuple[str, bytes]]:
    _, _, reason, detail, late_by = value
    context = message_context()
    out = [
        (HEADER_REASON, reason.encode()),
        (HEADER_DETAIL, detail.encode()),
        ("source.topic", context.topic.encode()),
        ("source.partition", str(context.partition).encode()),
        ("source.offset", str(context.offset).encode()),
    ]
    if late_by:
        windows = detail.rsplit(": ", 1)[-1]
        out += [(HEADER_WINDOWS, windows.encode()), (HEADER_LATE_BY_MS, late_by.encode())]
    return out
