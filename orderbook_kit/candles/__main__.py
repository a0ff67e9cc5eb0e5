"""The candles service: OHLC candles and spread statistics of the clean ticks, by event time.

python -m orderbook_kit.candles                  # run until Ctrl-C (or SIGTERM)
python -m orderbook_kit.candles --idle 5         # or once no tick came for 5 seconds
python -m orderbook_kit.candles --grace 2 --live

Closed windows go to their topics (1-second and 1-minute candles, 5-minute spread statistics),
one record per symbol; ticks that came too late for their window, or that no window can hold, go
to the skipped topic with the reason. Exactly once: Ctrl-C finishes and commits; killed, a
restart rebuilds its windows from their changelog topics and goes on from the last commit.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from orderbook_kit.candles.metrics import CandlesMetrics
from orderbook_kit.candles.service import CandlesService
from orderbook_kit.runtime.service import ConsumerCommand
from orderbook_kit.settings.environment import Settings, load_settings


def announce(settings: Settings) -> str:
    topics, candles = settings.topics, settings.candles
    live = f", running 1-minute candles to '{topics.candles_live}'" if candles.live else ""
    return (
        f"Connecting to Kafka at {settings.kafka.bootstrap_servers}\n"
        f"Candles of '{topics.clean}' as group '{candles.group}' (grace {candles.grace_s:g} s): "
        f"'{topics.candles_1s}', '{topics.candles_1m}', '{topics.spreads_5m}'{live}; late or "
        f"unusable ticks to '{topics.candles_skipped}'"
    )


COMMAND = ConsumerCommand(
    prog="python -m orderbook_kit.candles",
    description=__doc__.splitlines()[0],
    topic_key="topics.clean",
    reads="clean topic to read",
    group_key="candles.group",
    flags=[
        ("--grace", "candles.grace_s", "seconds a window waits after its end for late ticks"),
        ("--live", "candles.live", "also send running 1-minute candles (true/false)"),
        ("--instance", "candles.instance", "this copy's name in its group (its state folder)"),
        ("--state-dir", "candles.state_dir", "where the windows' state is kept"),
        ("--commit-interval", "candles.commit_interval_s", "seconds between commits"),
    ],
    announce=announce,
    new_metrics=CandlesMetrics,
    service=CandlesService,
    reporter="on_skipped",
    printer=print,
)


def main(argv: Sequence[str] | None = None) -> int:
    return COMMAND.main(argv, load_settings)


if __name__ == "__main__":
    sys.exit(main())
