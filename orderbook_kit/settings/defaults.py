"""The workbook's defaults, in one place.

Settings, the simulator, the sliders, the fault injector and the quality rules all start from
these values, so changing one here changes it everywhere (and an environment variable, read by
:mod:`orderbook_kit.settings.environment`, overrides it for one run).
"""

from __future__ import annotations

# The three-node cluster of notebook 08 (`broker start --nodes 3`): ports of its own, so it can run
# next to the single broker. Clients list every node, so they start while any one is down.
CLUSTER_SERVERS = "127.0.0.1:9192,127.0.0.1:9193,127.0.0.1:9194"
BOOTSTRAP_SERVERS = "127.0.0.1:9092"  # loopback only: the broker is never on the network
RAW_TOPIC = "orderbook.raw"
CLEAN_TOPIC = "orderbook.clean"
DLQ_TOPIC = "orderbook.dlq"
# The gate's memory (last seq, time and mid per symbol, how far each partition was checked),
# compacted: a restarted or rebalanced gate picks up where the last one left off.
GATE_STATE_TOPIC = "orderbook.quality.state"
# The order book (notebook 13): every update of a symbol's book, keyed by symbol (so one
# partition holds a symbol's updates in order), and the latest snapshot of each symbol's book
# (compacted: Kafka keeps at least the newest record of each key).
BOOK_UPDATES_TOPIC = "orderbook.book.updates"
BOOK_SNAPSHOTS_TOPIC = "orderbook.book.snapshots"
# What the depth feed receives from the exchange, before the book service checks it: updates and,
# now and then, the exchange's own snapshot (its recovery feed); and where the service puts what it
# cannot use, with the reason.
BOOK_RAW_TOPIC = "orderbook.book.raw"
BOOK_DLQ_TOPIC = "orderbook.book.dlq"
BOOK_GROUP = "orderbook-book"
# The book service's snapshots: after this many updates of a symbol, or this many seconds after
# its last snapshot (whichever first), so a reader that lost its book waits for at most so much.
BOOK_SNAPSHOT_EVERY = 500
BOOK_SNAPSHOT_INTERVAL_S = 5.0
# Analytics in the stream (notebook 14): the candles service's closed windows, one topic each
# (1-second and 1-minute OHLC candles of the mid, 5-minute spread statistics every minute), its
# running 1-minute candles for live charts (only when asked for), and the ticks it could not put
# in a window (late, or not windowable), with the reason.
CANDLES_1S_TOPIC = "orderbook.candles.1s"
CANDLES_1M_TOPIC = "orderbook.candles.1m"
SPREADS_5M_TOPIC = "orderbook.spreads.5m"
CANDLES_LIVE_TOPIC = "orderbook.candles.live"
CANDLES_SKIPPED_TOPIC = "orderbook.candles.skipped"
CANDLES_GROUP = "orderbook-candles"
# How long a window waits, after its end, for ticks that come late (in event time: until its
# partition has seen a tick this much later than the window's end). Longer catches later ticks;
# every candle comes out this much later.
CANDLES_GRACE_S = 1.0
# Exactly once: candles reach read-committed readers when the engine commits its transaction,
# every this many seconds - the other half of the delay from a window's end to its candle.
CANDLES_COMMIT_INTERVAL_S = 0.5
QUALITY_GROUP = "orderbook-quality"
# How the gate hands a batch on. "exactly-once": its clean, dead-letter and memory writes and the
# batch's offsets go in one Kafka transaction (readers that read committed data see each raw
# message once). "at-least-once": written, acknowledged, then committed; a crash in between
# writes a batch again (notebook 06 shows both).
GATE_DELIVERIES = ("exactly-once", "at-least-once")
GATE_DELIVERY = "exactly-once"
# Which gate of the group this is: its transactional id is <group>.<instance>, the same after a
# restart, so a restarted gate fences its dead predecessor. Two gates that run at once need two.
GATE_INSTANCE = "0"
STORE_GROUP = "orderbook-store"
STORE_CANDLES_GROUP = "orderbook-store-candles"
PARTITIONS = 3  # when the kit creates a topic

SYMBOL = "TTF-GAS"
SYMBOLS = ("TTF-GAS", "NBP-GAS", "EUA-CO2")  # the notebooks' small market of three instruments
TICK_INTERVAL_S = 0.05  # seconds between ticks of a live stream
VOLATILITY = 0.002  # standard deviation of the log-price per sqrt(second)
SEED = 42

TICK_COUNT = 200  # how many ticks the notebooks' longer cells produce
STREAM_SECONDS = 5.0  # how long the notebooks' live cells run
PERF_TICKS = 50_000  # how many ticks notebook 09 produces and reads for each throughput figure

# The Kafka client library behind TickProducer and read_ticks: kafka-python (pure Python, the
# notebooks' main path) or confluent-kafka (librdkafka, C: several times faster; `pip install
# -e .[fast]`). The quality gate's producers follow it; the gate and the store consume with
# kafka-python.
KAFKA_CLIENTS = ("kafka-python", "confluent")
KAFKA_CLIENT = "kafka-python"

CLIENT_TIMEOUT_S = 10.0  # bound on reaching the broker, and on each request
# How long the producer keeps trying to deliver a message before it counts as lost
# (kafka-python's own default, 120 s).
DELIVERY_TIMEOUT_S = 120.0

# A 5% move of the mid between two ticks of a gas contract is far outside normal trading; the
# default simulator moves about 0.05% per tick.
PRICE_JUMP_LIMIT = 0.05

# The hot store. Port 5433, not PostgreSQL's 5432, so a PostgreSQL already installed on the machine
# keeps its port; the kit's embedded server and docker-compose's both answer at this one URL.
# No password: both accept connections from this machine only (127.0.0.1) without one.
DATABASE_URL = "postgresql://orderbook@127.0.0.1:5433/orderbook"
DB_SCHEMA = "orderbook"  # the store's tables live in this PostgreSQL schema

# Prometheus metrics: off unless a port is given (ORDERBOOK_METRICS_PORT or --metrics-port), since
# several services on one machine cannot share one fixed port; 0 picks a free one.
METRICS_PORT = None
LOG_LEVEL = "WARNING"  # what a service logs (its outage and skip reports are on stdout anyway)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
METRICS_PORT_EXAMPLE = 9464  # the port OpenTelemetry's Prometheus exporter uses by convention
# Prometheus, where the kit runs it (`python -m orderbook_kit.lab.prometheus start`) and
# where notebook 10 asks it; Prometheus's own default port.
PROMETHEUS_URL = "http://127.0.0.1:9090"
# The broker's metrics (Prometheus's JMX exporter, `broker start --metrics-port`): off unless asked.
BROKER_METRICS_PORT = None
# How long the lab waits for a server it starts (a broker's JVM, PostgreSQL) to answer.
SERVER_START_TIMEOUT_S = 60.0
# Ports the lab hands out for listeners: below Linux's default ephemeral range (32768-60999), so
# the kernel never gives one to an outgoing connection. A client retrying a stopped broker on an
# ephemeral port can otherwise end up connected to itself on it, and the restarted broker then
# finds its port taken. Two test workers each get a range of their own (ORDERBOOK_FREE_PORTS).
FREE_PORTS = range(20000, 32000)

# Cold storage: the archive service's Parquet files. None: the workbook's git-ignored `.archive`
# folder; else a folder or an `s3://bucket/prefix` URL.
ARCHIVE_URL = None
ARCHIVE_GROUP = "orderbook-archive"
# A file is closed after this many ticks of one partition, or once its first tick waited this
# long: big enough files for analytics engines, fresh enough for a lesson to see them.
ARCHIVE_ROLL_TICKS = 10_000
ARCHIVE_ROLL_S = 60.0
# S3: None talks to Amazon S3 (credentials from the usual AWS variables); the kit's own S3 server
# (`python -m orderbook_kit.lab.s3 start`) answers at LOCAL_S3_URL.
S3_ENDPOINT_URL = None
LOCAL_S3_URL = "http://127.0.0.1:9000"  # MinIO's port, the usual one for a local S3

# The API (`python -m orderbook_kit.api`): FastAPI's usual port, on 127.0.0.1 only.
API_PORT = 8000
# Live ticks a WebSocket client may be behind before the API drops it (it may reconnect): seconds
# of a busy feed, so only a client that really cannot keep up is dropped.
API_STREAM_BUFFER = 1000
