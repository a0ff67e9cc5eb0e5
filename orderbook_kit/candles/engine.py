"""Quix Streams, as the candles service uses it: imported here, once, quietly.

Quix Streams imports confluent-kafka's schema-registry client, which imports authlib's httpx
integration - deprecated since authlib 1.9 - and authlib, on import, tells Python to show its
deprecation warnings *always*, everywhere. Imported inside ``catch_warnings``, both the warning
(nothing the kit or a learner calls) and that global setting stay in here (the filters are put
back as they were afterwards).
"""

from __future__ import annotations

import warnings

# record=True: whatever warns while these import is kept in a list and dropped, never shown -
# even under authlib's "always".
with warnings.catch_warnings(record=True):
    from quixstreams import Application, MessageContext, State, message_context
    from quixstreams.dataframe import StreamingDataFrame
    from quixstreams.dataframe.windows import (
        HoppingTimeWindowDefinition,
        TumblingTimeWindowDefinition,
    )
    from quixstreams.dataframe.windows.base import WindowOnLateCallback
    from quixstreams.models import Deserializer, SerializationContext, Serializer

__all__ = [
    "Application",
    "Deserializer",
    "HoppingTimeWindowDefinition",
    "MessageContext",
    "SerializationContext",
    "Serializer",
    "State",
    "StreamingDataFrame",
    "TumblingTimeWindowDefinition",
    "WindowOnLateCallback",
    "message_context",
]
