"""Run the kit's services (``python -m orderbook_kit.<name>``) as real processes, from Python.

Notebooks use it to show what a crash does to a pipeline: start the store, ``kill()`` it (SIGKILL,
as the kernel's OOM killer or a power cut would), start it again, and compare. Every wait is
bounded, and the output goes to a file (a full pipe would stall a chatty service).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.settings.environment import Settings

__all__ = ["ServiceProcess", "start_service"]

STOP_TIMEOUT_S = 30.0
METRICS_LINE = re.compile(r"^Metrics at (http://\S+)$", re.MULTILINE)  # see monitoring.server
API_LINE = re.compile(r"^API at (http://\S+)", re.MULTILINE)  # see api.__main__


class ServiceProcess:
    """One running service; see :func:`start_service`."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], output: Path) -> None:
        self.name = name
        self.process = process
        self.output_file = output

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> int:
        """SIGKILL: no clean-up, no summary - the crash a service must survive. The exit code."""
        if self.running():
            self.process.kill()
        return self.process.wait(STOP_TIMEOUT_S)

    def pause(self) -> None:
        """SIGSTOP: frozen mid-flight, as a process stuck on a lock or swapped out would be. It
        answers nothing - not even its metrics endpoint - until :meth:`resume`. Past its group's
        session timeout (10 s for the kit's services) the group hands its partitions to others."""
        if self.running():
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: a paused service carries on where it stopped."""
        if self.running():
            self.process.send_signal(signal.SIGCONT)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Ctrl-C (SIGINT): the service finishes its batch and prints its summary. The exit code;
        SIGKILL if it has not stopped after ``timeout_s``."""
        if self.running():
            self.process.send_signal(signal.SIGCONT)  # a paused one could not act on SIGINT
            self.process.send_signal(signal.SIGINT)
        return self.wait(timeout_s)

    def wait(self, timeout_s: float) -> int:
        """Wait for the service to end by itself (``--count``, ``--idle``); the exit code. A
        service still running after ``timeout_s`` is killed, and that is an error."""
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError(
                f"{self.name} was still running after {timeout_s:g} s, so it was killed. Its "
                f"output:\n{self.output()}"
            ) from None

    def dump_stacks(self, settle_s: float = 1.0) -> None:
        """Have a running service print every thread's stack to its output (SIGUSR1, see
        :func:`~orderbook_kit.runtime.service.run_service`): what a stuck service is doing."""
        if self.running() and hasattr(signal, "SIGUSR1"):
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(settle_s)  # the dump is written by the service itself, at once

    def output(self) -> str:
        """Everything it printed so far (stdout and stderr)."""
        return self.output_file.read_text(errors="replace")

    def metrics_url(self, timeout_s: float = 30.0) -> str:
        """The URL of its ``/metrics`` (started with ``--metrics-port``), once it printed it."""
        return self._printed_url(
            METRICS_LINE, "its metrics URL (start it with --metrics-port 0)", timeout_s
        )

    def api_url(self, timeout_s: float = 30.0) -> str:
        """The API's base URL (``python -m orderbook_kit.api``), once it printed it."""
        return self._printed_url(API_LINE, "the API's URL", timeout_s)

    def _printed_url(self, line: re.Pattern[str], what: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            found = line.search(self.output())
            if found:
                return found.group(1)
            if not self.running() or time.monotonic() > deadline:
                state = "has stopped" if not self.running() else f"did not, within {timeout_s:g} s"
                raise OrderbookKitError(
                    f"{self.name} was to print {what} but {state}. Its output:\n{self.output()}"
                )
            time.sleep(0.05)

    def last_line(self) -> str:
        lines = self.output().strip().splitlines()
        return lines[-1] if lines else ""

    def __repr__(self) -> str:
        state = "running" if self.running() else f"exited {self.process.returncode}"
        return f"<ServiceProcess {self.name} pid {self.pid} {state}>"


def start_service(name: str, settings: Settings, *arguments: str) -> ServiceProcess:
    """Start ``python -m orderbook_kit.<name> *arguments`` with ``settings`` as its environment.

    >>> store = start_service("store", settings, "--quiet")   # doctest: +SKIP
    >>> store.kill()                                          # doctest: +SKIP
    """
    output = Path(tempfile.mkstemp(prefix=f"orderbook-{name}-", suffix=".log")[1])
    environment = {**os.environ, **settings.as_environment(), "PYTHONUNBUFFERED": "1"}
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", f"orderbook_kit.{name}", *arguments],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    return ServiceProcess(name, process, output)
