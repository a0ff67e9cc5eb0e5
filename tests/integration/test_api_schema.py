"""The API is exactly what it describes: schemathesis against the live API's own OpenAPI.

The API runs as the real service (``python -m orderbook_kit.api``, with its bounded HTTP
protocol) over a hot store that holds ordinary ticks and ticks at the ends of their ranges (year 1
and 9999, float's limits). Schemathesis generates requests from the description - valid ones, and
invalid ones at every boundary (its coverage phase), then random ones (fuzzing) - and the run fails
on any 5xx, any status the description does not list, and any body, header or content type that
contradicts it.

One check is left out: ``positive_data_acceptance`` treats every 422 to a request whose parameters
each fit the schema as a contradiction. The API's cross-parameter rules (``start`` before ``end``,
at most 10,000 candles) cannot be written in a JSON schema; their 422s are listed in the
description, with the reason in ``detail``.

A bounded run here (``SCHEMATHESIS_EXAMPLES`` per operation, a fixed seed so a failure can be
replayed); set ``SCHEMATHESIS_EXAMPLES=2000`` and another ``SCHEMATHESIS_SEED`` for a longer hunt.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.market.tick import Tick
from orderbook_kit.runtime.launcher import start_service
from orderbook_kit.settings.environment import Settings
from orderbook_kit.store.sink import StoreSink
from tests.conftest import produce_clean

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

EXAMPLES = os.environ.get("SCHEMATHESIS_EXAMPLES", "40")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261205")


@pytest.fixture
def settings(pipeline_settings: Settings) -> Settings:
    return pipeline_settings


def edge_ticks() -> list[Tick]:
    """Ticks of TTF-GAS in the first and last seconds UTC can hold, at float's limits."""
    first = datetime(1, 1, 1, 0, 0, 3, tzinfo=UTC)
    last = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    common = {"symbol": "EDGE-X", "bid_size": 5e-324, "ask_size": 1.7976931348623157e308}
    return [
        Tick(seq=0, bid=5e-324, ask=1e-323, event_time=first, publish_time=first, **common),
        Tick(seq=1, bid=1.0, ask=1.7976931348623157e308, event_time=last, **common),
    ]


def test_every_answer_of_the_api_is_what_its_openapi_says(
    settings: Settings, tmp_path: Path
) -> None:
    simulated = list(OrderbookSimulator(["TTF-GAS", "NBP-GAS"], seed=3).ticks(400))
    messages = [*simulated, *((t.symbol.encode(), t.to_json()) for t in edge_ticks())]
    produce_clean(settings, messages)
    StoreSink(settings).run(count=len(messages), duration_s=60)
    api = start_service("api", settings, "--port", "0")
    try:
        url = api.api_url()
        run = subprocess.run(
            [
                *(sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json"),
                *("--checks", "all", "--exclude-checks", "positive_data_acceptance"),
                *("--phases", "coverage,fuzzing", "--max-examples", EXAMPLES, "--seed", SEED),
                *("--workers", "1", "--request-timeout", "30", "--no-color"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,  # its reports and cache stay out of the repository
        )
    finally:
        api.stop()
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "passed" in run.stdout
    assert api.output().count("Traceback") == 0, api.output()
