"""Find Java and Maven, and resolve Apache Kafka's jars from Maven Central into a local cache.

The JVM broker needs no Kafka download or Docker image: Maven fetches the broker (``kafka_2.13``),
Kafka's command-line tools (``kafka-tools``) and a log4j2 binding, pinned below, into
``<home>/lib/<version>/``. A marker file written after a complete copy makes later starts skip
Maven entirely, so they are offline and fast.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from orderbook_kit.errors import (
    BrokerError,
    JavaNotFoundError,
    MavenNotFoundError,
    MavenResolveError,
)
from orderbook_kit.lab.processes import exclusive
from orderbook_kit.paths import workbook_folder

__all__ = [
    "KAFKA_VERSION",
    "LOG4J_VERSION",
    "MIN_JAVA",
    "classpath",
    "default_home",
    "find_java",
    "find_maven",
    "java_major_version",
    "resolve_jars",
]


# The newest Apache Kafka release that kafka-python 3.0.x is tested against (its protocol tables
# stop at 4.3). docker-compose.yml pins the same version; a test keeps the two in step.
KAFKA_VERSION = "4.3.1"
SCALA_VERSION = "2.13"
# Kafka 4.x logs through slf4j 1.7 and ships no backend: without this binding it logs nothing.
LOG4J_VERSION = "2.25.3"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
# Prometheus's JMX exporter, run as a Java agent in the broker: Kafka's JMX metrics over HTTP.
JMX_EXPORTER = "io.prometheus.jmx:jmx_prometheus_javaagent"
JMX_EXPORTER_VERSION = "1.0.1"
MIN_JAVA = 17
MAVEN_TIMEOUT_S = 600.0
_COMPLETE_MARKER = ".complete"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.orderbook-kit</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId>
      <version>{kafka}</version>
      <exclusions>
        <!-- Kafka Connect's runtime (Jetty, Jersey, ...) is not needed by the tools we run. -->
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

# Lines of Maven's output that mean "could not reach the repository", as opposed to other failures.
_NETWORK_FAILURE = re.compile(
    r"Could not transfer|Unknown host|UnknownHostException|Connection refused|"
    r"connect timed out|Network is unreachable|No route to host|Could not resolve dependencies",
    re.IGNORECASE,
)


def default_home() -> Path:
    """Where the jars Maven fetches (Kafka's, S3Proxy's, the JMX exporter's) and the default
    broker live: ``$ORDERBOOK_KAFKA_HOME``, else ``./.kafka``."""
    return workbook_folder("kafka", "ORDERBOOK_KAFKA_HOME")


def find_java() -> Path:
    """Return a Java >= 17 executable (``$JAVA_HOME/bin/java``, else ``java`` on PATH)."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    if candidate is None or not candidate.exists():
        found = shutil.which("java")
        if found is None:
            raise JavaNotFoundError(
                f"Java was not found: the Kafka broker needs Java {MIN_JAVA} or newer. Install a "
                f"JDK {MIN_JAVA}+ (e.g. `sudo apt-get install openjdk-17-jdk-headless`, or "
                "https://adoptium.net) and put `java` on PATH or set JAVA_HOME - or run Kafka "
                "with Docker instead: `docker compose up -d --wait`."
            )
        candidate = Path(found)
    major = java_major_version(candidate)
    if major < MIN_JAVA:
        raise JavaNotFoundError(
            f"{candidate} is Java {major}, but Kafka {KAFKA_VERSION} needs Java {MIN_JAVA} or "
            f"newer. Install a JDK {MIN_JAVA}+ and put it first on PATH or set JAVA_HOME to it - "
            "or run Kafka with Docker instead: `docker compose up -d --wait`."
        )
    return candidate


def java_major_version(java: Path) -> int:
    """Parse ``java -version`` (printed on stderr): '1.8.0_392' -> 8, '17.0.15' -> 17."""
    try:
        result = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JavaNotFoundError(
            f"Could not run `{java} -version` ({exc}). Check the Java install or JAVA_HOME."
        ) from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        raise JavaNotFoundError(
            f"`{java} -version` did not print a version. Check the Java install or JAVA_HOME."
        )
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    return minor if major == 1 else major


def find_maven() -> Path:
    """Return the ``mvn`` executable or explain how to get one."""
    found = shutil.which("mvn")
    if found is None:
        raise MavenNotFoundError(
            "Maven (`mvn`) was not found: the kit uses it once to download Kafka's jars from "
            "Maven Central. Install it (e.g. `sudo apt-get install maven`, or "
            "https://maven.apache.org/install.html) and put `mvn` on PATH - or run Kafka with "
            "Docker instead: `docker compose up -d --wait`."
        )
    return Path(found)


def jar_dir(home: Path) -> Path:
    return home / "lib" / KAFKA_VERSION


def classpath(home: Path) -> str:
    """The Java class path for the broker and tools; resolves the jars first if needed."""
    return str(resolve_jars(home) / "*")


def resolve_jars(home: Path, *, maven_args: tuple[str, ...] = ()) -> Path:
    """Make sure ``<home>/lib/<version>/`` holds every jar; return that folder.

    ``maven_args`` are passed to ``mvn`` as they are (tests use them to point Maven at an
    unreachable repository).
    """
    target = jar_dir(home)
    if (target / _COMPLETE_MARKER).exists():
        return target
    # Two processes starting brokers at once (test workers, two notebooks) download once.
    with _maven_lock(home, "downloading Kafka's jars"):
        if (target / _COMPLETE_MARKER).exists():
            return target
        return _resolve_jars(target, maven_args)


@contextlib.contextmanager
def _maven_lock(home: Path, doing: str) -> Iterator[None]:
    """Maven's downloads into ``home``, one process at a time."""
    folder = home / "lib"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BrokerError(
            f"ORDERBOOK_KAFKA_HOME: cannot create {folder} ({exc.strerror}); point "
            "ORDERBOOK_KAFKA_HOME at a folder you can write to, or unset it"
        ) from None
    try:
        with exclusive(folder / ".maven.lock", timeout_s=MAVEN_TIMEOUT_S + 60, doing=doing):
            yield
    except TimeoutError as exc:
        raise BrokerError(str(exc)) from None


def _resolve_jars(target: Path, maven_args: tuple[str, ...]) -> Path:
    mvn = find_maven()
    find_java()  # Maven itself needs Java; say so clearly before Maven does it obscurely.
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BrokerError(
            f"ORDERBOOK_KAFKA_HOME: cannot create {target.parent} ({exc.strerror}); point "
            "ORDERBOOK_KAFKA_HOME at a folder you can write to, or unset it"
        ) from None
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".resolve-") as work:
        pom = Path(work, "pom.xml")
        pom.write_text(_POM.format(kafka=KAFKA_VERSION, scala=SCALA_VERSION, log4j=LOG4J_VERSION))
        staging = Path(work, "jars")
        command = [
            str(mvn),
            "--batch-mode",
            "-f",
            str(pom),
            *maven_args,
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        _say(
            f"Downloading Apache Kafka {KAFKA_VERSION} with Maven into {target} - once only "
            "(about 45 MB; usually under a minute, up to a few minutes on a slow line) ..."
        )
        returncode, output = _run_maven(command)
        if returncode != 0:
            raise MavenResolveError(_explain_maven_failure(output))
        # Copy into place only once complete, so an interrupted download is never mistaken
        # for a usable cache.
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(staging), target)
        (target / _COMPLETE_MARKER).write_text(f"kafka {KAFKA_VERSION}\n")
    return target


def jmx_exporter_jar(home: Path, *, maven_args: tuple[str, ...] = ()) -> Path:
    """The JMX exporter's agent jar, downloaded with Maven once into ``<home>/agents/``.

    Kept apart from Kafka's jars: an agent is not a library of the broker, and must not be on
    its class path.
    """
    return maven_jar(
        home,
        JMX_EXPORTER,
        JMX_EXPORTER_VERSION,
        home / "agents" / f"jmx-exporter-{JMX_EXPORTER_VERSION}",
        doing="Prometheus's JMX exporter",
        maven_args=maven_args,
    )


def maven_jar(
    home: Path,
    artifact: str,
    version: str,
    folder: Path,
    *,
    doing: str,
    classifier: str | None = None,
    maven_args: tuple[str, ...] = (),
) -> Path:
    """One self-contained jar (``group:artifact``), downloaded with Maven once into ``folder``
    (under ``home``, whose Maven downloads it shares a lock with); its path."""
    name = artifact.split(":")[1]
    jar = folder / (f"{name}-{version}-{classifier}.jar" if classifier else f"{name}-{version}.jar")
    if jar.exists():
        return jar
    with _maven_lock(home, f"downloading {doing}"):
        if jar.exists():
            return jar
        coordinates = f"{artifact}:{version}" + (f":jar:{classifier}" if classifier else "")
        return _download_jar(coordinates, jar, doing, maven_args)


def _download_jar(coordinates: str, jar: Path, doing: str, maven_args: tuple[str, ...]) -> Path:
    mvn = find_maven()
    find_java()
    jar.parent.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jar.parent.parent, prefix=".resolve-") as work:
        command = [
            str(mvn),
            "--batch-mode",
            *maven_args,
            f"{DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact={coordinates}",
            f"-DoutputDirectory={work}",
        ]
        _say(f"Downloading {doing} with Maven (once) ...")
        returncode, output = _run_maven(command)
        if returncode != 0:
            raise MavenResolveError(_explain_maven_failure(output, doing))
        jar.parent.mkdir(exist_ok=True)
        # Moved into place whole: a half-downloaded jar is never mistaken for the real one.
        shutil.move(str(Path(work, jar.name)), jar)
    return jar


def _say(message: str) -> None:
    """Progress for a person waiting at a terminal (stderr, so it never mixes with output)."""
    print(message, file=sys.stderr, flush=True)


def _run_maven(command: list[str]) -> tuple[int, str]:
    """Run Maven, counting its downloads aloud; stopped after ``MAVEN_TIMEOUT_S``."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    timed_out = threading.Event()

    def stop_maven() -> None:
        timed_out.set()
        process.kill()

    watchdog = threading.Timer(MAVEN_TIMEOUT_S, stop_maven)
    watchdog.start()
    lines: list[str] = []
    downloads = 0
    started = time.monotonic()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Downloaded from"):
                downloads += 1
                if downloads % 25 == 0:
                    elapsed = time.monotonic() - started
                    _say(f"  ... {downloads} files downloaded ({elapsed:.0f} s)")
        returncode = process.wait()
    finally:
        watchdog.cancel()
    if timed_out.is_set():
        raise MavenResolveError(
            f"Maven did not finish resolving Kafka's jars within {MAVEN_TIMEOUT_S:.0f} s. "
            "Check your connection to Maven Central (or your Maven mirror in "
            "~/.m2/settings.xml) and try again."
        )
    if returncode == 0:
        _say(f"  done in {time.monotonic() - started:.0f} s.")
    return returncode, "".join(lines)


def _explain_maven_failure(output: str, what: str = "Kafka's jars") -> str:
    errors = [line for line in output.splitlines() if "[ERROR]" in line][:6]
    detail = "\n".join(errors) or output[-1500:]
    if _NETWORK_FAILURE.search(output):
        return (
            f"Maven could not download {what}: Maven Central (or the mirror in "
            "~/.m2/settings.xml) is unreachable. Check your internet connection or proxy "
            "(Maven reads proxies from ~/.m2/settings.xml), then run the command again; once "
            "the jars are cached, starts work offline.\nMaven said:\n" + detail
        )
    return f"Maven failed to resolve {what}.\nMaven said:\n" + detail
