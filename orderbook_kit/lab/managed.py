"""One way to run a lab server in the background: what the S3 server and Prometheus share (and
the pieces the broker and PostgreSQL use too).

A managed server lives in a state folder of its own. Starting it writes an *info file* there (its
pid and address) next to its log; every later look at it - ``status``, ``stop`` - trusts that
file only if the pid still runs with the server's own files on its command line (pid files
outlive reboots, and pids are reused: the kit never signals a process that is not its server).
It listens on 127.0.0.1 only, starts in a session of its own (a notebook's Ctrl-C does not reach
it), and every wait is bounded::

    start(url):  address on 127.0.0.1? -> already ours there? -> port free? -> prepare (config)
                 -> spawn -> info file -> wait until it answers (or stop it, quoting its log)
    stop():      SIGTERM, SIGKILL after a bound; the info file goes
"""

from __future__ import annotations

import json
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.lab.ports import loopback_port, port_is_free
from orderbook_kit.lab.processes import log_end, running_info, stop_server, wait_until_serving

__all__ = ["HOST", "ManagedServer", "ServerStatus", "spawn"]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServerStatus:
    pid: int
    url: str
    log_file: Path


def spawn(command: list[str], *, output: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in the background, its output appended to ``output``: in a session of
    its own, so it outlives the notebook cell or command that started it and does not receive
    the Ctrl-C sent to them."""
    with output.open("ab") as sink:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
        )


class ManagedServer(ABC):
    """A server the kit runs from ``state_dir``. A subclass names it and says how to prepare,
    launch and probe it; start, ensure, status, stop and logs are the same for all."""

    name: ClassVar[str]  # "S3 server", in messages
    program: ClassVar[str]  # "s3proxy": its info and log files are <program>.json and .log
    url_variable: ClassVar[str]  # the setting that holds its URL, named in errors
    command_name: ClassVar[str]  # "python -m orderbook_kit.lab.s3", named in errors
    start_timeout_s: ClassVar[float] = 60.0
    stop_timeout_s: ClassVar[float] = 15.0

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir

    @property
    def info_file(self) -> Path:
        return self.directory / f"{self.program}.json"

    @property
    def log_file(self) -> Path:
        return self.directory / f"{self.program}.log"

    @property
    @abstractmethod
    def marker(self) -> str:
        """What its command line holds (one of its own files), to recognise it by."""

    @abstractmethod
    def answers(self, url: str) -> bool:
        """Does such a server answer at ``url`` (ours, or one in Docker)?"""

    @abstractmethod
    def command(self, host: str, port: int) -> list[str]:
        """The command that runs it at host:port (after :meth:`prepare`)."""

    def prepare(self, host: str, port: int) -> None:  # noqa: B027 - most servers need nothing
        """Write what it needs before it starts (configuration, folders)."""

    def port_taken(self, host: str, port: int) -> str:
        """Why it cannot start at host:port, and what to do."""
        answers = self.answers(f"http://{host}:{port}")
        who = f"a {self.name} that is not the kit's" if answers else "another program"
        return (
            f"Port {port} on {host} is already in use by {who}. Stop it (`ss -ltnp "
            f"'sport = :{port}'` shows which program), or choose another port: "
            f"`export {self.url_variable}=http://127.0.0.1:<free port>`."
        )

    # --- the lifecycle --------------------------------------------------------------------------

    def status(self) -> ServerStatus | None:
        """The server running from this state folder, or None."""
        info = running_info(self.info_file, self.marker)
        if info is None:
            return None
        return ServerStatus(info["pid"], info["url"], self.log_file)

    def start(self, url: str, *, timeout_s: float | None = None) -> str:
        """Start it at ``url`` (``http://127.0.0.1:<port>``) unless it runs already from this
        state folder; its URL once it answers."""
        port = loopback_port(url, variable=self.url_variable, server=f"its {self.name}")
        address = f"http://{HOST}:{port}"
        running = self.status()
        if running is not None:
            if running.url != address:
                # "Started" at the wrong address would send its clients where nothing listens.
                raise OrderbookKitError(
                    f"{self.url_variable}: the kit's {self.name} of {self.directory} already runs "
                    f"at {running.url}, not at {url}. Point {self.url_variable} at "
                    f"{running.url}, or stop it first: `{self.command_name} stop`."
                )
            return running.url
        self.prepare(HOST, port)
        command = self.command(HOST, port)
        if not port_is_free(HOST, port):
            raise OrderbookKitError(self.port_taken(HOST, port))
        process = spawn(command, output=self.log_file, cwd=self.directory)
        self.info_file.write_text(json.dumps({"pid": process.pid, "url": address}))
        wait_until_serving(
            process,
            lambda: self.answers(address),
            name=self.name,
            url=address,
            timeout_s=self.start_timeout_s if timeout_s is None else timeout_s,
            log_file=self.log_file,
            give_up=lambda: self.stop(timeout_s=5),
        )
        return address

    def ensure(self, url: str) -> bool:
        """Use the server that answers at ``url`` (ours, or Docker's), else start ours there;
        True if started now."""
        if self.answers(url.rstrip("/")):
            return False
        self.start(url)
        return True

    def stop(self, *, timeout_s: float | None = None) -> bool:
        """Stop it (SIGTERM; SIGKILL after ``timeout_s``); False if none ran. Its data is kept."""
        timeout = self.stop_timeout_s if timeout_s is None else timeout_s
        return stop_server(self.info_file, self.marker, timeout_s=timeout, name=self.program)

    def tail_log(self, lines: int = 25) -> str:
        return log_end(self.log_file, lines)
