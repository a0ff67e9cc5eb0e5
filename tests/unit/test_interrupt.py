"""Ctrl-C always stops a service within a few seconds, with one line and exit code 130."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import interrupt


@pytest.mark.parametrize("service", ["orderbook_kit.ingest", "orderbook_kit.quality"])
def test_ctrl_c_while_connecting_to_an_unreachable_broker(service: str, free_address: str) -> None:
    # Nothing listens at free_address: the client would retry for KAFKA_CLIENT_TIMEOUT_S (30 s).
    child = subprocess.Popen(
        [sys.executable, "-m", service, "--bootstrap-servers", free_address],
        env={**os.environ, "KAFKA_CLIENT_TIMEOUT_S": "30"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().startswith("Connecting to Kafka at")
        time.sleep(1.0)  # well inside the connection attempt
        stderr, took = interrupt(child)
    finally:
        child.kill()
    assert child.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["Stopped (interrupted)."]
    assert took < 3, f"took {took:.1f} s to stop after Ctrl-C"
