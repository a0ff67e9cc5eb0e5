"""S3Proxy run by the kit: a real S3 API server on 127.0.0.1, its buckets folders on disk.

Why S3Proxy and not Adobe's S3Mock: S3Mock's plain-HTTP port always listens on every network
interface (only its HTTPS port can be bound to one address), and the kit's servers listen on
127.0.0.1 only. S3Proxy binds where it is told, starts in about a second and keeps every object
as a file (its ``filesystem`` backend), so the data outlives a restart.

It runs without authentication, like the kit's PostgreSQL: only programs on this machine reach
it. Clients may sign their requests with any key or none.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.lab import jvm
from orderbook_kit.lab.managed import ManagedServer, ServerStatus
from orderbook_kit.paths import workbook_folder

__all__ = [
    "DEFAULT_BUCKET",
    "S3PROXY_VERSION",
    "S3Server",
    "default_state_dir",
    "ensure",
    "start",
    "status",
    "stop",
    "tail_log",
]

S3PROXY = "org.gaul:s3proxy"
S3PROXY_VERSION = "4.1.0"  # needs Java 17
DEFAULT_BUCKET = "orderbook"
HEAP = "-Xmx256m"  # objects stream to disk; the heap holds requests, not data


def default_state_dir() -> Path:
    return workbook_folder("s3", "ORDERBOOK_S3_DIR")


class S3Server(ManagedServer):
    """S3Proxy from ``state_dir``: its buckets are the folders of ``data/``."""

    name = "S3 server"
    program = "s3proxy"
    url_variable = "AWS_ENDPOINT_URL"
    command_name = "python -m orderbook_kit.lab.s3"

    def __init__(self, state_dir: Path, buckets: tuple[str, ...] = (DEFAULT_BUCKET,)) -> None:
        super().__init__(state_dir)
        self.buckets = tuple(_bucket_name(bucket) for bucket in buckets)

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"  # one folder per bucket

    @property
    def config_file(self) -> Path:
        return self.directory / "s3proxy.conf"

    @property
    def marker(self) -> str:
        return str(self.config_file)

    def start(self, url: str, *, timeout_s: float | None = None) -> str:
        self._make_buckets()  # also for a server that runs already: a bucket is a folder
        return super().start(url, timeout_s=timeout_s)

    def ensure(self, url: str) -> bool:
        running = self.status()
        if running is not None and running.url == url.rstrip("/"):
            self._make_buckets()
            return False
        return super().ensure(url)  # another S3 server (Docker's): its buckets are its own

    def prepare(self, host: str, port: int) -> None:
        self.config_file.write_text(
            f"s3proxy.endpoint=http://{host}:{port}\n"
            "s3proxy.authorization=none\n"
            "jclouds.provider=filesystem\n"
            f"jclouds.filesystem.basedir={self.data_dir}\n"
        )

    def command(self, host: str, port: int) -> list[str]:
        java = jvm.find_java()
        jar = jvm.maven_jar(
            jvm.default_home(),
            S3PROXY,
            S3PROXY_VERSION,
            jvm.default_home() / "tools" / f"s3proxy-{S3PROXY_VERSION}",
            doing=f"S3Proxy {S3PROXY_VERSION} (about 55 MB)",
            classifier="jar-with-dependencies",
        )
        return [str(java), HEAP, "-jar", str(jar), "--properties", str(self.config_file)]

    def answers(self, url: str) -> bool:
        """Does an S3 API answer at ``url``? (Any HTTP answer to an unsigned bucket listing: a
        403 from a real S3 says "S3" as clearly as a 200.)"""
        try:
            with urllib.request.urlopen(f"{url}/", timeout=2) as response:
                return bool(response.status < 500)
        except urllib.error.HTTPError as exc:
            return exc.code < 500
        except (urllib.error.URLError, OSError):
            return False

    def _make_buckets(self) -> None:
        try:
            for bucket in self.buckets:
                (self.data_dir / bucket).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OrderbookKitError(
                f"ORDERBOOK_S3_DIR: cannot use {self.directory} ({exc.strerror}); point it at a "
                "folder you can write to, or unset it"
            ) from None


def start(
    url: str,
    state_dir: Path,
    *,
    buckets: tuple[str, ...] = (DEFAULT_BUCKET,),
    timeout_s: float | None = None,
) -> str:
    """Start the S3 server at ``url`` (``http://127.0.0.1:<port>``) unless it runs already from
    ``state_dir``, with ``buckets`` created; its URL once it answers."""
    return S3Server(state_dir, buckets).start(url, timeout_s=timeout_s)


def ensure(url: str, state_dir: Path, *, buckets: tuple[str, ...] = (DEFAULT_BUCKET,)) -> bool:
    """Start the kit's S3 server at ``url`` unless one answers there; True if started now."""
    return S3Server(state_dir, buckets).ensure(url)


def stop(state_dir: Path, *, timeout_s: float | None = None) -> bool:
    """Stop the S3 server of ``state_dir``; False if none ran. Its buckets are kept."""
    return S3Server(state_dir).stop(timeout_s=timeout_s)


def status(state_dir: Path) -> ServerStatus | None:
    """The S3 server running from ``state_dir``, or None."""
    return S3Server(state_dir).status()


def tail_log(state_dir: Path, lines: int = 25) -> str:
    return S3Server(state_dir).tail_log(lines)


def _bucket_name(bucket: str) -> str:
    # S3's rules, short form: 3-63 characters, lower case, digits, dots and hyphens.
    if not (3 <= len(bucket) <= 63) or not all(
        c.islower() or c.isdigit() or c in ".-" for c in bucket
    ):
        raise OrderbookKitError(
            f"{bucket!r} is not an S3 bucket name: use 3-63 lower-case letters, digits, dots or "
            "hyphens, e.g. orderbook"
        )
    return bucket
