"""The script that gives the compose file's broker its JMX exporter, run for real against Maven
Central: it fetches the very jar the JVM broker gets through Maven, once, and a failed download
leaves a warning and nothing half-written (so Kafka starts without metrics rather than not at
all)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from orderbook_kit.lab import jvm as runtime

SCRIPT = (
    Path(__file__).resolve().parents[2]
    / "orderbook_kit/monitoring/config/docker/fetch-jmx-exporter.sh"
)


def fetch(folder: Path, version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPT), str(folder)],
        env={"PATH": os.environ["PATH"], "JMX_EXPORTER_VERSION": version},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_fetches_the_same_agent_the_jvm_broker_gets_and_only_once(tmp_path: Path) -> None:
    version = runtime.JMX_EXPORTER_VERSION
    first = fetch(tmp_path, version)
    assert first.returncode == 0, first.stderr
    assert "downloaded" in first.stdout
    fetched = tmp_path / f"jmx_prometheus_javaagent-{version}.jar"
    from_maven = runtime.jmx_exporter_jar(runtime.default_home())
    assert fetched.read_bytes() == from_maven.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == [fetched.name]  # no partial file left

    second = fetch(tmp_path, version)
    assert second.returncode == 0 and "already" in second.stdout


def test_a_failed_download_warns_succeeds_and_leaves_nothing(tmp_path: Path) -> None:
    done = fetch(tmp_path, "0.0.0-no-such-version")
    # Exit 0: the broker depends on this container finishing well, and starts without metrics.
    assert done.returncode == 0
    assert "warning: could not download" in done.stderr and "without metrics" in done.stderr
    assert list(tmp_path.iterdir()) == []
