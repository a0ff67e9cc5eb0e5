"""Process bookkeeping of the JVM broker that needs no Java."""

from __future__ import annotations

import subprocess
import sys
import time

from orderbook_kit.broker.process import _wait_for_exit

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
        assert _wait_for_exit(child_pid, timeout_s=10)
        assert time.monotonic() - started < 5
    finally:
        parent.kill()
        parent.wait()


def test_a_running_process_is_not_stopped() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not _wait_for_exit(sleeper.pid, timeout_s=0.5)
    finally:
        sleeper.kill()
        sleeper.wait()
