"""Settings read from environment variables, with defaults that work on a learner's laptop.

Notebooks, services and tests all call :func:`load_settings`, so one environment variable changes
the whole pipeline (CI points ``KAFKA_BOOTSTRAP_SERVERS`` at its own throwaway broker this way).
Nothing is read at import time: call the function when you need the values.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from orderbook_kit.errors import SameTopicError, SettingsError
from orderbook_kit.settings import defaults, rules

__all__ = [
    "DEFAULT_BOOTSTRAP_SERVERS",
    "SETTINGS",
    "SettingSpec",
    "Settings",
    "environment_variables",
    "load_settings",
    "read_setting",
]

DEFAULT_BOOTSTRAP_SERVERS = defaults.BOOTSTRAP_SERVERS


@dataclass(frozen=True)
class SettingSpec:
    """How one field of :class:`Settings` is read: its variable and the rule it obeys (the rule
    also gives the value its type: "3" -> 3)."""

    variable: str
    rule: rules.Rule

    def parse(self, field: str, text: str) -> object:
        """``text`` (from the environment) as a checked value, or :class:`SettingsError`."""
        try:
            return self.rule(text.strip())
        except ValueError as exc:
            raise SettingsError(field, self.variable, str(exc)) from None


SETTINGS: dict[str, SettingSpec] = {
    "bootstrap_servers": SettingSpec("KAFKA_BOOTSTRAP_SERVERS", rules.bootstrap_servers),
    "cluster_servers": SettingSpec("KAFKA_CLUSTER_SERVERS", rules.bootstrap_servers),
    "kafka_client": SettingSpec("ORDERBOOK_KAFKA_CLIENT", rules.kafka_client),
    "raw_topic": SettingSpec("ORDERBOOK_TOPIC", rules.topic_name),
    "clean_topic": SettingSpec("ORDERBOOK_CLEAN_TOPIC", rules.topic_name),
    "dlq_topic": SettingSpec("ORDERBOOK_DLQ_TOPIC", rules.topic_name),
    "gate_state_topic": SettingSpec("ORDERBOOK_GATE_STATE_TOPIC", rules.topic_name),
    "partitions": SettingSpec(
        "ORDERBOOK_PARTITIONS",
        rules.whole_number(minimum=1, maximum=1000, example=defaults.PARTITIONS),
    ),
    "symbol": SettingSpec("ORDERBOOK_SYMBOL", rules.symbol),
    "tick_interval_s": SettingSpec(
        "TICK_INTERVAL_S",
        rules.seconds(minimum=0.001, maximum=3600, example=defaults.TICK_INTERVAL_S),
    ),
    "volatility": SettingSpec(
        "TICK_VOLATILITY", rules.number(minimum=0.0, maximum=1.0, example=defaults.VOLATILITY)
    ),
    "seed": SettingSpec("TICK_SEED", rules.whole_number(example=defaults.SEED)),
    "tick_count": SettingSpec(
        "TICK_COUNT", rules.whole_number(minimum=1, maximum=10_000_000, example=defaults.TICK_COUNT)
    ),
    "perf_ticks": SettingSpec(
        "PERF_TICKS",
        rules.whole_number(minimum=100, maximum=10_000_000, example=defaults.PERF_TICKS),
    ),
    "stream_seconds": SettingSpec("STREAM_SECONDS", rules.seconds(example=defaults.STREAM_SECONDS)),
    "client_timeout_s": SettingSpec(
        "KAFKA_CLIENT_TIMEOUT_S",
        rules.seconds(minimum=1, maximum=3600, example=defaults.CLIENT_TIMEOUT_S),
    ),
    "delivery_timeout_s": SettingSpec(
        "KAFKA_DELIVERY_TIMEOUT_S", rules.seconds(minimum=1, example=defaults.DELIVERY_TIMEOUT_S)
    ),
    "quality_group": SettingSpec("ORDERBOOK_QUALITY_GROUP", rules.group_id),
    "price_jump_limit": SettingSpec(
        "PRICE_JUMP_LIMIT", rules.number(above=0.0, maximum=10.0, example=defaults.PRICE_JUMP_LIMIT)
    ),
    "database_url": SettingSpec("DATABASE_URL", rules.database_url),
    "db_schema": SettingSpec("ORDERBOOK_DB_SCHEMA", rules.db_schema),
    "store_group": SettingSpec("ORDERBOOK_STORE_GROUP", rules.group_id),
    "metrics_port": SettingSpec("ORDERBOOK_METRICS_PORT", rules.metrics_port),
    "log_level": SettingSpec("ORDERBOOK_LOG_LEVEL", rules.log_level),
    "prometheus_url": SettingSpec("ORDERBOOK_PROMETHEUS_URL", rules.prometheus_url),
    "archive_url": SettingSpec("ORDERBOOK_ARCHIVE_URL", rules.archive_url),
    "archive_group": SettingSpec("ORDERBOOK_ARCHIVE_GROUP", rules.group_id),
    "archive_roll_ticks": SettingSpec(
        "ORDERBOOK_ARCHIVE_ROLL_TICKS",
        rules.whole_number(minimum=1, maximum=10_000_000, example=defaults.ARCHIVE_ROLL_TICKS),
    ),
    "archive_roll_s": SettingSpec(
        "ORDERBOOK_ARCHIVE_ROLL_S",
        rules.seconds(minimum=0.1, maximum=86_400, example=defaults.ARCHIVE_ROLL_S),
    ),
    "s3_endpoint_url": SettingSpec("AWS_ENDPOINT_URL", rules.s3_endpoint_url),
    "api_port": SettingSpec(
        "ORDERBOOK_API_PORT",
        rules.whole_number(minimum=0, maximum=65535, example=defaults.API_PORT),
    ),
    "api_stream_buffer": SettingSpec(
        "ORDERBOOK_API_STREAM_BUFFER",
        rules.whole_number(minimum=10, maximum=1_000_000, example=defaults.API_STREAM_BUFFER),
    ),
}


@dataclass(frozen=True)
class Settings:
    """One place for every tunable of the workbook. ``SETTINGS`` names each field's variable.

    Every value is checked when the settings are made (also by ``dataclasses.replace``), so a bad
    one fails at once with :class:`SettingsError` naming the variable and the fix.
    """

    # What each value means: orderbook_kit/settings/defaults.py, where they are all set.
    bootstrap_servers: str = defaults.BOOTSTRAP_SERVERS
    cluster_servers: str = defaults.CLUSTER_SERVERS  # the three-node cluster's
    kafka_client: str = defaults.KAFKA_CLIENT  # the library under TickProducer and read_ticks
    raw_topic: str = defaults.RAW_TOPIC
    clean_topic: str = defaults.CLEAN_TOPIC
    dlq_topic: str = defaults.DLQ_TOPIC
    gate_state_topic: str = defaults.GATE_STATE_TOPIC
    partitions: int = defaults.PARTITIONS
    symbol: str = defaults.SYMBOL
    tick_interval_s: float = defaults.TICK_INTERVAL_S
    volatility: float = defaults.VOLATILITY
    seed: int = defaults.SEED
    tick_count: int = defaults.TICK_COUNT
    perf_ticks: int = defaults.PERF_TICKS  # how many ticks notebook 09 measures with
    stream_seconds: float = defaults.STREAM_SECONDS
    client_timeout_s: float = defaults.CLIENT_TIMEOUT_S
    delivery_timeout_s: float = defaults.DELIVERY_TIMEOUT_S  # ingest stops, saying so, after it
    quality_group: str = defaults.QUALITY_GROUP
    price_jump_limit: float = defaults.PRICE_JUMP_LIMIT
    database_url: str = defaults.DATABASE_URL
    db_schema: str = defaults.DB_SCHEMA
    store_group: str = defaults.STORE_GROUP
    metrics_port: int | None = defaults.METRICS_PORT  # a service's /metrics port; None: none
    log_level: str = defaults.LOG_LEVEL  # a service's logging; DEBUG/INFO include kafka-python's
    prometheus_url: str = defaults.PROMETHEUS_URL
    archive_url: str | None = defaults.ARCHIVE_URL  # None: the workbook's .archive folder
    archive_group: str = defaults.ARCHIVE_GROUP
    archive_roll_ticks: int = defaults.ARCHIVE_ROLL_TICKS
    archive_roll_s: float = defaults.ARCHIVE_ROLL_S
    s3_endpoint_url: str | None = defaults.S3_ENDPOINT_URL  # None: Amazon S3
    api_port: int = defaults.API_PORT  # 0: any free port
    api_stream_buffer: int = defaults.API_STREAM_BUFFER  # ticks a WebSocket client may lag

    def __post_init__(self) -> None:
        for field, spec in SETTINGS.items():
            try:
                checked = spec.rule(getattr(self, field))
            except ValueError as exc:
                raise SettingsError(field, spec.variable, str(exc)) from None
            object.__setattr__(self, field, checked)  # "3" -> 3: the declared type, always
        self._check_combinations()

    def _check_combinations(self) -> None:
        # A gate whose output is its input reads its own writes forever.
        topics = [
            ("raw_topic", self.raw_topic),
            ("clean_topic", self.clean_topic),
            ("dlq_topic", self.dlq_topic),
            ("gate_state_topic", self.gate_state_topic),
        ]
        for index, (field, topic) in enumerate(topics):
            for other, other_topic in topics[:index]:
                if topic == other_topic:
                    raise SameTopicError(field, other, topic, variable_of)
        if self.delivery_timeout_s <= self.client_timeout_s:
            raise SettingsError(
                "delivery_timeout_s",
                SETTINGS["delivery_timeout_s"].variable,
                f"{self.delivery_timeout_s:g} s must be longer than KAFKA_CLIENT_TIMEOUT_S "
                f"({self.client_timeout_s:g} s), since a delivery needs at least one request; "
                f"raise it or lower KAFKA_CLIENT_TIMEOUT_S",
            )

    def isolated(self, label: str) -> Settings:
        """These settings with raw, clean and dead-letter topics, consumer groups and a database
        schema of their own (``orderbook.raw.<label>``, ``orderbook_<label>``...), so a lesson,
        test or benchmark run counts only its own messages and rows."""
        schema_suffix = re.sub(r"[^a-z0-9_]", "_", label.lower())
        return dataclasses.replace(
            self,
            raw_topic=f"{self.raw_topic}.{label}",
            clean_topic=f"{self.clean_topic}.{label}",
            dlq_topic=f"{self.dlq_topic}.{label}",
            gate_state_topic=f"{self.gate_state_topic}.{label}",
            quality_group=f"{self.quality_group}.{label}",
            store_group=f"{self.store_group}.{label}",
            archive_group=f"{self.archive_group}.{label}",
            db_schema=f"{self.db_schema}_{schema_suffix}"[:63],
        )

    def on_cluster(self) -> Settings:
        """These settings with clients pointed at the cluster (``cluster_servers``) instead of
        the single broker."""
        return dataclasses.replace(self, bootstrap_servers=self.cluster_servers)

    def as_environment(self) -> dict[str, str]:
        """These settings as environment variables (``{"KAFKA_BOOTSTRAP_SERVERS": ...}``), to run
        a service or a tool with exactly them."""
        values = {field: getattr(self, field) for field in SETTINGS}
        # An empty variable means "unset": the default (for metrics_port, None: no endpoint).
        return {
            spec.variable: "" if values[field] is None else str(values[field])
            for field, spec in SETTINGS.items()
        }


def variable_of(field: str) -> str:
    """The environment variable of Settings ``field``."""
    return SETTINGS[field].variable


def read_setting(field: str, environ: Mapping[str, str] | None = None) -> object:
    """One setting from ``environ`` (default ``os.environ``), checked; its default when unset.

    For commands that need one value only (``broker stop`` should work whatever TICK_COUNT says).
    """
    env = os.environ if environ is None else environ
    spec = SETTINGS[field]
    raw = env.get(spec.variable, "")
    if not raw.strip():
        return getattr(Settings, field)
    return spec.parse(field, raw)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default: ``os.environ``); unset means default.

    Raises :class:`SettingsError` (``VARIABLE: why; fix``) for the first unusable value.
    """
    env = os.environ if environ is None else environ
    values = {
        field: spec.parse(field, env[spec.variable])
        for field, spec in SETTINGS.items()
        if env.get(spec.variable, "").strip()
    }
    return Settings(**values)  # type: ignore[arg-type]


def environment_variables() -> dict[str, str]:
    """Variable name -> setting name, for the README and ``--help`` texts."""
    return {spec.variable: field for field, spec in SETTINGS.items()}
