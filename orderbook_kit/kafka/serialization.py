"""kafka-python serializers for the bare client lessons: a Tick becomes UTF-8 JSON bytes.

There is deliberately no tick *deserializer* to hand to a consumer: kafka-python runs a
deserializer inside ``poll()``, so one malformed message would make every poll raise and stall
the partition. Readers take the bytes and decode them afterwards (``decoding.decode_message``),
where a bad message can be counted and skipped.
"""

from __future__ import annotations

from kafka.serializer import Serializer

from orderbook_kit.market.tick import Tick

__all__ = ["TickSerializer"]


class TickSerializer(Serializer):
    """``KafkaProducer(value_serializer=TickSerializer())``: sends a Tick as JSON."""

    def serialize(self, topic: str, headers: object, data: Tick) -> bytes:
        return data.to_json()
