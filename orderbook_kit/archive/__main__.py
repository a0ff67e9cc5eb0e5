"""The archive service: write clean ticks to Parquet files, on disk or on S3, exactly once.

python -m orderbook_kit.archive                  # run until Ctrl-C (or SIGTERM)
python -m orderbook_kit.archive --idle 5 -q      # or once no message came for 5 seconds
python -m orderbook_kit.archive check            # Great Expectations over the archive, with
                                                 #   Data Docs in .archive-docs/ (exit 1: failed)
python -m orderbook_kit.archive s3 start         # the kit's own S3 server (also: stop, status,
                                                 #   ensure, logs)

Ctrl-C (or SIGTERM) closes every open file range (its files, then its commit marker) and prints
a summary; a second Ctrl-C, or kill -9, stops at once: the open ranges are then not archived, and
are read again on the next start.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..command_line import CommandParser
from ..config import load_settings, read_setting
from ..defaults import LOCAL_S3_URL
from ..errors import OrderbookKitError
from ..monitoring.metrics import ArchiveMetrics
from ..s3 import server
from ..service import ServiceParser, StopSignal, print_skipped, run_consumer_service, run_service
from .sink import ArchiveSink
from .storage import archive_location

EXIT_NOT_RUNNING = 3  # `s3 status`, as `broker status` and `db status` say it


def build_parser() -> ServiceParser:
    parser = ServiceParser(
        "python -m orderbook_kit.archive", __doc__.splitlines()[0], load_settings()
    )
    parser.add_idle_flag()
    parser.add_setting("--source-topic", "clean_topic", "topic to archive")
    parser.add_setting("--group", "archive_group", "consumer group")
    parser.add_setting("--archive-url", "archive_url", "folder or s3://bucket/prefix")
    parser.add_setting("--roll-ticks", "archive_roll_ticks", "close a file range after N records")
    parser.add_setting("--roll-seconds", "archive_roll_s", "...or after this many seconds")
    return parser


def archive(argv: Sequence[str] | None) -> int:
    stop = StopSignal().install()  # until connected, Ctrl-C interrupts at once
    parser = build_parser()
    arguments = parser.parse_args(argv)
    settings = parser.settings(arguments, argv)
    print(
        f"Archiving '{settings.clean_topic}' (Kafka at {settings.bootstrap_servers}) as group "
        f"'{settings.archive_group}' into {archive_location(settings)}, a file range every "
        f"{settings.archive_roll_ticks} records or {settings.archive_roll_s:g} s",
        flush=True,
    )
    metrics = ArchiveMetrics()
    metrics.watch_lag(settings, settings.archive_group, settings.clean_topic)
    sink = ArchiveSink(
        settings,
        on_skipped=None if arguments.quiet else print_skipped,
        metrics=metrics if arguments.metrics_port is not None else None,
    )
    return run_consumer_service(sink, stop, arguments, metrics, parser)


# --- s3: the kit's own S3-compatible server -----------------------------------------------------


def s3_url() -> str:
    """Only the one setting the s3 commands need: a bad TICK_COUNT must not stop `s3 stop`."""
    return str(read_setting("s3_endpoint_url") or LOCAL_S3_URL)


def s3(argv: Sequence[str]) -> int:
    parser = CommandParser(
        prog="python -m orderbook_kit.archive s3",
        description="The kit's own S3-compatible server (S3Proxy, no Docker) on 127.0.0.1, at "
        f"AWS_ENDPOINT_URL (default {LOCAL_S3_URL}).",
        epilog="Environment: AWS_ENDPOINT_URL, ORDERBOOK_S3_DIR (its buckets, default ./.s3).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("start", "start it, creating the bucket(s); wait until it answers"),
        ("ensure", "use the S3 server that answers at AWS_ENDPOINT_URL, else start"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "--bucket",
            action="append",
            help=f"bucket to create (repeatable; default {server.DEFAULT_BUCKET})",
        )
    commands.add_parser("stop", help="stop it (its buckets are kept)")
    commands.add_parser("status", help="is it running?")
    logs = commands.add_parser("logs", help="print the end of its log")
    logs.add_argument("-n", "--lines", type=int, default=25)
    arguments = parser.parse_args(argv)
    state_dir = server.default_state_dir()
    try:
        url = s3_url()
        if arguments.command in {"start", "ensure"}:
            buckets = tuple(arguments.bucket or (server.DEFAULT_BUCKET,))
            if arguments.command == "start":
                server.start(url, state_dir, buckets=buckets)
                started = True
            else:
                started = server.ensure(url, state_dir, buckets=buckets)
            if started:
                print(
                    f"S3 server (S3Proxy {server.S3PROXY_VERSION}) at {url}, bucket(s) "
                    f"{', '.join(buckets)}; data in {state_dir / 'data'}."
                )
            else:
                print(f"Using the S3 server that answers at {url}.")
            print(
                f"Point the archive at it: export AWS_ENDPOINT_URL={url} "
                f"ORDERBOOK_ARCHIVE_URL=s3://{buckets[0]}/archive"
            )
            return 0
        if arguments.command == "stop":
            if server.stop(state_dir):
                print("S3 server stopped. Its buckets are kept; `s3 start` brings them back.")
            else:
                print(f"No kit S3 server is running from {state_dir}.")
            return 0
        if arguments.command == "status":
            running = server.status(state_dir)
            if running is None:
                print(f"No kit S3 server is running from {state_dir}.")
                return EXIT_NOT_RUNNING
            print(f"S3 server pid {running.pid} at {running.url}. Log: {running.log_file}")
            return 0
        print(server.tail_log(state_dir, arguments.lines))
        return 0
    except OrderbookKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def check(argv: Sequence[str]) -> int:
    """Run the expectation suite over the archive of the current settings."""
    parser = CommandParser(
        prog="python -m orderbook_kit.archive check",
        description="Check every committed file of the archive with Great Expectations.",
        epilog="Environment: ORDERBOOK_ARCHIVE_URL, AWS_ENDPOINT_URL, ORDERBOOK_ARCHIVE_DOCS_DIR.",
    )
    parser.parse_args(argv)
    from .expectations import check_archive  # GX takes seconds to import: only when asked

    settings = load_settings()
    print(f"Checking the archive at {archive_location(settings)} ...", flush=True)
    result = check_archive(settings)
    print(result.summary())
    print(f"Data Docs: {result.docs}")
    return 0 if result.success else 1


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["s3"]:
        return s3(arguments[1:])
    if arguments[:1] == ["check"]:
        return run_service(lambda: check(arguments[1:]))
    return run_service(lambda: archive(argv))


if __name__ == "__main__":
    sys.exit(main())
