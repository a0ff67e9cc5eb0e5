"""`make bench` runs end to end against the real broker and PostgreSQL, and prints every figure.

Not a speed test (figures differ between machines and are only printed): it keeps the benchmark
from rotting, since nothing else runs it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "throughput.py"
FIGURE = re.compile(r"^(?P<name>.+?)\s+(?P<count>\d+) in\s+[\d.]+ s\s+[\d,]+ /s$")


def test_the_benchmark_prints_a_figure_for_every_stage() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--count", "600"],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ,
    )
    assert result.returncode == 0, result.stderr
    figures = {
        match["name"].strip(): int(match["count"])
        for line in result.stdout.splitlines()
        if (match := FIGURE.match(line))
    }
    assert figures["PostgreSQL: new rows, 2000 a transaction"] == 600
    assert figures["PostgreSQL: the same rows again (all skipped)"] == 600
    assert figures["store, clean topic -> PostgreSQL"] > 0
    assert "produce to Kafka, until acknowledged" in figures
    assert "quality gate, raw -> clean + dead letters" in figures
    assert "peak memory (RSS)" in result.stdout
