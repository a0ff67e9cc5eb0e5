"""Cold storage: the clean stream archived as Parquet files, on disk or on S3, exactly once.

``python -m orderbook_kit.archive`` runs the archive service; :mod:`.queries` asks the archive
questions with DuckDB; :mod:`.expectations` checks it with Great Expectations;
``python -m orderbook_kit.lab.s3 start`` runs an S3-compatible server on this machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook_kit.exports import lazy_exports

if TYPE_CHECKING:
    from orderbook_kit.archive.expectations import archive_frame as archive_frame
    from orderbook_kit.archive.expectations import check_archive as check_archive
    from orderbook_kit.archive.expectations import check_rows as check_rows
    from orderbook_kit.archive.expectations import expectation_suite as expectation_suite
    from orderbook_kit.archive.layout import COMMITS as COMMITS
    from orderbook_kit.archive.queries import Archive as Archive
    from orderbook_kit.archive.queries import committed_files as committed_files
    from orderbook_kit.archive.sink import ArchiveSink as ArchiveSink
    from orderbook_kit.archive.storage import archive_location as archive_location
    from orderbook_kit.archive.storage import open_storage as open_storage

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "orderbook_kit.archive.sink": ["ArchiveSink"],
        "orderbook_kit.archive.queries": ["Archive", "committed_files"],
        "orderbook_kit.archive.storage": ["archive_location", "open_storage"],
        "orderbook_kit.archive.layout": ["COMMITS"],
        "orderbook_kit.archive.expectations": [
            "archive_frame",
            "check_archive",
            "check_rows",
            "expectation_suite",
        ],
    },
)
