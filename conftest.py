"""The test session's own throwaway Kafka broker.

Started once, only when the collected tests need it (integration tests marked ``kafka`` and every
notebook), on a free port with a temporary data directory; stopped at the end even when tests
fail. Its address goes into ``KAFKA_BOOTSTRAP_SERVERS`` before any test or notebook kernel starts,
because nbmake's items take no pytest fixtures and kernels inherit this process's environment.
It never touches a broker the user runs: it listens on a port of its own.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from orderbook_kit.broker import process
from orderbook_kit.errors import OrderbookKitError

# Notebook cells that stream for a while read these; keep CI short unless the caller chose.
SHORT_RUN_ENVIRONMENT = {"TICK_COUNT": "120", "STREAM_SECONDS": "2"}

_broker_dir: Path | None = None


def _needs_broker(item: pytest.Item) -> bool:
    return item.get_closest_marker("kafka") is not None or item.path.suffix == ".ipynb"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pytest_collection_finish(session: pytest.Session) -> None:
    global _broker_dir
    if session.config.option.collectonly or not any(map(_needs_broker, session.items)):
        return
    for name, value in SHORT_RUN_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    _broker_dir = Path(tempfile.mkdtemp(prefix="orderbook-test-broker-"))
    bootstrap = f"127.0.0.1:{_free_port()}"
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"Starting the test session's Kafka broker at {bootstrap} ...")
    try:
        process.start(
            bootstrap, _broker_dir, timeout_s=float(os.environ.get("KAFKA_START_TIMEOUT_S", 90))
        )
    except OrderbookKitError as exc:
        pytest.exit(f"The test broker could not start, so nothing that needs it can run:\n{exc}", 3)
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    # Lets notebook 05 and the durability tests stop and start this very broker.
    os.environ["ORDERBOOK_BROKER_DIR"] = str(_broker_dir)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _broker_dir
    if _broker_dir is None:
        return
    try:
        process.stop(_broker_dir)
    finally:
        shutil.rmtree(_broker_dir, ignore_errors=True)
        _broker_dir = None
