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
from dataclasses import dataclass, field

from orderbook_kit.settings import defaults, rules
from orderbook_kit.settings.sections import (
    SECTIONS,
    ApiSettings,
    ArchiveSettings,
    BookSettings,
    CandlesSettings,
    GateSettings,
    KafkaSettings,
    LabSettings,
    LessonSettings,
    Section,
    ServiceSettings,
    SettingSpec,
    SimulatorSettings,
    StoreSettings,
    TopicSettings,
    section_named,
    variable_of,
)

__all__ = [
    "DEFAULT_BOOTSTRAP_SERVERS",
    "SETTINGS",
    "SettingSpec",
    "Settings",
    "environment_variables",
    "load_settings",
    "read_setting",
    "variable_of",
]

DEFAULT_BOOTSTRAP_SERVERS = defaults.BOOTSTRAP_SERVERS

# Every setting by its key, ``section.field`` (``kafka.client_timeout_s``): how it is read.
SETTINGS: dict[str, SettingSpec] = {
    section.key(field): spec for section in SECTIONS for field, spec in section.specs().items()
}


@dataclass(frozen=True)
class Settings:
    """Every tunable of the workbook, in sections (``settings.kafka.bootstrap_servers``,
    ``settings.topics.raw``...); each field's variable, rule and default: :mod:`.sections`.

    Every value is checked when its section is made (also by :meth:`replace`), so a bad one fails
    at once with :class:`SettingsError` naming the variable and the fix.
    """

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    gate: GateSettings = field(default_factory=GateSettings)
    book: BookSettings = field(default_factory=BookSettings)
    candles: CandlesSettings = field(default_factory=CandlesSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    lab: LabSettings = field(default_factory=LabSettings)
    lessons: LessonSettings = field(default_factory=LessonSettings)

    def replace(self, **sections: Section | Mapping[str, object]) -> Settings:
        """These settings with some values changed, by section::

            settings.replace(kafka={"client": "confluent"}, archive={"url": "/tmp/archive"})

        A section may also be given whole (``kafka=settings.kafka.replace(...)``). Every changed
        value is checked again.
        """
        changed: dict[str, Section] = {}
        for name, change in sections.items():
            current = getattr(self, name, None)
            if not isinstance(current, Section):
                known = ", ".join(section.name for section in SECTIONS)
                raise TypeError(f"Settings has no section {name!r}; its sections are {known}")
            changed[name] = change if isinstance(change, Section) else current.replace(**change)
        return dataclasses.replace(self, **changed)  # type: ignore[arg-type]

    def with_values(self, values: Mapping[str, object]) -> Settings:
        """These settings with ``values`` by key (``{"kafka.client": "confluent"}``)."""
        by_section: dict[str, dict[str, object]] = {}
        for key, value in values.items():
            section, _, field_name = key.partition(".")
            by_section.setdefault(section, {})[field_name] = value
        return self.replace(**by_section)

    def value(self, key: str) -> object:
        """One value by its key (``"topics.raw"``)."""
        section, _, field_name = key.partition(".")
        return getattr(getattr(self, section), field_name)

    def isolated(self, label: str) -> Settings:
        """These settings with topics (raw, clean, dead letters, the book's...), consumer groups
        and a database schema of their own (``orderbook.raw.<label>``, ``orderbook_<label>``...),
        so a lesson, test or benchmark run counts only its own messages and rows."""
        schema_suffix = re.sub(r"[^a-z0-9_]", "_", label.lower())
        topics = self.topics
        return self.replace(
            topics={field: f"{topic}.{label}" for field, topic in topics.named().items()},
            gate={"group": f"{self.gate.group}.{label}"},
            book={"group": f"{self.book.group}.{label}"},
            candles={"group": f"{self.candles.group}.{label}"},
            store={
                "group": f"{self.store.group}.{label}",
                "candles_group": f"{self.store.candles_group}.{label}",
                "schema": f"{self.store.schema}_{schema_suffix}"[:63],
            },
            archive={"group": f"{self.archive.group}.{label}"},
        )

    def on_cluster(self) -> Settings:
        """These settings with clients pointed at the cluster (``kafka.cluster_servers``)
        instead of the single broker."""
        return self.replace(kafka={"bootstrap_servers": self.kafka.cluster_servers})

    def as_environment(self) -> dict[str, str]:
        """These settings as environment variables (``{"KAFKA_BOOTSTRAP_SERVERS": ...}``), to run
        a service or a tool with exactly them."""
        # An empty variable means "unset": the default (for metrics ports, None: no endpoint).
        return {spec.variable: rules.as_text(self.value(key)) for key, spec in SETTINGS.items()}


def read_setting(key: str, environ: Mapping[str, str] | None = None) -> object:
    """One setting by key (``"kafka.bootstrap_servers"``) from ``environ`` (default
    ``os.environ``), checked; its default when unset.

    For commands that need one value only (``broker stop`` should work whatever TICK_COUNT says).
    """
    env = os.environ if environ is None else environ
    spec = SETTINGS[key]
    raw = env.get(spec.variable, "")
    if not raw.strip():
        section_name, _, field_name = key.partition(".")
        return section_named(section_name).default(field_name)
    return spec.parse(key, raw)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default: ``os.environ``); unset means default.

    Raises :class:`SettingsError` (``VARIABLE: why; fix``) for the first unusable value.
    """
    env = os.environ if environ is None else environ
    values = {
        key: spec.parse(key, env[spec.variable])
        for key, spec in SETTINGS.items()
        if env.get(spec.variable, "").strip()
    }
    return Settings().with_values(values)


def environment_variables() -> dict[str, str]:
    """Variable name -> setting key, for the README and ``--help`` texts."""
    return {spec.variable: key for key, spec in SETTINGS.items()}
