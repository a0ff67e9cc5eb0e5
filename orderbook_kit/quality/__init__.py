"""The quality gate: validate raw ticks, forward clean ones, dead-letter the rest with a reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook_kit.exports import lazy_exports

if TYPE_CHECKING:
    from orderbook_kit.quality.dead_letters import read_dead_letters as read_dead_letters
    from orderbook_kit.quality.gate import HEADER_DETAIL as HEADER_DETAIL
    from orderbook_kit.quality.gate import HEADER_REASON as HEADER_REASON
    from orderbook_kit.quality.gate import QualityGate as QualityGate
    from orderbook_kit.quality.gate import header as header
    from orderbook_kit.quality.outputs import copies_by_source as copies_by_source
    from orderbook_kit.quality.outputs import read_outputs as read_outputs

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "orderbook_kit.quality.gate": ["HEADER_DETAIL", "HEADER_REASON", "QualityGate", "header"],
        "orderbook_kit.quality.dead_letters": ["read_dead_letters"],
        "orderbook_kit.quality.outputs": ["copies_by_source", "read_outputs"],
    },
)
