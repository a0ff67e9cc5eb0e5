"""The API under load: live WebSocket clients and HTTP requests at a steady rate, on 127.0.0.1.

    make bench                                          # after throughput.py; or:
    .venv/bin/python benchmarks/api_load.py --clients 50 --rate 60 --seconds 30

Runs the API as a process of its own (as deployed) over a hot store and topics of its own, feeds
it live ticks, and meanwhile holds ``--clients`` WebSocket clients and sends ``--rate`` HTTP
requests a second on a fixed schedule (open loop: a slow answer does not slow the senders down).
The requests are a mix of every endpoint, and about one in eight is a bad request - an unknown
symbol, a malformed parameter, a huge range - that must get its 4xx with a detail that says what
is wrong. It prints latency per endpoint, what each client received, and the API's memory (RSS)
over the run.

Exits 1 if anything failed: a request answered with another status than expected (a 5xx above
all), a timeout, a client dropped or missing a tick. Under this load nothing should.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from orderbook_kit.database.client import connect as connect_database
from orderbook_kit.kafka.admin import delete_pipeline
from orderbook_kit.kafka.producer import TickProducer, produce_in_background
from orderbook_kit.market.faults import FaultInjector
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.quality.gate import QualityGate
from orderbook_kit.runtime.launcher import start_service
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.store.sink import StoreSink
from orderbook_kit.store.tables import drop_schema

SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]
REQUEST_TIMEOUT_S = 10.0
SETTLE_S = 10.0  # after the feed ends: for the last ticks to reach every client
MEMORY_SAMPLE_S = 0.5
MAX_IN_FLIGHT = 100  # requests waiting for an answer at once: more means the API fell behind


@dataclass(frozen=True)
class Request:
    """One kind of request: how often, what to ask, and which status is right."""

    name: str
    weight: int
    path: Callable[[random.Random], str]
    status: int = 200
    detail: str = ""  # for a 4xx: a phrase its detail must contain


def _since(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def symbol(rand: random.Random) -> str:
    return rand.choice(SYMBOLS)


MIX = [
    Request("GET /quotes/latest", 28, lambda r: "/quotes/latest"),
    Request("GET /quotes/{symbol}/latest", 14, lambda r: f"/quotes/{symbol(r)}/latest"),
    Request("GET /candles/{symbol} (1 min, 24 h)", 14, lambda r: f"/candles/{symbol(r)}"),
    Request(
        "GET /candles/{symbol} (5 s, 10 min)",
        10,
        lambda r: f"/candles/{symbol(r)}?interval=5&start={_since(10)}",
    ),
    Request("GET /symbols", 5, lambda r: "/symbols"),
    Request("GET /health", 5, lambda r: "/health"),
    Request(
        "GET /ticks/{symbol}/recent (Kafka)",
        2,
        lambda r: f"/ticks/{symbol(r)}/recent?seconds=5&limit=100",
    ),
    Request("GET /dead-letters (Kafka)", 1, lambda r: "/dead-letters?seconds=600"),
    # Bad requests: each must get its 4xx and a detail saying what to change.
    Request("bad: unknown symbol", 3, lambda r: "/quotes/XYZ-GAS/latest", 404, "known symbols"),
    Request(
        "bad: malformed interval", 3, lambda r: "/candles/TTF-GAS?interval=abc", 422, "interval"
    ),
    Request(
        "bad: huge range",
        3,
        lambda r: f"/candles/TTF-GAS?interval=1&start={_since(60 * 24 * 365)}",
        422,
        "at most 10000",
    ),
    Request(
        "bad: time without a zone",
        2,
        lambda r: "/candles/TTF-GAS?start=2026-01-05T08:00:00",
        422,
        "is not an ISO 8601 time with a zone",
    ),
    Request("bad: not a symbol", 2, lambda r: "/quotes/ttf%20gas/latest", 422, "symbol"),
    Request(
        "bad: recent range too long",
        2,
        lambda r: "/ticks/TTF-GAS/recent?seconds=86400",
        422,
        "seconds",
    ),
]


@dataclass
class Figures:
    """Everything one run measured."""

    clients: int
    rate: float
    seconds: float
    feed_rate: float
    requests_sent: int = 0
    requests_per_s: float = 0.0
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    ticks_fed: int = 0
    ticks_per_client: dict[str, int] = field(default_factory=dict)
    clients_dropped: int = 0
    api_rss_mib: dict[str, float] = field(default_factory=dict)


class MemoryWatch:
    """Samples a process's resident memory (Linux /proc) in a thread, twice a second."""

    def __init__(self, pid: int) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_mib(self) -> float | None:
        try:
            text = self.status.read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None

    def _run(self) -> None:
        while not self._stop.wait(MEMORY_SAMPLE_S):
            rss = self.rss_mib()
            if rss is not None:
                self.samples.append(rss)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


def fill_pipeline(settings: Settings, history: int) -> None:
    """A history behind the API: raw ticks with faults through the gate, clean ones stored."""
    market = OrderbookSimulator(SYMBOLS, seed=31)
    messages = list(FaultInjector.uniform(0.005, seed=31).messages(market.ticks(history)))
    with TickProducer(settings) as producer:
        for message in messages:
            producer.send_raw(message.key, message.value)
    QualityGate(settings).run(count=len(messages), duration_s=120)
    clean = sum(message.fault is None for message in messages)
    StoreSink(settings).run(count=clean, duration_s=120)


class Client:
    """One WebSocket client that reads every live tick, counting them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ticks = 0
        self.dropped: str | None = None

    async def run(self, connected: asyncio.Event, stop: asyncio.Event) -> None:
        async with connect(self.url, open_timeout=REQUEST_TIMEOUT_S, max_size=None) as websocket:
            connected.set()
            while not stop.is_set():
                try:
                    text = await asyncio.wait_for(websocket.recv(), 0.5)
                except TimeoutError:
                    continue
                except ConnectionClosed as exc:
                    self.dropped = f"closed by the API: {exc.rcvd}"
                    return
                self.ticks += text.count('"seq":')  # one per tick; cheaper than parsing


async def one_request(
    http: httpx.AsyncClient, kind: Request, path: str, results: dict, errors: list[str]
) -> None:
    started = time.perf_counter()
    try:
        answer = await http.get(path)
    except httpx.HTTPError as exc:
        errors.append(f"{kind.name}: {type(exc).__name__} {exc}")
        return
    elapsed_ms = (time.perf_counter() - started) * 1000
    results[kind.name].append((answer.status_code, elapsed_ms))
    if answer.status_code != kind.status:
        errors.append(f"{kind.name}: {path} answered {answer.status_code}: {answer.text[:200]}")
    elif kind.status >= 400:
        detail = answer.json().get("detail", "")
        if kind.detail not in detail:
            errors.append(f"{kind.name}: {path}: the detail {detail!r} lacks {kind.detail!r}")


async def load(url: str, settings: Settings, figures: Figures) -> None:
    ws_url = url.replace("http://", "ws://") + "/ws/ticks"
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits) as http:
        clients = [Client(ws_url) for _ in range(figures.clients)]
        stop = asyncio.Event()
        connected = [asyncio.Event() for _ in clients]
        readers = [
            asyncio.create_task(client.run(ready, stop))
            for client, ready in zip(clients, connected, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in connected)), 30)
        deadline = time.monotonic() + 30
        while True:  # every client subscribed, and the live stream reading the topic
            health = await http.get("/health")
            if health.status_code == 200 and health.json()["stream_clients"] == len(clients):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"error: the API was not ready in 30 s: {health.text}")
            await asyncio.sleep(0.2)

        print(
            f"{len(clients)} clients connected; the load runs for {figures.seconds:g} s", flush=True
        )
        market = OrderbookSimulator(SYMBOLS, interval_s=len(SYMBOLS) / figures.feed_rate, seed=32)
        feed = produce_in_background(
            market.stream(duration_s=figures.seconds), settings, topic=settings.topics.clean
        )
        rand = random.Random(33)
        kinds = rand.choices(
            MIX, weights=[k.weight for k in MIX], k=int(figures.rate * figures.seconds)
        )
        results: dict[str, list[tuple[int, float]]] = defaultdict(list)
        pending: set[asyncio.Task[None]] = set()
        started = time.monotonic()
        for index, kind in enumerate(kinds):
            delay = started + index / figures.rate - time.monotonic()
            await asyncio.sleep(max(delay, 0))  # yields even when behind schedule
            if len(pending) >= MAX_IN_FLIGHT:
                # The API is not keeping up: more waiting requests would only measure the queue.
                figures.errors.append(f"{MAX_IN_FLIGHT} requests unanswered at once; stopped")
                break
            task = asyncio.create_task(
                one_request(http, kind, kind.path(rand), results, figures.errors)
            )
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending, timeout=REQUEST_TIMEOUT_S * 2)
        print("every request answered", flush=True)
        figures.requests_sent = sum(len(answers) for answers in results.values())
        figures.requests_per_s = figures.requests_sent / (time.monotonic() - started)
        figures.ticks_fed = await asyncio.to_thread(feed.join, timeout_s=60)
        settle = time.monotonic() + SETTLE_S
        while any(c.ticks < figures.ticks_fed for c in clients) and time.monotonic() < settle:
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*readers)

    for name, answers in sorted(results.items()):
        latencies = sorted(ms for _, ms in answers)
        figures.latency_ms[name] = {
            "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "max": latencies[-1],
            "count": float(len(latencies)),
        }
        figures.statuses[name] = {str(k): v for k, v in Counter(s for s, _ in answers).items()}
    for index, client in enumerate(clients):
        figures.ticks_per_client[str(index)] = client.ticks
        if client.dropped is not None:
            figures.clients_dropped += 1
            figures.errors.append(f"client {index}: {client.dropped}")
        elif client.ticks != figures.ticks_fed:
            figures.errors.append(
                f"client {index} received {client.ticks} of {figures.ticks_fed} live ticks"
            )


def report(figures: Figures) -> None:
    print(
        f"-- the API under load: {figures.clients} WebSocket clients, "
        f"{figures.rate:g} requests/s for {figures.seconds:g} s, a live feed of "
        f"{figures.feed_rate:g} ticks/s"
    )
    print(f"{'request':<40} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses")
    for name, row in figures.latency_ms.items():
        statuses = " ".join(f"{k}x{v}" for k, v in sorted(figures.statuses[name].items()))
        print(
            f"{name:<40} {row['count']:>6.0f} {row['p50']:>8.1f} {row['p99']:>8.1f} "
            f"{row['max']:>8.1f}  {statuses}"
        )
    print(f"requests: {figures.requests_sent} sent at {figures.requests_per_s:.1f}/s")
    per_client = list(figures.ticks_per_client.values())
    print(
        f"live ticks: {figures.ticks_fed} fed; each client received {min(per_client)}-"
        f"{max(per_client)}; {figures.clients_dropped} clients dropped"
    )
    rss = figures.api_rss_mib
    print(
        f"API memory (RSS): {rss['before']:.0f} MiB before the load, peak {rss['peak']:.0f} MiB, "
        f"{rss['after']:.0f} MiB after it"
    )
    print(f"errors: {len(figures.errors)}")
    for error in figures.errors[:20]:
        print(f"  {error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="WebSocket clients (%(default)s)")
    parser.add_argument("--rate", type=float, default=60, help="HTTP requests/s (%(default)s)")
    parser.add_argument("--seconds", type=float, default=30, help="how long (%(default)s)")
    parser.add_argument(
        "--feed-rate", type=float, default=300, help="live ticks/s (default %(default)s)"
    )
    parser.add_argument(
        "--history", type=int, default=6000, help="ticks in the hot store (default %(default)s)"
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    arguments = parser.parse_args()
    for name in ("clients", "rate", "seconds", "feed_rate", "history"):
        if getattr(arguments, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be above 0")
    settings = load_settings().isolated(f"apiload-{uuid.uuid4().hex[:8]}")
    figures = Figures(arguments.clients, arguments.rate, arguments.seconds, arguments.feed_rate)
    api = None
    try:
        print(f"filling a hot store and topics of the run's own with {arguments.history:,} ticks")
        fill_pipeline(settings, arguments.history)
        api = start_service("api", settings, "--port", "0")
        url = api.api_url()
        print(f"the API at {url}, pid {api.pid}", flush=True)
        with MemoryWatch(api.pid) as memory:
            figures.api_rss_mib["before"] = memory.rss_mib() or 0.0
            asyncio.run(load(url, settings, figures))
            figures.api_rss_mib["after"] = memory.rss_mib() or 0.0
        figures.api_rss_mib["peak"] = max(memory.samples, default=0.0)
    finally:
        if api is not None:
            api.stop()
        delete_pipeline(settings)
        with connect_database(settings.store.database_url, timeout_s=10) as conn:
            drop_schema(conn, settings.store.schema)
    report(figures)
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(asdict(figures), indent=2) + "\n")
        print(f"figures written to {arguments.json}")
    return 1 if figures.errors else 0


if __name__ == "__main__":
    sys.exit(main())
