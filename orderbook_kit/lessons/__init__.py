"""Helpers only the notebooks use: plots, widgets, the pipeline's live watch, the performance
lessons' measurements, and exercises with hidden solutions.

Imports: anything in the kit; nothing imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook_kit.exports import lazy_exports

if TYPE_CHECKING:
    from orderbook_kit.lessons import performance as performance
    from orderbook_kit.lessons.exercises import Solutions as Solutions
    from orderbook_kit.lessons.plots import LiveChart as LiveChart
    from orderbook_kit.lessons.plots import candles_figure as candles_figure
    from orderbook_kit.lessons.plots import depth_figure as depth_figure
    from orderbook_kit.lessons.plots import latency_figure as latency_figure
    from orderbook_kit.lessons.plots import price_figure as price_figure
    from orderbook_kit.lessons.plots import rejections_figure as rejections_figure
    from orderbook_kit.lessons.plots import spread_and_sizes_figure as spread_and_sizes_figure
    from orderbook_kit.lessons.plots import windows_figure as windows_figure
    from orderbook_kit.lessons.watch import PipelineWatch as PipelineWatch
    from orderbook_kit.lessons.watch import WatchChart as WatchChart
    from orderbook_kit.lessons.widgets import SimulatorControls as SimulatorControls

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "orderbook_kit.lessons.exercises": ["Solutions"],
        "orderbook_kit.lessons.plots": [
            "LiveChart",
            "candles_figure",
            "depth_figure",
            "latency_figure",
            "price_figure",
            "rejections_figure",
            "spread_and_sizes_figure",
            "windows_figure",
        ],
        "orderbook_kit.lessons.watch": ["PipelineWatch", "WatchChart"],
        "orderbook_kit.lessons.widgets": ["SimulatorControls"],
        "orderbook_kit.lessons": ["performance"],
    },
)
