"""Process bookkeeping of the JVM broker that needs no Java."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orderbook_kit.errors import BrokerError, BrokerStartTimeoutError, SettingsError
from orderbook_kit.lab import ports as lab_ports
from orderbook_kit.lab.broker import cluster
from orderbook_kit.lab.broker import server as process
from orderbook_kit.lab.broker.server import BrokerState
from orderbook_kit.lab.processes import command_line, wait_for_exit
from orderbook_kit.settings import defaults

# A parent that starts a short-lived child, never reaps it, and prints the child's pid: once the
# child exits it stays a zombie - as the test session's broker does when a notebook kernel (not
# its parent) stops it.
PARENT_THAT_DOES_NOT_REAP = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "pass"])
print(child.pid, flush=True)
time.sleep(30)
"""


def test_an_exited_process_that_nobody_reaped_counts_as_stopped() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT_THAT_DOES_NOT_REAP], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        started = time.monotonic()
        assert wait_for_exit(child_pid, timeout_s=10)
        assert time.monotonic() - started < 5
    finally:
        parent.kill()
        parent.wait()


def test_a_running_process_is_not_stopped() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not wait_for_exit(sleeper.pid, timeout_s=0.5)
    finally:
        sleeper.kill()
        sleeper.wait()


@contextmanager
def sleeping(*arguments: str) -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not a broker (its command line can mimic one's)."""
    script = "import time; print('ready', flush=True); time.sleep(60)"
    sleeper = subprocess.Popen([sys.executable, "-c", script, *arguments], stdout=subprocess.PIPE)
    try:
        assert sleeper.stdout is not None
        sleeper.stdout.readline()  # it runs (not merely forked) once it has said so
        yield sleeper
    finally:
        sleeper.kill()
        sleeper.wait()


def pid_file(state_dir: Path, pid: int, address: str) -> BrokerState:
    state = BrokerState(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    state.info_file.write_text(json.dumps({"pid": pid, "bootstrap_servers": address}))
    return state


def test_a_stale_pid_file_never_gets_an_unrelated_process_signalled(tmp_path: Path) -> None:
    # The broker crashed long ago and its pid now belongs to someone else's program.
    with sleeping() as unrelated:
        pid_file(tmp_path, unrelated.pid, "127.0.0.1:9092")
        assert process.status(tmp_path) is None
        assert process.stop(tmp_path) is False
        time.sleep(0.2)
        assert unrelated.poll() is None, "stop signalled a process that is not the broker"


@pytest.mark.parametrize("proc", [Path("/proc"), Path("/no/proc/here")], ids=["proc", "ps"])
def test_a_process_is_known_by_its_command_line_with_or_without_proc(proc: Path) -> None:
    # Without /proc (macOS, the BSDs) the kit asks `ps`; both must give the real arguments.
    with sleeping("kafka.Kafka", "/state/server.properties") as sleeper:
        command = command_line(sleeper.pid, proc)
    assert command is not None
    assert "kafka.Kafka /state/server.properties" in command
    assert command_line(sleeper.pid, proc) is None  # gone: nobody to name


def test_start_says_up_only_once_the_running_broker_answers(
    tmp_path: Path, free_address: str
) -> None:
    # A process that looks like this state directory's broker but never answers (one that is
    # still starting, or hung): start must not report it as up.
    state = BrokerState(tmp_path)
    with sleeping("kafka.Kafka", str(state.properties_file)) as lookalike:
        pid_file(tmp_path, lookalike.pid, free_address)
        with pytest.raises(BrokerStartTimeoutError, match="did not answer within 1 s"):
            process.start(free_address, tmp_path, timeout_s=1)


def test_cluster_nodes_take_the_listed_addresses_or_the_next_ports() -> None:
    assert cluster.node_addresses("127.0.0.1:9092", 3) == [
        "127.0.0.1:9092",
        "127.0.0.1:9093",
        "127.0.0.1:9094",
    ]
    listed = "127.0.0.1:7001,localhost:7005,127.0.0.1:7009"
    assert cluster.node_addresses(listed, 3) == [
        "127.0.0.1:7001",
        "127.0.0.1:7005",
        "127.0.0.1:7009",
    ]
    with pytest.raises(BrokerError, match="lists 2 addresses for 3 nodes"):
        cluster.node_addresses("127.0.0.1:1,127.0.0.1:2", 3)
    with pytest.raises(BrokerError, match="--nodes must be 1-5, got 9"):
        cluster.node_addresses("127.0.0.1:9092", 9)


def test_a_cluster_replicates_three_times_and_needs_two_in_sync_replicas() -> None:
    layout = [cluster.ClusterNode(i, f"127.0.0.1:{9091 + i}", 19090 + i) for i in (1, 2, 3)]
    properties = cluster._node_properties(layout, layout[1])
    assert properties["node.id"] == "2"
    assert properties["controller.quorum.voters"] == (
        "1@127.0.0.1:19091,2@127.0.0.1:19092,3@127.0.0.1:19093"
    )
    assert properties["default.replication.factor"] == "3"
    assert properties["min.insync.replicas"] == "2"
    assert properties["offsets.topic.replication.factor"] == "3"
    # Two nodes hold only two replicas, and one may be missing: the same rule, scaled down.
    two = cluster._node_properties(layout[:2], layout[0])
    assert (two["default.replication.factor"], two["min.insync.replicas"]) == ("2", "1")


def test_free_ports_come_from_the_configured_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBOOK_FREE_PORTS", "26000-26099")
    ports = lab_ports.free_ports("127.0.0.1", 5)
    assert len(set(ports)) == 5 and all(26000 <= port <= 26099 for port in ports)
    monkeypatch.delenv("ORDERBOOK_FREE_PORTS")
    assert lab_ports.listen_ports() == defaults.FREE_PORTS


@pytest.mark.parametrize("value", ["abc", "30000-20000", "80-90", "20000-70000", "20000"])
def test_a_bad_free_port_range_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ORDERBOOK_FREE_PORTS", value)
    with pytest.raises(SettingsError, match=r"^ORDERBOOK_FREE_PORTS: .* is not a port range"):
        lab_ports.free_port("127.0.0.1")


@pytest.mark.parametrize("attempt", range(5))
def test_a_new_clusters_controller_ports_are_never_a_nodes_broker_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attempt: int
) -> None:
    # Six free ports in all, three taken by the brokers' addresses (not bound yet, as in a test
    # that picks them and then starts the cluster): the controllers must get the other three.
    low = lab_ports.free_ports("127.0.0.1", 1)[0] // 10 * 10 - 100 * attempt
    window = [p for p in range(low, low + 40) if lab_ports.port_is_free("127.0.0.1", p)][:6]
    assert len(window) == 6
    monkeypatch.setenv("ORDERBOOK_FREE_PORTS", f"{window[0]}-{window[-1]}")
    brokers = window[:3]
    layout = cluster._create_layout(tmp_path / "c", [f"127.0.0.1:{p}" for p in brokers])
    controllers = [node.controller_port for node in layout]
    assert len(set(controllers)) == 3 and not set(controllers) & set(brokers), controllers
