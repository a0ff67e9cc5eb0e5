"""The sections of the settings, one per part of the platform: Kafka, topics, simulator, gate,
store, archive, API, service, lab, lessons.

Each field is declared once, with its environment variable, the rule its value obeys and its
default (the values themselves, with why they are what they are, in :mod:`.defaults`)::

    client_timeout_s: float = setting("KAFKA_CLIENT_TIMEOUT_S", rules.seconds(...), defaults...)

A section checks every value when it is made (also by :meth:`Section.replace`), so a bad one
fails at once with :class:`SettingsError` naming its variable and the fix; rules that tie two
values of one section together (no two topics alike) live with the section.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from orderbook_kit.errors import SameTopicError, SettingsError
from orderbook_kit.settings import defaults, rules

__all__ = [
    "SECTIONS",
    "ApiSettings",
    "ArchiveSettings",
    "BookSettings",
    "CandlesSettings",
    "GateSettings",
    "KafkaSettings",
    "LabSettings",
    "LessonSettings",
    "Section",
    "ServiceSettings",
    "SettingSpec",
    "SimulatorSettings",
    "StoreSettings",
    "TopicSettings",
    "section_named",
    "setting",
]

_SPEC = "orderbook_kit.setting"  # where a field's SettingSpec sits in its metadata


@dataclass(frozen=True)
class SettingSpec:
    """How one setting is read: its variable and the rule it obeys (the rule also gives the
    value its type: "3" -> 3)."""

    variable: str
    rule: rules.Rule

    def parse(self, key: str, text: str) -> object:
        """``text`` (from the environment or a flag) as a checked value, or SettingsError."""
        try:
            return self.rule(text.strip())
        except ValueError as exc:
            raise SettingsError(key, self.variable, str(exc)) from None


def setting(variable: str, rule: rules.Rule, default: object) -> Any:
    """A section field read from ``variable``, checked by ``rule``, ``default`` when unset."""
    return dataclasses.field(default=default, metadata={_SPEC: SettingSpec(variable, rule)})


class Section:
    """What every section does: check its values when made, and say how each is read."""

    name: ClassVar[str]  # its attribute on Settings, and the first part of its keys

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            spec: SettingSpec = field.metadata[_SPEC]
            try:
                checked = spec.rule(getattr(self, field.name))
            except ValueError as exc:
                raise SettingsError(self.key(field.name), spec.variable, str(exc)) from None
            object.__setattr__(self, field.name, checked)  # "3" -> 3: the declared type, always
        self.check()

    def check(self) -> None:
        """Rules between this section's values (none unless a section says so)."""

    def replace(self, **changes: object) -> Self:
        """This section with ``changes``, every value checked again."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def key(cls, field: str) -> str:
        """The setting's key, ``section.field`` (``kafka.client_timeout_s``)."""
        return f"{cls.name}.{field}"

    @classmethod
    def specs(cls) -> dict[str, SettingSpec]:
        """Field name -> how it is read, in declaration order."""
        return {f.name: f.metadata[_SPEC] for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def default(cls, field: str) -> object:
        """The default of ``field``."""
        return next(f.default for f in dataclasses.fields(cls) if f.name == field)  # type: ignore[arg-type]


@dataclass(frozen=True)
class KafkaSettings(Section):
    """Where Kafka is and how the kit's clients talk to it."""

    name: ClassVar[str] = "kafka"

    bootstrap_servers: str = setting(
        "KAFKA_BOOTSTRAP_SERVERS", rules.bootstrap_servers, defaults.BOOTSTRAP_SERVERS
    )
    # The three-node cluster's (settings.on_cluster() points the clients at it).
    cluster_servers: str = setting(
        "KAFKA_CLUSTER_SERVERS", rules.bootstrap_servers, defaults.CLUSTER_SERVERS
    )
    # The library under TickProducer and read_ticks.
    client: str = setting("ORDERBOOK_KAFKA_CLIENT", rules.kafka_client, defaults.KAFKA_CLIENT)
    client_timeout_s: float = setting(
        "KAFKA_CLIENT_TIMEOUT_S",
        rules.seconds(minimum=1, maximum=3600, example=defaults.CLIENT_TIMEOUT_S),
        defaults.CLIENT_TIMEOUT_S,
    )
    # A producer stops, saying so, after trying this long to deliver.
    delivery_timeout_s: float = setting(
        "KAFKA_DELIVERY_TIMEOUT_S",
        rules.seconds(minimum=1, example=defaults.DELIVERY_TIMEOUT_S),
        defaults.DELIVERY_TIMEOUT_S,
    )

    def check(self) -> None:
        if self.delivery_timeout_s <= self.client_timeout_s:
            raise SettingsError(
                self.key("delivery_timeout_s"),
                "KAFKA_DELIVERY_TIMEOUT_S",
                f"{self.delivery_timeout_s:g} s must be longer than KAFKA_CLIENT_TIMEOUT_S "
                f"({self.client_timeout_s:g} s), since a delivery needs at least one request; "
                f"raise it or lower KAFKA_CLIENT_TIMEOUT_S",
            )


@dataclass(frozen=True)
class TopicSettings(Section):
    """The pipeline's topics, and how many partitions the kit gives a topic it creates."""

    name: ClassVar[str] = "topics"

    raw: str = setting("ORDERBOOK_TOPIC", rules.topic_name, defaults.RAW_TOPIC)
    clean: str = setting("ORDERBOOK_CLEAN_TOPIC", rules.topic_name, defaults.CLEAN_TOPIC)
    dead_letters: str = setting("ORDERBOOK_DLQ_TOPIC", rules.topic_name, defaults.DLQ_TOPIC)
    gate_state: str = setting(
        "ORDERBOOK_GATE_STATE_TOPIC", rules.topic_name, defaults.GATE_STATE_TOPIC
    )
    book_updates: str = setting(
        "ORDERBOOK_BOOK_UPDATES_TOPIC", rules.topic_name, defaults.BOOK_UPDATES_TOPIC
    )
    book_snapshots: str = setting(
        "ORDERBOOK_BOOK_SNAPSHOTS_TOPIC", rules.topic_name, defaults.BOOK_SNAPSHOTS_TOPIC
    )
    book_raw: str = setting("ORDERBOOK_BOOK_RAW_TOPIC", rules.topic_name, defaults.BOOK_RAW_TOPIC)
    book_dead_letters: str = setting(
        "ORDERBOOK_BOOK_DLQ_TOPIC", rules.topic_name, defaults.BOOK_DLQ_TOPIC
    )
    candles_1s: str = setting(
        "ORDERBOOK_CANDLES_1S_TOPIC", rules.topic_name, defaults.CANDLES_1S_TOPIC
    )
    candles_1m: str = setting(
        "ORDERBOOK_CANDLES_1M_TOPIC", rules.topic_name, defaults.CANDLES_1M_TOPIC
    )
    spreads_5m: str = setting(
        "ORDERBOOK_SPREADS_5M_TOPIC", rules.topic_name, defaults.SPREADS_5M_TOPIC
    )
    candles_live: str = setting(
        "ORDERBOOK_CANDLES_LIVE_TOPIC", rules.topic_name, defaults.CANDLES_LIVE_TOPIC
    )
    candles_skipped: str = setting(
        "ORDERBOOK_CANDLES_SKIPPED_TOPIC", rules.topic_name, defaults.CANDLES_SKIPPED_TOPIC
    )
    partitions: int = setting(
        "ORDERBOOK_PARTITIONS",
        rules.whole_number(minimum=1, maximum=1000, example=defaults.PARTITIONS),
        defaults.PARTITIONS,
    )

    def named(self) -> dict[str, str]:
        """Every topic of the pipeline: field name -> topic name."""
        return {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name != "partitions"
        }

    def check(self) -> None:
        # A gate whose output is its input reads its own writes forever.
        names = tuple(self.named())
        for index, field in enumerate(names):
            for other in names[:index]:
                if getattr(self, field) == getattr(self, other):
                    raise SameTopicError(
                        self.key(field), self.key(other), getattr(self, field), variable_of
                    )


@dataclass(frozen=True)
class SimulatorSettings(Section):
    """The simulated market: which instrument, how fast, how wild, from which seed."""

    name: ClassVar[str] = "simulator"

    symbol: str = setting("ORDERBOOK_SYMBOL", rules.symbol, defaults.SYMBOL)
    tick_interval_s: float = setting(
        "TICK_INTERVAL_S",
        rules.seconds(minimum=0.001, maximum=3600, example=defaults.TICK_INTERVAL_S),
        defaults.TICK_INTERVAL_S,
    )
    volatility: float = setting(
        "TICK_VOLATILITY",
        rules.number(minimum=0.0, maximum=1.0, example=defaults.VOLATILITY),
        defaults.VOLATILITY,
    )
    seed: int = setting("TICK_SEED", rules.whole_number(example=defaults.SEED), defaults.SEED)


@dataclass(frozen=True)
class GateSettings(Section):
    """The quality gate: its consumer group, how it delivers, which instance it is, and how far
    a price may jump."""

    name: ClassVar[str] = "gate"

    group: str = setting("ORDERBOOK_QUALITY_GROUP", rules.group_id, defaults.QUALITY_GROUP)
    delivery: str = setting("ORDERBOOK_GATE_DELIVERY", rules.gate_delivery, defaults.GATE_DELIVERY)
    instance: str = setting("ORDERBOOK_GATE_INSTANCE", rules.instance_name, defaults.GATE_INSTANCE)
    price_jump_limit: float = setting(
        "PRICE_JUMP_LIMIT",
        rules.number(above=0.0, maximum=10.0, example=defaults.PRICE_JUMP_LIMIT),
        defaults.PRICE_JUMP_LIMIT,
    )

    @property
    def transactional_id(self) -> str:
        """The gate's transactional id: the same after a restart, so it fences its predecessor."""
        return f"{self.group}.{self.instance}"


@dataclass(frozen=True)
class BookSettings(Section):
    """The book service: its consumer group, which instance it is, and how often it publishes
    each symbol's book as a snapshot."""

    name: ClassVar[str] = "book"

    group: str = setting("ORDERBOOK_BOOK_GROUP", rules.group_id, defaults.BOOK_GROUP)
    instance: str = setting("ORDERBOOK_BOOK_INSTANCE", rules.instance_name, defaults.GATE_INSTANCE)
    snapshot_every: int = setting(
        "ORDERBOOK_BOOK_SNAPSHOT_EVERY",
        rules.whole_number(minimum=1, maximum=10**9, example=defaults.BOOK_SNAPSHOT_EVERY),
        defaults.BOOK_SNAPSHOT_EVERY,
    )
    snapshot_interval_s: float = setting(
        "ORDERBOOK_BOOK_SNAPSHOT_INTERVAL_S",
        rules.seconds(minimum=0.01, maximum=86400, example=defaults.BOOK_SNAPSHOT_INTERVAL_S),
        defaults.BOOK_SNAPSHOT_INTERVAL_S,
    )

    @property
    def transactional_id(self) -> str:
        """The service's transactional id: the same after a restart, so it fences its
        predecessor."""
        return f"{self.group}.{self.instance}"


@dataclass(frozen=True)
class CandlesSettings(Section):
    """The candles service: its consumer group, which instance it is, the grace period of its
    windows, how often it commits, where it keeps its state, and whether it also sends running
    candles."""

    name: ClassVar[str] = "candles"

    group: str = setting("ORDERBOOK_CANDLES_GROUP", rules.group_id, defaults.CANDLES_GROUP)
    instance: str = setting(
        "ORDERBOOK_CANDLES_INSTANCE", rules.instance_name, defaults.GATE_INSTANCE
    )
    grace_s: float = setting(
        "ORDERBOOK_CANDLES_GRACE_S",
        rules.seconds(minimum=0, maximum=3600, example=defaults.CANDLES_GRACE_S),
        defaults.CANDLES_GRACE_S,
    )
    commit_interval_s: float = setting(
        "ORDERBOOK_CANDLES_COMMIT_INTERVAL_S",
        rules.seconds(minimum=0.01, maximum=60, example=defaults.CANDLES_COMMIT_INTERVAL_S),
        defaults.CANDLES_COMMIT_INTERVAL_S,
    )
    # Its windows' state (RocksDB), under <folder>/<instance>; the workbook's .candles if unset.
    # Only a cache: a restart on an empty folder rebuilds it from the changelog topics.
    state_dir: str | None = setting("ORDERBOOK_CANDLES_STATE_DIR", rules.folder, None)
    live: bool = setting("ORDERBOOK_CANDLES_LIVE", rules.on_off, False)

    @property
    def grace_ms(self) -> int:
        return round(self.grace_s * 1000)


@dataclass(frozen=True)
class StoreSettings(Section):
    """The hot store: the PostgreSQL database, the schema of its tables, its consumer group."""

    name: ClassVar[str] = "store"

    database_url: str = setting("DATABASE_URL", rules.database_url, defaults.DATABASE_URL)
    schema: str = setting("ORDERBOOK_DB_SCHEMA", rules.db_schema, defaults.DB_SCHEMA)
    group: str = setting("ORDERBOOK_STORE_GROUP", rules.group_id, defaults.STORE_GROUP)
    # `python -m orderbook_kit.store candles`: the streamed candles into the candles table.
    candles_group: str = setting(
        "ORDERBOOK_STORE_CANDLES_GROUP", rules.group_id, defaults.STORE_CANDLES_GROUP
    )


@dataclass(frozen=True)
class ArchiveSettings(Section):
    """Cold storage: where the Parquet files go, when a file is closed, which S3."""

    name: ClassVar[str] = "archive"

    url: str | None = setting(  # None: the workbook's .archive folder
        "ORDERBOOK_ARCHIVE_URL", rules.archive_url, defaults.ARCHIVE_URL
    )
    group: str = setting("ORDERBOOK_ARCHIVE_GROUP", rules.group_id, defaults.ARCHIVE_GROUP)
    roll_ticks: int = setting(
        "ORDERBOOK_ARCHIVE_ROLL_TICKS",
        rules.whole_number(minimum=1, maximum=10_000_000, example=defaults.ARCHIVE_ROLL_TICKS),
        defaults.ARCHIVE_ROLL_TICKS,
    )
    roll_s: float = setting(
        "ORDERBOOK_ARCHIVE_ROLL_S",
        rules.seconds(minimum=0.1, maximum=86_400, example=defaults.ARCHIVE_ROLL_S),
        defaults.ARCHIVE_ROLL_S,
    )
    s3_endpoint_url: str | None = setting(  # None: Amazon S3
        "AWS_ENDPOINT_URL", rules.s3_endpoint_url, defaults.S3_ENDPOINT_URL
    )


@dataclass(frozen=True)
class ApiSettings(Section):
    """The API: its port, and how far a WebSocket client may fall behind."""

    name: ClassVar[str] = "api"

    port: int = setting(  # 0: any free port
        "ORDERBOOK_API_PORT",
        rules.whole_number(minimum=0, maximum=65535, example=defaults.API_PORT),
        defaults.API_PORT,
    )
    stream_buffer: int = setting(
        "ORDERBOOK_API_STREAM_BUFFER",
        rules.whole_number(minimum=10, maximum=1_000_000, example=defaults.API_STREAM_BUFFER),
        defaults.API_STREAM_BUFFER,
    )


@dataclass(frozen=True)
class ServiceSettings(Section):
    """What every service has: a metrics endpoint and a log."""

    name: ClassVar[str] = "service"

    metrics_port: int | None = setting(  # None: no endpoint
        "ORDERBOOK_METRICS_PORT", rules.metrics_port, defaults.METRICS_PORT
    )
    log_level: str = setting(  # DEBUG and INFO include kafka-python's
        "ORDERBOOK_LOG_LEVEL", rules.log_level, defaults.LOG_LEVEL
    )


@dataclass(frozen=True)
class LabSettings(Section):
    """The lab's servers: where Prometheus answers, how long a broker may take to start, its
    metrics port, and where free ports are looked for."""

    name: ClassVar[str] = "lab"

    prometheus_url: str = setting(
        "ORDERBOOK_PROMETHEUS_URL", rules.prometheus_url, defaults.PROMETHEUS_URL
    )
    start_timeout_s: float = setting(
        "KAFKA_START_TIMEOUT_S",
        rules.seconds(minimum=1, maximum=3600, example=120),
        defaults.SERVER_START_TIMEOUT_S,
    )
    broker_metrics_port: int | None = setting(  # None: no JMX exporter
        "KAFKA_METRICS_PORT", rules.metrics_port, defaults.BROKER_METRICS_PORT
    )
    free_ports: range = setting("ORDERBOOK_FREE_PORTS", rules.port_range, defaults.FREE_PORTS)


@dataclass(frozen=True)
class LessonSettings(Section):
    """How much the notebooks do: ticks in their longer cells, seconds of live cells, and the
    ticks notebook 09 measures with."""

    name: ClassVar[str] = "lessons"

    tick_count: int = setting(
        "TICK_COUNT",
        rules.whole_number(minimum=1, maximum=10_000_000, example=defaults.TICK_COUNT),
        defaults.TICK_COUNT,
    )
    stream_seconds: float = setting(
        "STREAM_SECONDS", rules.seconds(example=defaults.STREAM_SECONDS), defaults.STREAM_SECONDS
    )
    perf_ticks: int = setting(
        "PERF_TICKS",
        rules.whole_number(minimum=100, maximum=10_000_000, example=defaults.PERF_TICKS),
        defaults.PERF_TICKS,
    )


# In the order Settings holds them.
SECTIONS: tuple[type[Section], ...] = (
    KafkaSettings,
    TopicSettings,
    SimulatorSettings,
    GateSettings,
    BookSettings,
    CandlesSettings,
    StoreSettings,
    ArchiveSettings,
    ApiSettings,
    ServiceSettings,
    LabSettings,
    LessonSettings,
)


def section_named(name: str) -> type[Section]:
    """The section whose attribute on Settings is ``name`` (``"kafka"``)."""
    return next(section for section in SECTIONS if section.name == name)


def variable_of(key: str) -> str:
    """The environment variable of the setting ``key`` (``topics.clean``)."""
    section, _, field = key.partition(".")
    return section_named(section).specs()[field].variable
