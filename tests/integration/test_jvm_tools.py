"""What needs the real Java and Maven but no broker: Maven's own failure when Maven Central is
unreachable, and the promise that the unit tests need neither."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orderbook_kit.errors import MavenResolveError
from orderbook_kit.lab import jvm as runtime

REPO = Path(__file__).resolve().parents[2]
JVM_TOOLS = {"java", "javac", "jshell", "mvn", "mvnw", "mvnDebug"}


def test_unreachable_maven_central_says_so(tmp_path: Path) -> None:
    # A mirror on a closed local port and an empty local repository: exactly what Maven sees
    # when Maven Central cannot be reached.
    settings = tmp_path / "settings.xml"
    settings.write_text(
        "<settings><mirrors><mirror><id>nowhere</id><mirrorOf>*</mirrorOf>"
        "<url>http://127.0.0.1:9/maven2</url></mirror></mirrors></settings>"
    )
    maven_args = ("-s", str(settings), f"-Dmaven.repo.local={tmp_path / 'm2'}")
    with pytest.raises(MavenResolveError) as error:
        runtime.resolve_jars(tmp_path / "home", maven_args=maven_args)
    message = str(error.value)
    assert message.startswith("Maven could not download Kafka's jars: Maven Central")
    assert "Check your internet connection or proxy" in message
    assert not (tmp_path / "home" / "lib" / runtime.KAFKA_VERSION).exists()


def path_without_jvm_tools(folder: Path) -> str:
    """A PATH that offers every program of this one except Java and Maven."""
    folder.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            target = folder / entry.name
            if entry.name in JVM_TOOLS or target.exists():
                continue
            if entry.is_file() and os.access(entry.path, os.X_OK):
                target.symlink_to(entry.path)
    return str(folder)


# In two halves (alternate files), so that the two test workers can share them.
UNIT_TEST_FILES = sorted((REPO / "tests" / "unit").glob("test_*.py"))
HALVES = 2


@pytest.mark.parametrize("half", range(HALVES), ids=lambda half: f"half-{half + 1}-of-{HALVES}")
def test_the_unit_tests_pass_with_no_java_no_maven_and_no_database(
    tmp_path: Path, half: int
) -> None:
    # `make unit` is what a learner without Java runs: the README promises it needs none of them.
    # In a full `make test` this is where the unit tests run (the root conftest.py leaves them
    # out of the session), so a failure below lists the failing unit tests.
    files = [str(path.relative_to(REPO)) for path in UNIT_TEST_FILES[half::HALVES]]
    path = path_without_jvm_tools(tmp_path / "bin")
    assert shutil.which("java", path=path) is None and shutil.which("mvn", path=path) is None
    environment = {
        "PATH": path,
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp_path),
        # Port 1: nothing answers there, so a unit test that needed PostgreSQL would fail.
        "DATABASE_URL": "postgresql://orderbook@127.0.0.1:1/orderbook",
    }  # no JAVA_HOME, no broker address: a machine that never had a JVM
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *files],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout.splitlines()[-1]
    # The one allowed skip: an optional system package (promtool) absent from this machine.
    skips = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    assert all("CI installs it" in line for line in skips), skips


def test_two_processes_resolving_at_once_download_once_and_both_get_every_jar(
    tmp_path: Path,
) -> None:
    # Two test workers (or two notebooks) starting a broker on a fresh clone: the second must
    # neither download into the first's folder nor delete it while the first's broker uses it.
    code = (
        "import sys; from pathlib import Path; from orderbook_kit.lab import jvm as runtime; "
        "folder = runtime.resolve_jars(Path(sys.argv[1])); "
        "print(len(list(folder.glob('*.jar'))))"
    )
    resolvers = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "home")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [resolver.communicate(timeout=600) for resolver in resolvers]
    assert [resolver.returncode for resolver in resolvers] == [0, 0], results
    counts = {int(out) for out, _ in results}
    assert len(counts) == 1 and counts.pop() > 40  # the same complete folder for both
    assert sum(err.count("Downloading Apache Kafka") for _, err in results) == 1
