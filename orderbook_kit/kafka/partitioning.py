"""Which partition a symbol's messages go to: the Java client's default partitioner (murmur2 of
the key), which the kit's producers use with either client - so a symbol's ticks, candles and
book messages each sit in one partition, the same one whichever client wrote them."""

from __future__ import annotations

from kafka.partitioner.default import murmur2

__all__ = ["partition_of"]


def partition_of(symbol: str, partitions: int) -> int:
    """The partition of ``partitions`` a message keyed ``symbol`` goes to."""
    return int(murmur2(symbol.encode()) & 0x7FFFFFFF) % partitions
