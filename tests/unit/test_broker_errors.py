"""Each way the JVM broker can fail to start gives a message that names the fix."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from orderbook_kit.errors import BrokerError, JavaNotFoundError, MavenNotFoundError, PortInUseError
from orderbook_kit.lab import jvm as runtime
from orderbook_kit.lab.broker import server as process
from tests.conftest import write_executable


def test_missing_java_names_the_install(monkeypatch: pytest.MonkeyPatch, fake_bin: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(fake_bin))
    with pytest.raises(JavaNotFoundError) as error:
        runtime.find_java()
    message = str(error.value)
    assert message.startswith("Java was not found: the Kafka broker needs Java 17 or newer.")
    assert "JAVA_HOME" in message
    assert "docker compose up -d --wait" in message


def test_old_java_is_rejected_with_its_version(
    monkeypatch: pytest.MonkeyPatch, fake_bin: Path
) -> None:
    write_executable(fake_bin, "java", """echo 'openjdk version "11.0.22" 2024-01-16' >&2""")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(fake_bin))
    with pytest.raises(JavaNotFoundError, match=r"is Java 11, but Kafka 4\.3\.1 needs Java 17"):
        runtime.find_java()


def test_java_home_wins_over_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home_bin = tmp_path / "jdk" / "bin"
    home_bin.mkdir(parents=True)
    write_executable(home_bin, "java", """echo 'java version "1.8.0_392"' >&2""")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    with pytest.raises(JavaNotFoundError, match="is Java 8"):
        runtime.find_java()


def test_missing_maven_names_the_install(
    monkeypatch: pytest.MonkeyPatch, fake_bin: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(fake_bin))
    with pytest.raises(MavenNotFoundError, match=r"Maven \(`mvn`\) was not found") as error:
        runtime.resolve_jars(tmp_path / "home")
    assert "apt-get install maven" in str(error.value)


def test_port_taken_by_another_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The start looks again for a while (a port can seem taken for a moment after a SIGKILL);
    # a squatter that stays is refused all the same, only sooner here.
    monkeypatch.setattr(process, "PORT_RELEASE_WAIT_S", 0.5)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(PortInUseError) as error:
            process.start(f"127.0.0.1:{port}", tmp_path / "broker", timeout_s=5)
    message = str(error.value)
    assert message.startswith(f"Port {port} on 127.0.0.1 is already in use by another program")
    assert "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:<free port>" in message


@pytest.mark.parametrize("address", ["kafka.example.com:9092", "0.0.0.0:9092", "9092"])
def test_broker_listens_on_loopback_only(address: str, tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match=r"127\.0\.0\.1"):
        process.start(address, tmp_path / "broker")


def test_java_version_parsing(fake_bin: Path) -> None:
    cases = {
        'openjdk version "17.0.15" 2025-04-15': 17,
        'java version "1.8.0_392"': 8,
        'openjdk version "21" 2023-09-19': 21,
    }
    for banner, major in cases.items():
        java = write_executable(fake_bin, "java", f"echo '{banner}' >&2")
        assert runtime.java_major_version(java) == major


def port_in_time_wait(family: socket.AddressFamily, host: str) -> int:
    """A loopback port nobody listens on, whose last connection is in TIME_WAIT on its side -
    what a broker's port looks like right after it was killed with clients connected."""
    with socket.socket(family) as listener:
        # As the broker's JVM does: SO_REUSEADDR on its server socket (Linux lets a new bind
        # reuse a TIME_WAIT port only when both sockets set it).
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the listening side closes first, so TIME_WAIT is on its port
        client.close()
    return port


# The JVM listens on a dual-stack IPv6 socket where the machine has IPv6, else on IPv4.
LISTENERS = [(socket.AF_INET, "127.0.0.1")]
if socket.has_ipv6:
    LISTENERS.append((socket.AF_INET6, "::ffff:127.0.0.1"))


@pytest.mark.parametrize(("family", "host"), LISTENERS, ids=[f.name for f, _ in LISTENERS])
def test_a_port_in_time_wait_is_free_for_a_new_broker(
    family: socket.AddressFamily, host: str
) -> None:
    port = port_in_time_wait(family, host)
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # the old probe's way: refused while TIME_WAIT lasts
    process._check_port_free("127.0.0.1", port)  # a listener would raise PortInUseError


FAKE_MAVEN = """
for argument in "$@"; do
  case "$argument" in -DoutputDirectory=*) out="${argument#-DoutputDirectory=}" ;; esac
done
i=0
while [ $i -lt 60 ]; do
  echo "Downloaded from central: https://repo/x$i.jar (1 kB)"; i=$((i+1))
done
mkdir -p "$out" && touch "$out/kafka.jar"
"""


def test_the_first_download_shows_progress_and_is_cached(
    monkeypatch: pytest.MonkeyPatch, fake_bin: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # A newcomer's first `make lab` waits for Maven: they must see that something is happening.
    write_executable(fake_bin, "mvn", FAKE_MAVEN)
    write_executable(fake_bin, "java", """echo 'openjdk version "17.0.15" 2025-04-15' >&2""")
    monkeypatch.setenv("PATH", f"{fake_bin}:/usr/bin:/bin")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    jars = runtime.resolve_jars(tmp_path / "home")
    said = capsys.readouterr().err
    assert f"Downloading Apache Kafka {runtime.KAFKA_VERSION} with Maven" in said
    assert "once only" in said and "... 25 files downloaded" in said and "... 50 files" in said
    assert "done in" in said
    assert (jars / "kafka.jar").exists()
    runtime.resolve_jars(tmp_path / "home")  # cached: Maven is not run, nothing is said
    assert capsys.readouterr().err == ""
