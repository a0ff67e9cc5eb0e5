"""Great Expectations (GX Core) over the archive: what every archived tick must satisfy, checked
by a checkpoint that writes Data Docs (HTML) for people to read.

The suite runs over one DataFrame of every committed file, with a few columns derived on loading
so that rules about files become rules about columns: ``file`` (which file a row is in),
``date`` (the file's date partition), ``event_date`` (the day of its event time), ``seq_step``
(its seq minus the previous row's in the same file), ``spread_bps``.

    result = check_archive()          # the archive of load_settings(), Data Docs in .archive-docs
    result.success, result.failures   # which expectation failed, how often, in which files
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.parquet as pq

from orderbook_kit.archive.layout import parse_data_file
from orderbook_kit.archive.queries import committed_files
from orderbook_kit.archive.storage import ArchiveStorage, open_storage
from orderbook_kit.paths import workbook_folder
from orderbook_kit.settings.environment import Settings, load_settings

if TYPE_CHECKING:
    import great_expectations as gx

__all__ = [
    "MAX_SPREAD_BPS",
    "SUITE_NAME",
    "ArchiveCheck",
    "Failure",
    "archive_frame",
    "check_archive",
    "check_rows",
    "default_docs_dir",
    "expectation_suite",
]

SUITE_NAME = "archived_ticks"
# A bid-ask spread above 1% of the mid is not a quote of a liquid gas or carbon contract (the
# simulator's are around 2-25 basis points): a unit or parsing error upstream, most likely.
MAX_SPREAD_BPS = 100.0
REQUIRED = ("symbol", "seq", "bid", "ask", "bid_size", "ask_size", "event_time", "offset")
POSITIVE = ("bid", "ask", "bid_size", "ask_size")


def default_docs_dir() -> Path:
    return workbook_folder("archive-docs", "ORDERBOOK_ARCHIVE_DOCS_DIR")


@dataclass(frozen=True)
class Failure:
    """One expectation that failed: its GX name, its column(s), how many rows broke it, and in
    which files."""

    expectation: str
    columns: str
    unexpected: int
    files: tuple[str, ...]

    def __str__(self) -> str:
        where = ", ".join(self.files[:3]) + (" ..." if len(self.files) > 3 else "")
        return f"{self.expectation} ({self.columns}): {self.unexpected} row(s), in {where}"


@dataclass(frozen=True)
class ArchiveCheck:
    """The result of :func:`check_archive`."""

    success: bool
    rows: int
    files: int
    evaluated: int  # expectations
    failures: list[Failure] = field(default_factory=list)
    docs: Path | None = None  # Data Docs' index.html

    def summary(self) -> str:
        verdict = "passed: all" if self.success else f"FAILED: {len(self.failures)} of"
        text = (
            f"{verdict} {self.evaluated} expectation(s), over {self.rows} tick(s) in "
            f"{self.files} file(s)"
        )
        return "\n".join([text, *(f"  {failure}" for failure in self.failures)])


def archive_frame(storage: ArchiveStorage, files: Sequence[str] | None = None) -> pd.DataFrame:
    """The rows of ``files`` (default: every committed file), with the derived columns."""
    files = committed_files(storage) if files is None else list(files)
    frames = []
    for relative in files:
        parsed = parse_data_file(relative)
        if parsed is None:
            raise ValueError(f"{relative!r} is not one of the archive's data files")
        symbol, day, _ = parsed
        frame = pq.read_table(io.BytesIO(storage.read(relative))).to_pandas()
        frame.insert(0, "file", relative)
        frame.insert(1, "symbol", symbol)
        frame.insert(2, "date", day)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["file", "symbol", "date", *REQUIRED, "seq_step", "spread_bps"])
    rows = pd.concat(frames, ignore_index=True)
    rows["event_date"] = rows["event_time"].dt.tz_convert("UTC").dt.date
    # Within a file, each seq follows the one before; a file's first row has nothing before it.
    rows["seq_step"] = rows.groupby("file")["seq"].diff().fillna(1).astype("int64")
    mid = (rows["bid"] + rows["ask"]) / 2
    rows["spread_bps"] = (rows["ask"] - rows["bid"]) / mid * 10_000
    return rows


def expectation_suite() -> gx.ExpectationSuite:
    """What every archived tick must satisfy."""
    import great_expectations as gx

    e = gx.expectations
    suite = gx.ExpectationSuite(name=SUITE_NAME)
    for column in REQUIRED:
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=column))
    for column in POSITIVE:
        suite.add_expectation(
            e.ExpectColumnValuesToBeBetween(column=column, min_value=0, strict_min=True)
        )
    suite.add_expectation(
        e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="ask", column_B="bid", or_equal=False)
    )
    # Each tick once in the whole archive - exactly once, as the archive promises.
    suite.add_expectation(e.ExpectCompoundColumnsToBeUnique(column_list=["symbol", "seq"]))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="seq_step", value_set=[1]))
    suite.add_expectation(e.ExpectColumnPairValuesToBeEqual(column_A="event_date", column_B="date"))
    suite.add_expectation(
        e.ExpectColumnValuesToBeBetween(
            column="spread_bps", min_value=0, max_value=MAX_SPREAD_BPS, strict_min=True
        )
    )
    return suite


def check_archive(
    settings: Settings | None = None,
    *,
    storage: ArchiveStorage | None = None,
    docs_dir: Path | None = None,
) -> ArchiveCheck:
    """Run the suite over every committed file by a GX checkpoint, writing Data Docs to
    ``docs_dir`` (default ``.archive-docs``, or ``ORDERBOOK_ARCHIVE_DOCS_DIR``)."""
    storage = storage or open_storage(settings or load_settings())
    storage.check_readable()
    return check_rows(archive_frame(storage), docs_dir=docs_dir)


def check_rows(
    rows: pd.DataFrame,
    suite: gx.ExpectationSuite | None = None,
    *,
    docs_dir: Path | None = None,
) -> ArchiveCheck:
    """Run ``suite`` (default: :func:`expectation_suite`) over ``rows`` (as
    :func:`archive_frame` gives them, perhaps with columns of your own) by a GX checkpoint."""
    import great_expectations as gx

    docs_dir = (docs_dir or default_docs_dir()).resolve()
    context = _context(docs_dir)
    batch = (
        context.data_sources.add_pandas("archive")
        .add_dataframe_asset("ticks")
        .add_batch_definition_whole_dataframe("every committed file")
    )
    suite = context.suites.add(suite or expectation_suite())
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name="archive", data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="archive",
            validation_definitions=[validation],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data docs", site_names=["archive"])],
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["file"]},
        )
    )
    outcome = checkpoint.run(batch_parameters={"dataframe": rows})
    results = [r for run in outcome.run_results.values() for r in run.results]
    return ArchiveCheck(
        success=bool(outcome.success),
        rows=len(rows),
        files=int(rows["file"].nunique()) if len(rows) else 0,
        evaluated=len(results),
        failures=[_failure(r) for r in results if not r.success],
        docs=docs_dir / "index.html",
    )


def _context(docs_dir: Path) -> Any:
    """An in-memory GX context: no project folder, no analytics sent anywhere, no progress bars,
    one Data Docs site in ``docs_dir``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.add_data_docs_site(
        "archive",
        {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context


def _failure(result: Any) -> Failure:
    config = result.expectation_config
    kwargs = config.kwargs
    columns = kwargs.get("column") or ", ".join(
        kwargs.get("column_list") or [kwargs.get("column_A", ""), kwargs.get("column_B", "")]
    )
    details = result.result or {}
    files = sorted(
        {row["file"] for row in details.get("unexpected_index_list") or [] if "file" in row}
    )
    return Failure(
        expectation=config.type,
        columns=str(columns),
        unexpected=int(details.get("unexpected_count") or 0),
        files=tuple(files),
    )
