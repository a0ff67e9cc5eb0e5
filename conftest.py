"""The test session's own throwaway Kafka broker and PostgreSQL server.

Each is started once, only when the collected tests need it (integration tests marked ``kafka``
or ``postgres``, and every notebook), on a free port with a temporary data directory; both are
stopped at the end even when tests fail. Their addresses go into ``KAFKA_BOOTSTRAP_SERVERS`` and
``DATABASE_URL`` before any test or notebook kernel starts, because nbmake's items take no pytest
fixtures and kernels inherit this process's environment. Neither touches a broker or database
the user runs: each listens on a port of its own.

The same goes for the three-node cluster of notebook 08: its free ports and its folder are set in
``KAFKA_CLUSTER_SERVERS`` and ``ORDERBOOK_CLUSTER_DIR``; the notebook starts it, the session stops
it.

Under pytest-xdist (``make test`` runs two workers) each worker is a session of its own, with its
own broker and database. The tests that start a three-node cluster go to one worker
(``--dist loadgroup``), so that two clusters never compete for the two cores at once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.lab import ports as lab_ports
from orderbook_kit.lab.broker import cluster
from orderbook_kit.lab.broker import server as process
from orderbook_kit.lab.postgres import server
from orderbook_kit.lab.prometheus import server as prometheus
from orderbook_kit.lab.s3 import server as s3_server
from orderbook_kit.settings import defaults

# Notebook cells that stream for a while read these; keep CI short unless the caller chose.
SHORT_RUN_ENVIRONMENT = {"TICK_COUNT": "120", "STREAM_SECONDS": "2", "PERF_TICKS": "5000"}

LOOPBACK = "127.0.0.1"  # every test server listens here only
_broker_dir: Path | None = None
_cluster_dir: Path | None = None
_database_dir: Path | None = None
_prometheus_dir: Path | None = None
_s3_dir: Path | None = None
_archive_dir: Path | None = None


def _needs_broker(item: pytest.Item) -> bool:
    return item.get_closest_marker("kafka") is not None or item.path.suffix == ".ipynb"


def _needs_database(item: pytest.Item) -> bool:
    return item.get_closest_marker("postgres") is not None or item.path.suffix == ".ipynb"


# Tests and notebooks that run a three-node cluster: one xdist worker takes them all.
CLUSTER_ITEMS = ("tests/integration/test_cluster.py", "notebooks/08_durability_is_replication")
CLUSTER_GROUP = pytest.mark.xdist_group("three-node-cluster")


def pytest_configure(config: pytest.Config) -> None:
    # Each xdist worker picks ports for its servers (and its notebooks' and services') from a
    # slice of the kit's range of its own: ports reserved at start, such as the cluster's, and
    # bound minutes later must not be picked meanwhile by the other worker.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and "ORDERBOOK_FREE_PORTS" not in os.environ:
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        ports = defaults.FREE_PORTS
        size = len(ports) // max(workers, 1)
        low = ports.start + int(worker[2:]) * size
        os.environ["ORDERBOOK_FREE_PORTS"] = f"{low}-{low + size - 1}"


# Runs every unit test in a subprocess with no Java, no Maven and no database on the machine
# (in two halves: the items' ids end in [half-1-of-2] and [half-2-of-2]).
NO_JVM_RERUN = (
    "tests/integration/test_jvm_tools.py::"
    "test_the_unit_tests_pass_with_no_java_no_maven_and_no_database"
)


# Notebooks that a JupyterLab browser test runs cell by cell in a real kernel, failing on any
# cell's error - nbmake's check, and more (what it renders). Where that test will run (it is
# collected, and Chromium is installed), nbmake does not run the notebook a second time.
RUN_IN_THE_BROWSER = {
    "tests/integration/test_jupyterlab.py::"
    "test_notebook_02_runs_in_jupyterlab_and_its_sliders_redraw_the_preview": (
        "notebooks/02_simulator.ipynb::02_simulator.ipynb"
    ),
    "tests/integration/test_jupyterlab.py::"
    "test_notebook_04_draws_its_plotly_figures_in_jupyterlab": (
        "notebooks/04_consuming.ipynb::04_consuming.ipynb"
    ),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(CLUSTER_ITEMS):
            item.add_marker(CLUSTER_GROUP)
    _run_each_notebook_once(config, items)
    # When that rerun is part of the session (a full `make test`), it is where the unit tests
    # run - once, in the strictest setting - rather than a second time here. (`make unit`, or
    # any run of tests/unit alone, runs them here as usual.)
    if any(item.nodeid.startswith(NO_JVM_RERUN) for item in items):
        unit = [item for item in items if item.nodeid.startswith("tests/unit/")]
        if unit:
            config.hook.pytest_deselected(items=unit)
            items[:] = [item for item in items if not item.nodeid.startswith("tests/unit/")]


def _run_each_notebook_once(config: pytest.Config, items: list[pytest.Item]) -> None:
    collected = {item.nodeid for item in items}
    twice = {
        notebook
        for browser_test, notebook in RUN_IN_THE_BROWSER.items()
        if browser_test in collected and notebook in collected
    }
    if not twice:
        return
    from tests.browsing import chromium_installed  # selenium: only when it matters

    if chromium_installed():
        config.hook.pytest_deselected(items=[i for i in items if i.nodeid in twice])
        items[:] = [item for item in items if item.nodeid not in twice]


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any(map(_needs_database, session.items)):
        _start_database(session)
    if any(map(_needs_broker, session.items)):
        _start_broker(session)


def _start_database(session: pytest.Session) -> None:
    global _database_dir
    _database_dir = Path(tempfile.mkdtemp(prefix="orderbook-test-postgres-"))
    url = f"postgresql://orderbook@{LOOPBACK}:{lab_ports.free_port(LOOPBACK)}/orderbook"
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"Starting the test session's PostgreSQL at {url} ...")
    try:
        server.start(url, _database_dir)
    except OrderbookKitError as exc:
        pytest.exit(
            f"The test PostgreSQL could not start, so nothing that needs it can run:\n{exc}", 3
        )
    os.environ["DATABASE_URL"] = url
    # Lets tests and notebook 07 stop and start this very server.
    os.environ["ORDERBOOK_DB_DIR"] = str(_database_dir)


def _start_broker(session: pytest.Session) -> None:
    global _broker_dir
    for name, value in SHORT_RUN_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    _broker_dir = Path(tempfile.mkdtemp(prefix="orderbook-test-broker-"))
    bootstrap = f"{LOOPBACK}:{lab_ports.free_port(LOOPBACK)}"
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
    global _cluster_dir
    _cluster_dir = Path(tempfile.mkdtemp(prefix="orderbook-test-cluster-"))
    os.environ["ORDERBOOK_CLUSTER_DIR"] = str(_cluster_dir)
    nodes = lab_ports.free_ports(LOOPBACK, 3)
    os.environ["KAFKA_CLUSTER_SERVERS"] = ",".join(f"{LOOPBACK}:{port}" for port in nodes)
    # Notebook 10 starts the kit's Prometheus (where one is installed): here, never the user's.
    global _prometheus_dir
    _prometheus_dir = Path(tempfile.mkdtemp(prefix="orderbook-test-prometheus-"))
    os.environ["ORDERBOOK_PROMETHEUS_DIR"] = str(_prometheus_dir)
    os.environ["ORDERBOOK_PROMETHEUS_URL"] = f"http://{LOOPBACK}:{lab_ports.free_port(LOOPBACK)}"
    # Notebook 11 archives into a folder and starts the kit's S3 server: the session's own.
    global _s3_dir, _archive_dir
    _s3_dir = Path(tempfile.mkdtemp(prefix="orderbook-test-s3-"))
    _archive_dir = Path(tempfile.mkdtemp(prefix="orderbook-test-archive-"))
    os.environ["ORDERBOOK_S3_DIR"] = str(_s3_dir)
    os.environ["ORDERBOOK_ARCHIVE_DIR"] = str(_archive_dir)
    os.environ["ORDERBOOK_ARCHIVE_DOCS_DIR"] = str(_archive_dir / "docs")
    os.environ["AWS_ENDPOINT_URL"] = f"http://{LOOPBACK}:{lab_ports.free_port(LOOPBACK)}"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    # Here, not only at unconfigure: an xdist worker tells the controller it has finished in
    # its own sessionfinish hook, and the controller then ends it without waiting for its
    # unconfigure - which left the last worker's broker and database running after every run.
    _stop_servers()


def pytest_unconfigure(config: pytest.Config) -> None:
    _stop_servers()  # already done, unless the session ended before sessionfinish


def _stop_servers() -> None:
    global _broker_dir, _database_dir, _cluster_dir, _prometheus_dir, _s3_dir, _archive_dir
    _stop_and_remove(_prometheus_dir, prometheus.stop)
    _stop_and_remove(_s3_dir, s3_server.stop)
    _stop_and_remove(_archive_dir, lambda folder: None)
    _stop_and_remove(_cluster_dir, cluster.stop_cluster)
    _stop_and_remove(_database_dir, server.stop)
    _stop_and_remove(_broker_dir, process.stop)
    _cluster_dir = _database_dir = _broker_dir = _prometheus_dir = _s3_dir = _archive_dir = None


def _stop_and_remove(directory: Path | None, stop: Callable[[Path], object]) -> None:
    """Stop the server kept in ``directory`` and delete the folder, even if stopping failed."""
    if directory is None:
        return
    try:
        stop(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
