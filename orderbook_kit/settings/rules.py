"""What a usable setting looks like: turn text into a typed value, or say why not and how to fix it.

One rule per kind of setting, shared by environment variables
(:mod:`orderbook_kit.settings.environment`) and command-line flags
(:mod:`orderbook_kit.runtime.service`), so ``TICK_COUNT=0`` and ``--count 0`` are refused with
the same words. Each rule raises ``ValueError("<why>; <fix>")``; the caller adds the name of
the variable or flag the value came from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from orderbook_kit.settings import defaults

__all__ = [
    "SYMBOL_PATTERN",
    "Rule",
    "archive_url",
    "as_text",
    "bootstrap_servers",
    "database_url",
    "db_schema",
    "gate_delivery",
    "group_id",
    "instance_name",
    "kafka_client",
    "log_level",
    "metrics_port",
    "number",
    "port_range",
    "probability",
    "prometheus_url",
    "redacted_url",
    "s3_endpoint_url",
    "seconds",
    "symbol",
    "topic_name",
    "whole_number",
]

# Upper-case exchange-style codes: TTF-GAS, NBP.GAS, EUA_DEC26. No spaces, at most 32 characters.
# One rule for a symbol in a setting, a tick (market.tick) and an API path.
SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9._-]{0,31}$"

Rule = Callable[[Any], Any]  # typed value in, checked value out; ValueError("why; fix") if bad

# Kafka's own rule for topic names (kafka.common.internals.Topic): these characters, 1-249 long.
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_SYMBOL = re.compile(SYMBOL_PATTERN)
# A PostgreSQL identifier that needs no quoting: lower case, at most 63 bytes.
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
MAX_GROUP_ID_LENGTH = 249


def whole_number(*, minimum: int | None = None, maximum: int | None = None, example: int) -> Rule:
    """An integer (text like "3", or an int), optionally within [minimum, maximum]."""

    def rule(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"{value!r} is not a whole number; use e.g. {example}")
        try:
            number_ = int(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a whole number; use e.g. {example}") from None
        _check_range(number_, minimum, maximum, example)
        return number_

    return rule


def number(
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    example: float,
    unit: str = "",
) -> Rule:
    """A finite float within the bounds (``above`` is exclusive, ``minimum`` inclusive)."""

    def rule(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{value!r} is not a number; use e.g. {example}{unit}")
        try:
            number_ = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number; use e.g. {example}{unit}") from None
        if not math.isfinite(number_):
            raise ValueError(f"{value!r} is not a finite number; use e.g. {example}{unit}")
        if above is not None and not number_ > above:
            raise ValueError(f"must be more than {above:g}{unit}, got {value}; use e.g. {example}")
        _check_range(number_, minimum, maximum, example, unit)
        return number_

    return rule


def seconds(*, minimum: float = 0.0, maximum: float = 86_400.0, example: float) -> Rule:
    """A duration in seconds: finite, above zero (and at least ``minimum``), at most a day."""
    base = number(above=0.0, maximum=maximum, example=example, unit=" s")

    def rule(value: Any) -> float:
        checked = float(base(value))
        if checked < minimum:
            raise ValueError(f"must be at least {minimum:g} s, got {value}; use e.g. {example}")
        return checked

    return rule


def probability(value: Any) -> float:
    return float(number(minimum=0.0, maximum=1.0, example=0.01)(value))


def _check_range(
    value: float, minimum: float | None, maximum: float | None, example: float, unit: str = ""
) -> None:
    if minimum is not None and value < minimum:
        raise ValueError(f"must be at least {minimum:g}{unit}, got {value:g}; use e.g. {example}")
    if maximum is not None and value > maximum:
        raise ValueError(f"must be at most {maximum:g}{unit}, got {value:g}; use e.g. {example}")


def bootstrap_servers(value: Any) -> str:
    """``host:port[,host:port...]`` with ports 1-65535."""
    text = str(value).strip()
    fix = "use host:port, e.g. 127.0.0.1:9092"
    if not text:
        raise ValueError(f"is empty; {fix}")
    for address in text.split(","):
        host, colon, port = address.strip().rpartition(":")
        if not colon or not host:
            raise ValueError(f"{address.strip()!r} is not host:port; {fix}")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{address.strip()!r} has port {port!r}, not 1-65535; {fix}")
    return text


def topic_name(value: Any) -> str:
    """A name Kafka accepts for a topic."""
    text = str(value)
    if not _TOPIC.fullmatch(text) or text in {".", ".."}:
        raise ValueError(
            f"{text!r} is not a valid Kafka topic name; use 1-249 letters, digits, '.', '_' or "
            f"'-', e.g. {defaults.RAW_TOPIC}"
        )
    return text


def group_id(value: Any) -> str:
    text = str(value)
    if not text.strip() or len(text) > MAX_GROUP_ID_LENGTH or not text.isprintable():
        raise ValueError(
            f"{text!r} is not a usable consumer group id; use 1-{MAX_GROUP_ID_LENGTH} printable "
            f"characters, e.g. {defaults.QUALITY_GROUP}"
        )
    return text


def symbol(value: Any) -> str:
    text = str(value)
    if not _SYMBOL.fullmatch(text):
        raise ValueError(
            f"{text!r} is not an instrument code; use 1-32 upper-case letters, digits, '.', '_' "
            "or '-', starting with a letter or digit, e.g. TTF-GAS"
        )
    return text


def database_url(value: Any) -> str:
    """A PostgreSQL URL: ``postgresql://user[:password]@host:port/database``."""
    text = str(value).strip()
    fix = f"use postgresql://user@host:port/database, e.g. {defaults.DATABASE_URL}"
    scheme, separator, rest = text.partition("://")
    if not separator or scheme not in {"postgresql", "postgres"}:
        raise ValueError(f"{redacted_url(text)!r} is not a postgresql:// URL; {fix}")
    location = rest.split("/", 1)[0].rpartition("@")[2]
    if not location and "host=" not in rest:
        raise ValueError(f"{redacted_url(text)!r} names no host; {fix}")
    return text


def redacted_url(url: str) -> str:
    # An error message must never print a password: postgresql://user:secret@... -> user:***@
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def db_schema(value: Any) -> str:
    text = str(value)
    if not _SCHEMA.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a usable schema name; use 1-63 lower-case letters, digits or '_', "
            f"starting with a letter or '_', e.g. {defaults.DB_SCHEMA}"
        )
    # PostgreSQL refuses to create these: pg_ names are its own, information_schema is the SQL
    # standard's view of the catalog.
    if text.startswith("pg_") or text == "information_schema":
        raise ValueError(
            f"{text!r} is reserved by PostgreSQL for its own schemas; choose another name, "
            f"e.g. {defaults.DB_SCHEMA}"
        )
    return text


def kafka_client(value: Any) -> str:
    """Which Kafka client library the kit's producer and reader use."""
    text = str(value).strip().lower()
    if text not in defaults.KAFKA_CLIENTS:
        choices = " or ".join(repr(name) for name in defaults.KAFKA_CLIENTS)
        raise ValueError(
            f"{value!r} is not a client the kit knows; use {choices} (confluent needs "
            "`pip install -e .[fast]`)"
        )
    return text


def gate_delivery(value: Any) -> str:
    """How the gate delivers: exactly once (Kafka transactions) or at least once."""
    text = str(value).strip().lower()
    if text not in defaults.GATE_DELIVERIES:
        choices = " or ".join(repr(name) for name in defaults.GATE_DELIVERIES)
        raise ValueError(f"{value!r} is not a delivery the gate knows; use {choices}")
    return text


def instance_name(value: Any) -> str:
    """A gate's name within its group: letters, digits, ``.``, ``_`` and ``-``, 1-64 long."""
    text = str(value).strip()
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", text):
        raise ValueError(
            f"{value!r} is not an instance name; use 1-64 letters, digits, '.', '_' or '-', "
            "e.g. 0, 1, eu-1 (each gate that runs at the same time needs its own)"
        )
    return text


_ON = {"1", "true", "yes", "on"}
_OFF = {"0", "false", "no", "off", ""}


def on_off(value: Any) -> bool:
    """A switch: true/false, yes/no, on/off or 1/0."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _ON:
        return True
    if text in _OFF:
        return False
    raise ValueError(f"{value!r} is not on or off; use true or false")


def folder(value: Any) -> str | None:
    """A folder of this machine (made when needed); None for the workbook's own."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if "\0" in text:
        raise ValueError(f"{value!r} is not a folder name; use a path such as /tmp/candles")
    return text


def log_level(value: Any) -> str:
    """A logging level by name; DEBUG and INFO also let kafka-python's own log through."""
    text = str(value).strip().upper()
    if text not in defaults.LOG_LEVELS:
        raise ValueError(
            f"{value!r} is not a log level; use one of {', '.join(defaults.LOG_LEVELS)}"
        )
    return text


def metrics_port(value: Any) -> int | None:
    """The port of a service's Prometheus endpoint: 1-65535, 0 for any free one, None for none."""
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ValueError(
            f"{value!r} is not a port; use 1-65535, or 0 for any free port (the service prints "
            f"its URL), e.g. {defaults.METRICS_PORT_EXAMPLE}"
        )
    return int(text)


def prometheus_url(value: Any) -> str:
    """Where Prometheus answers: ``http://host:port``."""
    text = str(value).strip().rstrip("/")
    scheme, separator, rest = text.partition("://")
    host, colon, port = rest.rpartition(":")
    if scheme not in {"http", "https"} or not separator or not colon or not host or "/" in rest:
        raise ValueError(
            f"{value!r} is not a Prometheus address; use http://host:port, e.g. "
            f"{defaults.PROMETHEUS_URL}"
        )
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(
            f"{value!r} has no usable port; use 1-65535, e.g. {defaults.PROMETHEUS_URL}"
        )
    return text


ARCHIVE_SCHEMES = ("s3", "file")


def archive_url(value: Any) -> str | None:
    """Where the archive keeps its files: a folder, or ``s3://bucket[/prefix]``; None for the
    workbook's own folder."""
    if value is None:
        return None
    text = str(value).strip()
    scheme, separator, rest = text.partition("://")
    if not text:
        raise ValueError("the archive URL is empty; use a folder or s3://bucket/prefix")
    if not separator:
        return text.rstrip("/") or "/"
    if scheme not in ARCHIVE_SCHEMES:
        raise ValueError(
            f"{value!r}: the archive writes to a folder or to S3, not {scheme}://; use e.g. "
            "/data/archive or s3://orderbook/archive"
        )
    rest = rest.rstrip("/")
    if scheme == "s3" and not rest.split("/")[0]:
        raise ValueError(
            f"{value!r} names no bucket; use s3://bucket/prefix, e.g. s3://orderbook/archive"
        )
    return f"{scheme}://{rest}"


def s3_endpoint_url(value: Any) -> str | None:
    """An S3-compatible server's address (``http(s)://host[:port]``); None for Amazon S3."""
    if value is None:
        return None
    text = str(value).strip().rstrip("/")
    scheme, separator, rest = text.partition("://")
    if scheme not in {"http", "https"} or not separator or not rest or "/" in rest:
        raise ValueError(
            f"{value!r} is not an S3 endpoint; use http://host:port, e.g. {defaults.LOCAL_S3_URL} "
            "(the kit's own S3 server), or unset it for Amazon S3"
        )
    return text


def port_range(value: Any) -> range:
    """Where the lab looks for free ports: ``LOW-HIGH`` (both included) between 1024 and 65535."""
    text = as_text(value).strip()
    low, _, high = text.partition("-")
    if not (low.isdigit() and high.isdigit() and 1024 <= int(low) < int(high) <= 65535):
        raise ValueError(
            f"{text!r} is not a port range; use LOW-HIGH between 1024 and 65535, e.g. 20000-25999"
        )
    return range(int(low), int(high) + 1)


def as_text(value: object) -> str:
    """A checked value as its variable would hold it (the inverse of the rules): None is unset."""
    if value is None:
        return ""
    if isinstance(value, range):
        return f"{value.start}-{value.stop - 1}"
    return str(value)
