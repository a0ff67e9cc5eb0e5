"""Start, stop and inspect a single-node Apache Kafka broker running straight on the JVM.

A broker lives in a *state directory*: ``server.properties``, the KRaft data (``data/``), logs
(``logs/server.log``) and ``broker.json`` (pid and address). Stopping keeps ``data/``, so messages
survive a restart - the durability lesson of notebook 05 depends on it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from orderbook_kit.errors import (
    BrokerError,
    BrokerExitedError,
    BrokerStartTimeoutError,
    PortInUseError,
)
from orderbook_kit.kafka.admin import broker_answers
from orderbook_kit.lab import jvm as runtime
from orderbook_kit.lab.broker.properties import (
    BROKER_LOG4J2,
    TOOLS_LOG4J2,
    render_properties,
    server_properties,
)
from orderbook_kit.lab.managed import spawn
from orderbook_kit.lab.ports import can_listen_like_the_jvm, free_port, free_ports
from orderbook_kit.lab.processes import command_line, is_alive, read_info, terminate, wait_for_exit
from orderbook_kit.paths import configured_folder

__all__ = [
    "BrokerState",
    "BrokerStatus",
    "is_alive",
    "kill",
    "new_cluster_id",
    "parse_address",
    "run_tool",
    "start",
    "status",
    "stop",
    "tail_log",
]

log = logging.getLogger(__name__)

DEFAULT_START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
READY_POLL_S = 0.5
LOG_TAIL_LINES = 25
BROKER_HEAP = ("-Xms256m", "-Xmx512m")
TOOL_HEAP = ("-Xms64m", "-Xmx256m")
JMX_RULES = "kafka-jmx.yml"  # the JMX exporter's rules, in orderbook_kit/monitoring/config/
LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}


def default_state_dir() -> Path:
    """The broker's state: ``$ORDERBOOK_BROKER_DIR``, else ``<home>/broker``."""
    return configured_folder("ORDERBOOK_BROKER_DIR", runtime.default_home() / "broker")


def restart(state_dir: Path | None = None, *, timeout_s: float = DEFAULT_START_TIMEOUT_S) -> str:
    """Stop and start the kit's broker at the same address; return that address.

    Raises :class:`BrokerError` when no kit broker runs from ``state_dir`` (for example when
    Kafka runs in Docker: then use ``docker compose restart kafka``).
    """
    state_dir = state_dir or default_state_dir()
    running = status(state_dir)
    if running is None:
        raise BrokerError(
            f"No kit broker runs from {state_dir}, so the kit cannot restart it. If Kafka runs "
            "in Docker, restart it with `docker compose restart kafka`."
        )
    stop(state_dir)
    start(running.bootstrap_servers, state_dir, timeout_s=timeout_s)
    return running.bootstrap_servers


def parse_address(bootstrap_servers: str) -> tuple[str, int]:
    """'127.0.0.1:9092' -> ('127.0.0.1', 9092); the JVM broker binds to loopback only."""
    first = bootstrap_servers.split(",")[0].strip()
    host, _, port_text = first.rpartition(":")
    if not host or not port_text.isdigit():
        raise BrokerError(
            f"KAFKA_BOOTSTRAP_SERVERS={bootstrap_servers!r} is not host:port; "
            "use e.g. 127.0.0.1:9092."
        )
    if host not in LOOPBACK_HOSTS:
        raise BrokerError(
            f"The kit's broker listens on 127.0.0.1 only, but KAFKA_BOOTSTRAP_SERVERS names "
            f"{host!r}. Use 127.0.0.1:<port>, or start that remote broker yourself."
        )
    return "127.0.0.1", int(port_text)


@dataclass(frozen=True)
class BrokerState:
    """The files of one broker instance."""

    directory: Path

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def logs_dir(self) -> Path:
        return self.directory / "logs"

    @property
    def log_file(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def console_file(self) -> Path:
        return self.logs_dir / "console.out"  # the JVM's own stdout/stderr (crashes land here)

    @property
    def properties_file(self) -> Path:
        return self.directory / "server.properties"

    @property
    def info_file(self) -> Path:
        return self.directory / "broker.json"

    @property
    def is_formatted(self) -> bool:
        return (self.data_dir / "meta.properties").exists()


@dataclass(frozen=True)
class BrokerStatus:
    pid: int
    bootstrap_servers: str
    log_file: Path
    answers: bool
    metrics_url: str | None = None  # the JMX exporter's, if the broker runs one


def status(state_dir: Path, *, probe_timeout_s: float = 2.0) -> BrokerStatus | None:
    """The broker running from ``state_dir``, or None if none is."""
    state = BrokerState(state_dir)
    info = read_info(state.info_file)
    if info is None or not _is_our_broker(info["pid"], state):
        return None
    answers = broker_answers(info["bootstrap_servers"], probe_timeout_s)
    address = info["bootstrap_servers"]
    return BrokerStatus(info["pid"], address, state.log_file, answers, info.get("metrics_url"))


def start(
    bootstrap_servers: str,
    state_dir: Path,
    *,
    home: Path | None = None,
    timeout_s: float = DEFAULT_START_TIMEOUT_S,
    extra_properties: dict[str, str] | None = None,
    controller_port: int | None = None,
    cluster_id: str | None = None,
    wait: bool = True,
    metrics_port: int | None = None,
) -> BrokerStatus:
    """Start a broker from ``state_dir`` listening at ``bootstrap_servers``; return once it answers.

    With ``metrics_port``, Prometheus's JMX exporter runs in the broker as a Java agent and
    serves its metrics at ``http://127.0.0.1:<metrics_port>/metrics`` (0: a free port, given in
    the status).

    Idempotent: if this state directory's broker already runs at that address, it is returned.
    A node of a cluster (:mod:`.cluster`) gets its controller port and the cluster's id, and is
    not waited for (``wait=False``): it cannot answer before a majority of its peers run too.
    """
    host, port = parse_address(bootstrap_servers)
    address = f"{host}:{port}"
    state = BrokerState(state_dir)
    running = status(state_dir)
    if running is not None:
        if running.bootstrap_servers == address:
            # Ours and alive - but "up" only once it answers (it may be starting right now).
            if not running.answers and not _answers_within(address, timeout_s):
                raise BrokerStartTimeoutError(
                    f"The Kafka broker at {address} runs but did not answer within "
                    f"{timeout_s:g} s. See `make logs`; restart it with `make stop` then "
                    "`make broker`, or allow more time: `export KAFKA_START_TIMEOUT_S=120`."
                )
            return BrokerStatus(running.pid, address, state.log_file, True, running.metrics_url)
        raise BrokerError(
            f"The broker in {state_dir} already runs at {running.bootstrap_servers}, not "
            f"{address}. Stop it first: `python -m orderbook_kit.lab.broker stop`."
        )
    _check_port_free(host, port)
    _prepare_state_dir(state)
    java = runtime.find_java()
    classpath = runtime.classpath(home or runtime.default_home())
    agent, metrics_url = _metrics_agent(state, host, metrics_port, home or runtime.default_home())

    # A free port other than the broker's own: that one is free too until the broker listens
    # (seen once: both listeners on one port, and the broker refused to format its storage).
    controller_port = controller_port or next(p for p in free_ports(host, 2) if p != port)
    properties = server_properties(host, port, controller_port, state.data_dir)
    properties.update(extra_properties or {})
    state.properties_file.write_text(render_properties(properties))
    broker_log4j = state.directory / "log4j2.properties"
    broker_log4j.write_text(BROKER_LOG4J2)
    if not state.is_formatted:
        _format_storage(java, classpath, state, cluster_id or new_cluster_id())

    command = [
        str(java),
        *BROKER_HEAP,
        *agent,
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={state.logs_dir}",
        f"-Dlog4j2.configurationFile={broker_log4j}",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(state.properties_file),
    ]
    # The JVM's own output (a crash lands there); the broker's log is log4j's.
    process = spawn(command, output=state.console_file, cwd=state.directory)
    info = {"pid": process.pid, "bootstrap_servers": address, "started": time.time()}
    if metrics_url is not None:
        info["metrics_url"] = metrics_url
    state.info_file.write_text(json.dumps(info))
    log.info("Kafka broker starting (pid %d) at %s, log %s", process.pid, address, state.log_file)
    if not wait:
        return BrokerStatus(process.pid, address, state.log_file, False, metrics_url)
    _wait_until_ready(process, address, state, timeout_s)
    return BrokerStatus(process.pid, address, state.log_file, True, metrics_url)


def _metrics_agent(
    state: BrokerState, host: str, metrics_port: int | None, home: Path
) -> tuple[list[str], str | None]:
    """The JVM option that runs the JMX exporter at ``metrics_port``, and its URL (none without
    a port)."""
    if metrics_port is None:
        return [], None
    port = metrics_port or free_port(host)
    if not can_listen_like_the_jvm(host, port):
        raise PortInUseError(
            f"KAFKA_METRICS_PORT: port {port} on {host} is already in use by another program; "
            "choose another port for the broker's metrics, or 0 for any free one."
        )
    jar = runtime.jmx_exporter_jar(home)
    rules = state.directory / "kafka-jmx.yml"
    rules.write_text(
        (resources.files("orderbook_kit.monitoring") / "config" / JMX_RULES).read_text()
    )
    return [f"-javaagent:{jar}={host}:{port}:{rules}"], f"http://{host}:{port}/metrics"


def stop(state_dir: Path, *, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop the broker cleanly (SIGTERM; SIGKILL after ``timeout_s``); False if none ran."""
    state = BrokerState(state_dir)
    info = read_info(state.info_file)
    if info is None or not _is_our_broker(info["pid"], state):
        state.info_file.unlink(missing_ok=True)
        return False
    terminate(info["pid"], timeout_s, "broker")
    state.info_file.unlink(missing_ok=True)
    return True


def kill(state_dir: Path) -> bool:
    """SIGKILL the broker - a crash, not a shutdown (for the lessons); False if none ran."""
    state = BrokerState(state_dir)
    info = read_info(state.info_file)
    if info is None or not _is_our_broker(info["pid"], state):
        return False
    os.kill(info["pid"], signal.SIGKILL)
    wait_for_exit(info["pid"], 10.0)
    state.info_file.unlink(missing_ok=True)
    return True


def tail_log(state_dir: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of the broker's log (and of the JVM console, if not empty)."""
    state = BrokerState(state_dir)
    parts = []
    for path in (state.log_file, state.console_file):
        if path.exists() and path.stat().st_size:
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path} (last {len(text)} lines) ---\n" + "\n".join(text))
    return "\n".join(parts) or f"(no log yet in {state.logs_dir})"


def run_tool(
    main_class: str, arguments: Sequence[str], *, home: Path | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run one of Apache Kafka's command-line tools (``kafka-topics``, ...) on the JVM."""
    java = runtime.find_java()
    classpath = runtime.classpath(home or runtime.default_home())
    tools_log4j = (home or runtime.default_home()) / "tools-log4j2.properties"
    if not tools_log4j.exists() or tools_log4j.read_text() != TOOLS_LOG4J2:
        tools_log4j.write_text(TOOLS_LOG4J2)
    command = [
        str(java),
        *TOOL_HEAP,
        f"-Dlog4j2.configurationFile={tools_log4j}",
        "-cp",
        classpath,
        main_class,
        *arguments,
    ]
    return subprocess.run(command, text=True, check=False, **kwargs)  # type: ignore[call-overload]


# How long a start waits for a port that nothing listens on to be released (see _check_port_free).
PORT_RELEASE_WAIT_S = 5.0


# --- helpers ------------------------------------------------------------------------------------


def _check_port_free(host: str, port: int) -> None:
    # Right after a broker was killed, its port can look taken for a moment (seen in about one
    # start in four with a gate and a feed connected, and gone a second later): look again for a
    # few seconds before blaming another program.
    deadline = time.monotonic() + PORT_RELEASE_WAIT_S
    while not can_listen_like_the_jvm(host, port):
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    else:
        return
    address = f"{host}:{port}"
    if broker_answers(address):
        raise PortInUseError(
            f"Port {port} on {host} is already in use, and a Kafka broker answers there. Use it "
            f"(`export KAFKA_BOOTSTRAP_SERVERS={address}`), or stop it first (`make stop`, or "
            "`docker compose down` if it runs in Docker)."
        )
    raise PortInUseError(
        f"Port {port} on {host} is already in use by another program (not a Kafka broker). Stop "
        "that program (`ss -ltnp 'sport = :"
        f"{port}'` shows which), or choose another port: "
        f"`export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:<free port>`."
    )


def _prepare_state_dir(state: BrokerState) -> None:
    """Create the broker's folders, or say which setting points somewhere unusable."""
    fix = "point ORDERBOOK_BROKER_DIR at a folder you can write to, or unset it"
    if state.directory.exists() and not state.directory.is_dir():
        raise BrokerError(f"ORDERBOOK_BROKER_DIR: {state.directory} is a file, not a folder; {fix}")
    try:
        for directory in (state.data_dir, state.logs_dir):
            directory.mkdir(parents=True, exist_ok=True)
        probe = state.directory / ".writable"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise BrokerError(
            f"ORDERBOOK_BROKER_DIR: cannot write to {state.directory} ({exc.strerror}); {fix}"
        ) from None


def new_cluster_id() -> str:
    """16 random bytes, base64url without padding: what `kafka-storage random-uuid` prints."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def _format_storage(java: Path, classpath: str, state: BrokerState, cluster_id: str) -> None:
    log4j = state.directory / "log4j2.properties"
    result = subprocess.run(
        [
            str(java),
            *TOOL_HEAP,
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={state.logs_dir}",
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            # "=" form: a base64url id may start with "-", which would read as an option.
            "format",
            f"--cluster-id={cluster_id}",
            "--config",
            str(state.properties_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise BrokerError(
            f"Formatting the broker's storage in {state.data_dir} failed:\n"
            f"{(result.stdout + result.stderr).strip()[-2000:]}\n"
            f"If this directory holds an old or broken broker, remove it and start again."
        )


def _answers_within(
    address: str, timeout_s: float, *, alive: Callable[[], bool] = lambda: True
) -> bool:
    """Ask the broker at ``address`` until it answers (True), ``alive()`` turns False or
    ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while alive() and (remaining := deadline - time.monotonic()) > 0:
        if broker_answers(address, min(2.0, max(remaining, 0.1))):
            return True
        time.sleep(min(READY_POLL_S, max(deadline - time.monotonic(), 0)))
    return False


def _wait_until_ready(
    process: subprocess.Popen[bytes], address: str, state: BrokerState, timeout_s: float
) -> None:
    if _answers_within(address, timeout_s, alive=lambda: process.poll() is None):
        return
    state.info_file.unlink(missing_ok=True)
    if process.poll() is not None:
        raise BrokerExitedError(
            f"The Kafka broker exited during start (exit code {process.returncode}): "
            f"{_last_error(state)}\nThe end of its log:\n{tail_log(state.directory)}\n"
            f"Fix the cause above; the full log is {state.log_file}."
        )
    _terminate(process)
    raise BrokerStartTimeoutError(
        f"The Kafka broker did not answer at {address} within {timeout_s:g} s, so it was stopped. "
        f"The end of its log:\n{tail_log(state.directory)}\nOn a slow machine, allow more time: "
        f"`export KAFKA_START_TIMEOUT_S=120`."
    )


def _last_error(state: BrokerState) -> str:
    """The broker's own explanation: the line after its last ERROR line (the exception)."""
    if not state.log_file.exists():
        return "(it wrote no log)"
    lines = state.log_file.read_text(errors="replace").splitlines()
    errors = [i for i, line in enumerate(lines) if " ERROR " in line]
    if not errors:
        return "(no ERROR line in its log)"
    last = errors[-1]
    return " ".join(line.strip() for line in lines[last : last + 2])


def _terminate(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _is_our_broker(pid: object, state: BrokerState) -> bool:
    """Is ``pid`` alive and really this state directory's broker?

    A pid file outlives a crash or a reboot, and pids get reused: the pid in it may now belong
    to any other program. So the process's own command line must name Kafka's main class and
    this state directory's properties file, or it is not ours - and never gets a signal.
    """
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    command = command_line(pid)
    if command is None:  # cannot tell who it is: safer to leave it alone
        return False
    return "kafka.Kafka" in command and str(state.properties_file) in command
