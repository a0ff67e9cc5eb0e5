"""The archive service: write clean ticks to Parquet files, on disk or on S3, exactly once.

python -m orderbook_kit.archive                  # run until Ctrl-C (or SIGTERM)
python -m orderbook_kit.archive --idle 5 -q      # or once no message came for 5 seconds
python -m orderbook_kit.archive check            # Great Expectations over the archive, with
                                                 #   Data Docs in .archive-docs/ (exit 1: failed)

The kit's own S3-compatible server is a lab server: ``python -m orderbook_kit.lab.s3 start``.

Ctrl-C (or SIGTERM) closes every open file range (its files, then its commit marker) and prints
a summary; a second Ctrl-C, or kill -9, stops at once: the open ranges are then not archived, and
are read again on the next start.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from orderbook_kit.archive.metrics import ArchiveMetrics
from orderbook_kit.archive.sink import ArchiveSink
from orderbook_kit.archive.storage import archive_location
from orderbook_kit.runtime.command_line import CommandParser
from orderbook_kit.runtime.service import ConsumerCommand, print_skipped, run_service
from orderbook_kit.settings.environment import Settings, load_settings


def announce(settings: Settings) -> str:
    return (
        f"Archiving '{settings.topics.clean}' (Kafka at {settings.kafka.bootstrap_servers}) as "
        f"group '{settings.archive.group}' into {archive_location(settings)}, a file range every "
        f"{settings.archive.roll_ticks} records or {settings.archive.roll_s:g} s"
    )


COMMAND = ConsumerCommand(
    prog="python -m orderbook_kit.archive",
    description=__doc__.splitlines()[0],
    topic_key="topics.clean",
    reads="topic to archive",
    group_key="archive.group",
    flags=[
        ("--archive-url", "archive.url", "folder or s3://bucket/prefix"),
        ("--roll-ticks", "archive.roll_ticks", "close a file range after N records"),
        ("--roll-seconds", "archive.roll_s", "...or after this many seconds"),
    ],
    announce=announce,
    new_metrics=ArchiveMetrics,
    service=ArchiveSink,
    reporter="on_skipped",
    printer=print_skipped,
)


def check(argv: Sequence[str]) -> int:
    """Run the expectation suite over the archive of the current settings."""
    parser = CommandParser(
        prog="python -m orderbook_kit.archive check",
        description="Check every committed file of the archive with Great Expectations.",
        epilog="Environment: ORDERBOOK_ARCHIVE_URL, AWS_ENDPOINT_URL, ORDERBOOK_ARCHIVE_DOCS_DIR.",
    )
    parser.parse_args(argv)
    from orderbook_kit.archive.expectations import (
        check_archive,  # GX takes seconds to import: only when asked
    )

    settings = load_settings()
    print(f"Checking the archive at {archive_location(settings)} ...", flush=True)
    result = check_archive(settings)
    print(result.summary())
    print(f"Data Docs: {result.docs}")
    return 0 if result.success else 1


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["check"]:
        return run_service(lambda: check(arguments[1:]))
    return COMMAND.main(argv, load_settings)


if __name__ == "__main__":
    sys.exit(main())
