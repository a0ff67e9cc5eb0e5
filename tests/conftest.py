"""Fixtures shared by the tests. The broker itself is started by the root conftest.py."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from kafka import KafkaProducer

from orderbook_kit.kafka.admin import admin_client, ensure_topic
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.lab import ports as lab_ports
from orderbook_kit.lab.broker import server as process
from orderbook_kit.lab.postgres import server
from orderbook_kit.market.tick import Tick
from orderbook_kit.runtime.launcher import ServiceProcess
from orderbook_kit.settings.environment import Settings

if TYPE_CHECKING:
    from selenium import webdriver

KAFKA_CLIENTS = ["kafka-python", "confluent"]


@pytest.fixture(params=KAFKA_CLIENTS)
def kafka_client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with each client the kit can produce and read with (ORDERBOOK_KAFKA_CLIENT);
    services the test starts inherit it."""
    monkeypatch.setenv("ORDERBOOK_KAFKA_CLIENT", request.param)
    return request.param


@pytest.fixture
def bootstrap_servers() -> str:
    """The test session's broker (set by the root conftest.py for tests marked ``kafka``)."""
    return os.environ["KAFKA_BOOTSTRAP_SERVERS"]


def free_ports(count: int) -> list[int]:
    """``count`` different free ports on 127.0.0.1, outside the ephemeral range."""
    return lab_ports.free_ports("127.0.0.1", count)


@pytest.fixture
def free_address() -> str:
    return f"127.0.0.1:{lab_ports.free_port('127.0.0.1')}"


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """An empty folder for stand-in executables, to put first on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    return folder


def write_executable(folder: Path, name: str, script: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def own_broker(tmp_path: Path, free_address: str) -> Iterator[tuple[str, Path]]:
    """A broker of the test's own, so stopping or killing it disturbs nothing else."""
    state = tmp_path / "broker"
    process.start(free_address, state)
    yield free_address, state
    process.stop(state)


def wait_for(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    service: ServiceProcess | None = None,
) -> None:
    """Wait until ``condition()`` holds; fail the test after ``timeout_s``. With ``service``, fail
    as soon as that service has exited, and show what it printed either way."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        stopped = service is not None and not service.running()
        if stopped or time.monotonic() > deadline:
            reason = "the service exited" if stopped else f"timed out after {timeout_s} s"
            if service is not None and not stopped:
                service.dump_stacks()  # where it is stuck, in what it printed
            tail = "\n".join(service.output().splitlines()[-400:]) if service else ""
            printed = f"\n{service!r} printed (the end):\n{tail}" if service else ""
            pytest.fail(f"{reason} waiting for {what}{printed}")
        time.sleep(0.2)


def interrupt(child: subprocess.Popen[str]) -> tuple[str, float]:
    """Ctrl-C ``child``; its stderr, and the seconds it took to exit after the signal."""
    child.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    _, stderr = child.communicate(timeout=60)
    return stderr, time.monotonic() - interrupted


@pytest.fixture
def own_database(free_address: str) -> Iterator[tuple[str, Path]]:
    """A PostgreSQL of the test's own, so stopping it disturbs nothing else."""
    port = free_address.rpartition(":")[2]
    url = f"postgresql://orderbook@127.0.0.1:{port}/orderbook"
    state = Path(tempfile.mkdtemp(prefix="orderbook-test-own-postgres-"))
    server.start(url, state)
    yield url, state
    server.stop(state)
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[webdriver.Chrome]:
    """Headless Chromium (the test skips, saying why, where it is not installed); a screenshot
    and the page's HTML are kept when the test fails."""
    from tests import browsing  # selenium, only for the tests that use a browser

    chrome = browsing.open_chromium()
    try:
        yield chrome
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            browsing.keep_evidence(chrome, request.node.name)
    finally:
        chrome.quit()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Keep each phase's report on the test item, so a fixture's teardown can tell whether the
    test failed (the browser fixture then saves a screenshot)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def produce_clean(
    settings: Settings, messages: list[Tick | tuple[bytes | None, bytes | None]]
) -> None:
    """Write ``messages`` (ticks, or raw key and value) to the clean topic, acknowledged."""
    with TickProducer(settings, topic=settings.topics.clean) as producer:
        for message in messages:
            if isinstance(message, Tick):
                producer.send(message)
            else:
                producer.send_raw(*message)
        producer.flush()


def produce_clean_in_transactions(
    settings: Settings, chunks: list[list[Tick]], *, aborted: set[int]
) -> list[Tick]:
    """Write each chunk of ticks to the clean topic in a Kafka transaction of its own, aborting
    those whose index is in ``aborted`` (flushed first, so their records are in the log); the
    committed ticks. Each transaction leaves a marker: an offset that is no message."""
    with admin_client(settings.kafka.bootstrap_servers, 10) as admin:
        ensure_topic(admin, settings.topics.clean, settings.topics.partitions)
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        transactional_id=f"{settings.topics.clean}.writer",
    )
    committed: list[Tick] = []
    try:
        producer.init_transactions()
        for n, chunk in enumerate(chunks):
            producer.begin_transaction()
            for tick in chunk:
                producer.send(settings.topics.clean, key=tick.symbol.encode(), value=tick.to_json())
            producer.flush()
            if n in aborted:
                producer.abort_transaction()
            else:
                producer.commit_transaction()
                committed.extend(chunk)
    finally:
        producer.close()
    return committed


@pytest.fixture
def pipeline_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Topics, consumer groups, a database schema and an archive folder of the test's own (the
    schema dropped afterwards), labelled by the test module: ``orderbook.raw.<module>-<id>``."""
    from orderbook_kit.database.client import connect
    from orderbook_kit.settings.environment import load_settings
    from orderbook_kit.store.tables import drop_schema

    label = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    own = load_settings().isolated(f"{label}-{uuid.uuid4().hex[:10]}")
    yield own.replace(archive={"url": str(tmp_path / "archive")})
    with connect(own.store.database_url, timeout_s=10) as conn:
        drop_schema(conn, own.store.schema)
