"""Where the archive's files live: a local folder, or a bucket and prefix on S3.

Both give the one guarantee the archive builds on: a file appears whole or not at all. On disk a
file is written under a temporary name, synced, then renamed (atomic within a folder); on S3 it is
put in one request (an object becomes visible only once complete). Every failure becomes an
:class:`ArchiveStorageError` that names the location and the fix.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from orderbook_kit.errors import ArchiveStorageError
from orderbook_kit.paths import workbook_folder
from orderbook_kit.settings.environment import Settings

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["ArchiveStorage", "LocalStorage", "S3Storage", "archive_location", "open_storage"]

log = logging.getLogger(__name__)

S3_TIMEOUT_S = 10.0  # connecting, and each read of an answer
S3_RETRIES = 3  # botocore's own retries of a failed request, before the archive hears of it
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ArchiveStorage(Protocol):
    """The few operations the archive needs, on paths relative to its root (``a/b.parquet``)."""

    url: str  # where the archive is, for people: a folder or s3://bucket/prefix

    def check(self) -> None:
        """Raise :class:`ArchiveStorageError` unless the archive can be read and written."""

    def check_readable(self) -> None:
        """Raise :class:`ArchiveStorageError` unless there is an archive here to read (for the
        commands that only read it: a wrong location is a settings error, not a failed check)."""

    def write(self, relative: str, data: bytes) -> None:
        """Store ``data`` at ``relative``, whole or not at all (replacing any file there)."""

    def read(self, relative: str) -> bytes: ...

    def files(self, folder: str = "") -> list[str]:
        """Every file under ``folder`` (all, by default), relative to the root, sorted."""

    def delete(self, relatives: Iterable[str]) -> None: ...

    def location(self, relative: str) -> str:
        """``relative`` as DuckDB and pyarrow open it: an absolute path, or an s3:// URL."""

    @property
    def filesystem(self) -> AbstractFileSystem | None:
        """The fsspec filesystem DuckDB must be given to read :meth:`location` (None: local)."""


def archive_location(settings: Settings) -> str:
    """``settings.archive.url``, or the workbook's own ``.archive`` folder."""
    if settings.archive.url is not None:
        return settings.archive.url
    return str(workbook_folder("archive", "ORDERBOOK_ARCHIVE_DIR"))


def open_storage(settings: Settings) -> ArchiveStorage:
    """The storage ``settings.archive.url`` names. Nothing is contacted until it is used."""
    url = archive_location(settings)
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return S3Storage(bucket, prefix.strip("/"), settings.archive.s3_endpoint_url)
    return LocalStorage(Path(url.removeprefix("file://")).expanduser())


class LocalStorage:
    """The archive in a folder of this machine."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = str(self.root)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ArchiveStorageError(
                f"ORDERBOOK_ARCHIVE_URL: cannot write to {self.root} ({exc.strerror}); point it "
                "at a folder you can write to, or unset it for the workbook's .archive folder"
            ) from None

    def check_readable(self) -> None:
        if self.root.is_dir():
            return
        if self.root.exists():
            raise ArchiveStorageError(
                f"ORDERBOOK_ARCHIVE_URL: {self.root} is a file, not an archive's folder; point it "
                "at the folder the archive service writes, or unset it for the workbook's "
                ".archive folder"
            )
        raise ArchiveStorageError(
            f"ORDERBOOK_ARCHIVE_URL: there is no archive at {self.root} yet; run the archive "
            "service (`python -m orderbook_kit.archive`) first, or point ORDERBOOK_ARCHIVE_URL "
            "at the folder it writes"
        )

    def write(self, relative: str, data: bytes) -> None:
        target = self.root / relative
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as file:
                file.write(data)
                file.flush()
                # On disk before the rename: after a power cut the name never points at a file
                # whose data was still in the page cache.
                os.fsync(file.fileno())
            partial.replace(target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ArchiveStorageError(
                f"Could not write {target} ({exc.strerror}). Free some disk space or fix the "
                "folder's permissions."
            ) from exc

    def read(self, relative: str) -> bytes:
        try:
            return (self.root / relative).read_bytes()
        except OSError as exc:
            raise ArchiveStorageError(f"Could not read {self.root / relative} ({exc})") from exc

    def files(self, folder: str = "") -> list[str]:
        base = self.root / folder
        if not base.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in base.rglob("*")
            if path.is_file() and not path.name.startswith(".")  # in-flight writes are hidden
        )

    def delete(self, relatives: Iterable[str]) -> None:
        for relative in relatives:
            (self.root / relative).unlink(missing_ok=True)

    def location(self, relative: str) -> str:
        return str(self.root / relative)

    @property
    def filesystem(self) -> None:
        return None


class S3Storage:
    """The archive under ``prefix`` in S3 bucket ``bucket``, at ``endpoint`` (None: Amazon S3).

    Credentials come from where every AWS tool reads them (``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY``, ``~/.aws``...); none are needed for an S3 server on this machine.
    """

    def __init__(self, bucket: str, prefix: str, endpoint: str | None) -> None:
        self.bucket, self.prefix, self.endpoint = bucket, prefix, endpoint
        self.url = f"s3://{bucket}/{prefix}".rstrip("/")
        self._fs: AbstractFileSystem | None = None

    @property
    def filesystem(self) -> AbstractFileSystem:
        if self._fs is None:
            import s3fs  # imported on use: a local archive never needs it

            options: dict[str, Any] = {
                "connect_timeout": S3_TIMEOUT_S,
                "read_timeout": S3_TIMEOUT_S,
                "retries": {"max_attempts": S3_RETRIES, "mode": "standard"},
            }
            host = urllib.parse.urlsplit(self.endpoint).hostname if self.endpoint else None
            self._fs = s3fs.S3FileSystem(
                endpoint_url=self.endpoint,
                # A server on this machine (the kit's) needs no credentials; unsigned requests
                # then work even where no AWS credentials are configured at all.
                anon=host in LOOPBACK and "AWS_ACCESS_KEY_ID" not in os.environ,
                config_kwargs=options,
                # The archive lists what is there now, every time: no cached listings.
                use_listings_cache=False,
                skip_instance_cache=True,
            )
        return self._fs

    def _key(self, relative: str) -> str:
        return (
            f"{self.bucket}/{self.prefix}/{relative}"
            if self.prefix
            else f"{self.bucket}/{relative}"
        )

    def _failed(self, doing: str, exc: Exception) -> ArchiveStorageError:
        where = f"the S3 server at {self.endpoint}" if self.endpoint else "Amazon S3"
        if isinstance(exc, FileNotFoundError) and "bucket" in str(exc).lower():
            return ArchiveStorageError(
                f"ORDERBOOK_ARCHIVE_URL: bucket {self.bucket!r} does not exist on {where}. "
                "Create it (the kit's S3 server: `python -m orderbook_kit.lab.s3 start "
                f"--bucket {self.bucket}`), or use another bucket."
            )
        if isinstance(exc, PermissionError):
            return ArchiveStorageError(
                f"{where} refused {doing} in {self.url} ({exc}). Check the credentials "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and the bucket's permissions."
            )
        return ArchiveStorageError(
            f"Could not reach {where} while {doing} in {self.url} ({type(exc).__name__}: {exc}). "
            "Is it running (the kit's: `python -m orderbook_kit.lab.s3 status`)? Is "
            "AWS_ENDPOINT_URL right?"
        )

    def check(self) -> None:
        try:
            self.filesystem.ls(self.bucket, detail=False)
        except Exception as exc:  # botocore, aiohttp and OS errors alike: all mean "cannot use"
            raise self._failed("listing", exc) from exc

    def check_readable(self) -> None:
        self.check()  # the bucket is there and answers; an empty prefix is an empty archive

    def write(self, relative: str, data: bytes) -> None:
        try:
            self.filesystem.pipe_file(self._key(relative), data)
        except Exception as exc:
            raise self._failed(f"writing {relative}", exc) from exc

    def read(self, relative: str) -> bytes:
        try:
            return bytes(self.filesystem.cat_file(self._key(relative)))
        except Exception as exc:
            raise self._failed(f"reading {relative}", exc) from exc

    def files(self, folder: str = "") -> list[str]:
        base = self._key(folder).rstrip("/")
        root = self._key("")
        try:
            found = self.filesystem.find(base)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise self._failed("listing", exc) from exc
        return sorted(key.removeprefix(root) for key in found)

    def delete(self, relatives: Iterable[str]) -> None:
        keys = [self._key(relative) for relative in relatives]
        if not keys:
            return
        try:
            self.filesystem.rm(keys)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._failed("deleting", exc) from exc

    def location(self, relative: str) -> str:
        return f"s3://{self._key(relative)}"
