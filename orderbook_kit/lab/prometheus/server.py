"""A real Prometheus for the pipeline, run by the kit where its binary is installed.

Without Docker, a ``prometheus`` program (Debian/Ubuntu: ``apt install prometheus``; macOS:
``brew install prometheus``) is started with the project's configuration (``config/``) on
127.0.0.1, its data and log in a folder of its own (``ORDERBOOK_PROMETHEUS_DIR``, default
``./.prometheus``). It finds the services to scrape through file-based service discovery: one
small JSON file per service in ``targets/``, which :func:`register_target` writes, and Prometheus
rereads within seconds - so services started with ``--metrics-port 0`` on any free port are found.
"""

from __future__ import annotations

import json
import logging
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.lab.managed import ManagedServer
from orderbook_kit.lab.ports import LOOPBACK_HOSTS
from orderbook_kit.paths import workbook_folder

__all__ = [
    "PrometheusNotFoundError",
    "PrometheusServer",
    "PrometheusStatus",
    "alerts",
    "default_state_dir",
    "ensure",
    "find_prometheus",
    "firing",
    "query",
    "register_target",
    "rules",
    "start",
    "status",
    "stop",
    "unregister_target",
]

log = logging.getLogger(__name__)

HTTP_TIMEOUT_S = 5.0
HOW_TO_INSTALL = (
    "Install it (Debian/Ubuntu: `sudo apt-get install prometheus`; macOS: `brew install "
    "prometheus`), or run it in Docker (`docker compose --profile monitoring up -d`)"
)
CONFIG_FILES = ("prometheus.yml", "rules.yml")
# The address the shipped configuration scrapes Prometheus itself at (rewritten to the real one).
SHIPPED_SELF_TARGET = '"127.0.0.1:9090"'


class PrometheusNotFoundError(OrderbookKitError):
    """No ``prometheus`` program on this machine."""


@dataclass(frozen=True)
class PrometheusStatus:
    pid: int
    url: str
    log_file: Path
    ready: bool


def default_state_dir() -> Path:
    return workbook_folder("prometheus", "ORDERBOOK_PROMETHEUS_DIR")


def find_prometheus() -> Path:
    """The ``prometheus`` program on PATH, or :class:`PrometheusNotFoundError` saying how to
    get one."""
    found = shutil.which("prometheus")
    if found is None:
        raise PrometheusNotFoundError(f"Prometheus was not found on PATH. {HOW_TO_INSTALL}.")
    return Path(found)


class PrometheusServer(ManagedServer):
    """Prometheus from ``state_dir``, with the kit's configuration and alert rules."""

    name = "Prometheus"
    program = "prometheus"
    url_variable = "ORDERBOOK_PROMETHEUS_URL"
    command_name = "python -m orderbook_kit.lab.prometheus"
    start_timeout_s = 30.0

    @property
    def config_file(self) -> Path:
        return self.directory / "prometheus.yml"

    @property
    def targets_dir(self) -> Path:
        return self.directory / "targets"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def marker(self) -> str:
        return f"--config.file={self.config_file}"

    def prepare(self, host: str, port: int) -> None:
        """The shipped configuration and rules, with Prometheus's own address filled in."""
        fix = "point ORDERBOOK_PROMETHEUS_DIR at a folder you can write to, or unset it"
        try:
            for folder in (self.directory, self.targets_dir, self.data_dir):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OrderbookKitError(
                f"ORDERBOOK_PROMETHEUS_DIR: cannot use {self.directory} ({exc.strerror}); {fix}"
            ) from None
        shipped = resources.files("orderbook_kit.monitoring") / "config"
        for name in CONFIG_FILES:
            text = (shipped / name).read_text()
            if name == "prometheus.yml":
                text = text.replace(SHIPPED_SELF_TARGET, f'"{host}:{port}"')
            (self.directory / name).write_text(text)

    def command(self, host: str, port: int) -> list[str]:
        return [
            str(find_prometheus()),
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={host}:{port}",
            # A lesson's data, not a year's: keep the folder small.
            "--storage.tsdb.retention.time=2d",
        ]

    def answers(self, url: str) -> bool:
        """Is a Prometheus ready at ``url``?"""
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False


def start(url: str, state_dir: Path, *, timeout_s: float | None = None) -> str:
    """Start Prometheus at ``url`` (``http://127.0.0.1:<port>``) unless it runs already from
    ``state_dir``; its URL once it is ready."""
    return PrometheusServer(state_dir).start(url, timeout_s=timeout_s)


def ensure(url: str, state_dir: Path) -> tuple[str, bool]:
    """The Prometheus answering at ``url`` (Docker's, or the kit's already running), or the kit's
    started there now; its URL, and whether it was started now."""
    server, address = PrometheusServer(state_dir), url.rstrip("/")
    if server.answers(address):
        return address, False
    return server.start(url), True  # the address it runs at, as it says it


def stop(state_dir: Path, *, timeout_s: float | None = None) -> bool:
    """Stop the Prometheus of ``state_dir`` (SIGTERM, SIGKILL after a bound); False if none
    ran. Its data is kept."""
    return PrometheusServer(state_dir).stop(timeout_s=timeout_s)


def status(state_dir: Path) -> PrometheusStatus | None:
    """The Prometheus running from ``state_dir``, or None."""
    server = PrometheusServer(state_dir)
    running = server.status()
    if running is None:
        return None
    ready = server.answers(running.url)
    return PrometheusStatus(running.pid, running.url, running.log_file, ready)


def register_target(state_dir: Path, service: str, metrics_url: str) -> Path:
    """Have the Prometheus of ``state_dir`` scrape ``metrics_url`` (a service's ``/metrics`` on
    127.0.0.1), labelled ``service``; the file that says so (delete it, or
    :func:`unregister_target`, to stop)."""
    parsed = urllib.parse.urlsplit(metrics_url)
    if parsed.scheme != "http" or parsed.hostname not in LOOPBACK_HOSTS or parsed.port is None:
        raise OrderbookKitError(
            f"{metrics_url!r} is not a service's metrics URL on this machine; use the URL the "
            "service printed (http://127.0.0.1:<port>/metrics)."
        )
    targets = PrometheusServer(state_dir).targets_dir
    targets.mkdir(parents=True, exist_ok=True)
    group = [{"targets": [f"{parsed.hostname}:{parsed.port}"], "labels": {"service": service}}]
    target = targets / f"{service}-{parsed.port}.json"
    # Written whole, then renamed: Prometheus never reads half a file.
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps(group))
    partial.replace(target)
    return target


def unregister_target(target: Path) -> None:
    target.unlink(missing_ok=True)


def query(url: str, promql: str, *, timeout_s: float = HTTP_TIMEOUT_S) -> list[dict[str, Any]]:
    """The result of an instant query (``/api/v1/query``): ``[{"metric": {...}, "value": [t,
    "v"]}, ...]``."""
    encoded = urllib.parse.urlencode({"query": promql})
    answer = _get_json(f"{url}/api/v1/query?{encoded}", timeout_s)
    if answer.get("status") != "success":
        raise OrderbookKitError(f"Prometheus refused {promql!r}: {answer.get('error', answer)}")
    return list(answer["data"]["result"])


def alerts(url: str, *, timeout_s: float = HTTP_TIMEOUT_S) -> list[dict[str, Any]]:
    """The alerts pending or firing now (``/api/v1/alerts``)."""
    return list(_get_json(f"{url}/api/v1/alerts", timeout_s)["data"]["alerts"])


def rules(url: str, *, timeout_s: float = HTTP_TIMEOUT_S) -> list[dict[str, Any]]:
    """Every rule Prometheus loaded (``/api/v1/rules``), with its ``health`` and last error."""
    groups = _get_json(f"{url}/api/v1/rules", timeout_s)["data"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def firing(url: str) -> set[str]:
    """The names of the alerts firing now (pending ones, still inside their ``for``, are not)."""
    return {a["labels"]["alertname"] for a in alerts(url) if a.get("state") == "firing"}


def _get_json(address: str, timeout_s: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(address, timeout=timeout_s) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as exc:  # a bad query: Prometheus says why in the body
        try:
            return dict(json.load(exc))
        except ValueError:
            raise OrderbookKitError(f"Prometheus answered {exc.code} to {address}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise OrderbookKitError(
            f"No Prometheus answered at {address.split('/api/')[0]} ({getattr(exc, 'reason', exc)})"
            ": start it with `python -m orderbook_kit.lab.prometheus start`, or fix "
            "ORDERBOOK_PROMETHEUS_URL."
        ) from exc
