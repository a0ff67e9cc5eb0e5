"""Reading a ``/metrics`` endpoint back, as Prometheus does: for lessons, tests and checks."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from orderbook_kit.errors import OrderbookKitError

__all__ = ["Sample", "Scrape", "scrape"]

MAX_SCRAPE_BYTES = 10 * 1024 * 1024  # far above any service's; a runaway endpoint is refused


@dataclass(frozen=True)
class Sample:
    name: str  # as exposed: orderbook_gate_messages_total, ..._bucket, ...
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Scrape:
    """Every sample of one scrape."""

    samples: list[Sample]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(s.value for s in self.select(name, **labels))

    def select(self, name: str, **labels: str) -> list[Sample]:
        return [
            s
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def by_label(self, name: str, label: str, **labels: str) -> dict[str, float]:
        """``{value of label: sample value}`` of the samples named ``name``."""
        return {s.labels[label]: s.value for s in self.select(name, **labels) if label in s.labels}

    @property
    def names(self) -> set[str]:
        return {s.name for s in self.samples}


def scrape(url: str, *, timeout_s: float = 5.0) -> Scrape:
    """Fetch and parse ``url`` (a service's ``/metrics``); a clear error if it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = response.read(MAX_SCRAPE_BYTES + 1)
    except (urllib.error.URLError, OSError) as exc:
        raise OrderbookKitError(
            f"No metrics at {url} ({getattr(exc, 'reason', exc)}): is the service running with "
            "--metrics-port (or ORDERBOOK_METRICS_PORT)?"
        ) from exc
    if len(body) > MAX_SCRAPE_BYTES:
        raise OrderbookKitError(f"{url} sent more than {MAX_SCRAPE_BYTES:,} bytes of metrics.")
    samples = [
        Sample(sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    ]
    return Scrape(samples)
