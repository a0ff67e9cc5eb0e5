"""The kit's long-running server processes (broker, Prometheus...): who they are, whether they
still run, and waiting for them to end - on Linux through /proc, elsewhere through ``ps``."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orderbook_kit.errors import OrderbookKitError

__all__ = [
    "command_line",
    "exclusive",
    "is_alive",
    "log_end",
    "read_info",
    "running_info",
    "runs_with",
    "stop_server",
    "terminate",
    "wait_for_exit",
    "wait_until_serving",
]

log = logging.getLogger(__name__)


def command_line(pid: int, proc: Path = Path("/proc")) -> str | None:
    """The command line of process ``pid`` (arguments joined by spaces), or None if unknown.

    Linux has it in /proc; elsewhere (macOS, the BSDs) ``ps`` prints it.
    """
    cmdline = proc / str(pid) / "cmdline"
    if proc.is_dir():
        try:
            return cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
    try:
        listed = subprocess.run(
            ["ps", "-ww", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listed.returncode != 0:  # no such process (any more)
        return None
    return listed.stdout.strip() or None


def is_alive(pid: int) -> bool:
    """Is process ``pid`` running (not gone, not a zombie)? Reaps it if it is our child."""
    return not wait_for_exit(pid, 0.0)


def wait_for_exit(pid: int, timeout_s: float) -> bool:
    """Has process ``pid`` exited within ``timeout_s``? Reaps it if it is our child."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            # Reap it if it is our child (tests start servers in-process); else just probe.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if _is_zombie(pid):
            # It exited, but its parent is another process that has not reaped it yet (a
            # notebook restarting the test session's broker): as good as gone.
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the command name in parentheses, which may itself hold spaces.
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def terminate(pid: int, timeout_s: float, what: str) -> None:
    """Stop ``pid`` cleanly (SIGTERM), and kill it (SIGKILL) if it has not exited after
    ``timeout_s``; ``what`` names it in the warning ("broker")."""
    os.kill(pid, signal.SIGTERM)
    if not wait_for_exit(pid, timeout_s):
        log.warning("%s pid %d ignored SIGTERM for %.0f s; killing it", what, pid, timeout_s)
        os.kill(pid, signal.SIGKILL)
        wait_for_exit(pid, 10.0)


def read_info(info_file: Path) -> dict[str, Any] | None:
    """The JSON object a server's info file holds (pid, address...), or None if there is none
    or it cannot be read."""
    try:
        info = json.loads(info_file.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


@contextlib.contextmanager
def exclusive(lock_file: Path, *, timeout_s: float, doing: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (another process doing the same waits its turn,
    up to ``timeout_s``): for work two processes must not do at once, such as two test workers
    downloading the same jars into the same folder. Where there is no ``fcntl`` (Windows), it
    does not lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on the platforms the broker runs on
        yield
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    with lock_file.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"Another process kept {lock_file} locked for {timeout_s:.0f} s while "
                        f"this one waited to be {doing}. If none is running, delete the file."
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def runs_with(pid: object, marker: str) -> bool:
    """Is ``pid`` alive with ``marker`` on its command line? A pid file outlives a reboot and pids
    are reused: never signal a process that does not name the server's own files."""
    if not isinstance(pid, int) or pid <= 0 or not is_alive(pid):
        return False
    command = command_line(pid)
    return command is not None and marker in command


def running_info(info_file: Path, marker: str) -> dict[str, Any] | None:
    """The info file of a server that still runs (its pid alive, with ``marker`` on its command
    line), or None."""
    info = read_info(info_file)
    if info is None or not runs_with(info.get("pid"), marker):
        return None
    return info


def stop_server(info_file: Path, marker: str, *, timeout_s: float, name: str) -> bool:
    """Stop the server ``info_file`` names, if it still runs (SIGTERM, SIGKILL after
    ``timeout_s``), and forget it; False if none ran."""
    info = running_info(info_file, marker)
    if info is not None:
        terminate(info["pid"], timeout_s, name)
    info_file.unlink(missing_ok=True)
    return info is not None


def log_end(log_file: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log yet)"


def wait_until_serving(
    process: subprocess.Popen[bytes],
    serving: Callable[[], bool],
    *,
    name: str,
    url: str,
    timeout_s: float,
    log_file: Path,
    give_up: Callable[[], object],
) -> None:
    """Wait until ``serving()``; if ``process`` exits first, or ``timeout_s`` passes (then
    ``give_up()`` stops it), one error quoting the end of ``log_file``."""
    deadline = time.monotonic() + timeout_s
    while not serving():
        if process.poll() is not None:
            give_up()
            raise OrderbookKitError(
                f"{name} exited during start (code {process.returncode}). The end of its log "
                f"({log_file}):\n{log_end(log_file)}"
            )
        if time.monotonic() >= deadline:
            give_up()
            raise OrderbookKitError(
                f"{name} did not answer at {url} within {timeout_s:g} s, so it was stopped. The "
                f"end of its log ({log_file}):\n{log_end(log_file)}"
            )
        time.sleep(0.2)
