"""Quix Streams, as the candles service uses it: imported here, once, quietly.

Quix Streams imports confluent-kafka's schema-registry client, which imports authlib's httpx
integration - deprecated since authlib 1.9 - and authlib, on import, tells Python to show its
deprecation warnings *always*, everywhere. Imported inside ``catch_warnings``, both the warning
(nothing the kit or a learner calls) and that global setting stay in here.
"""

from __future__ import annotations

import contextlib
import warnings

with warnings.catch_warnings():
    # authlib's own "always" first, so that the "ignore" below comes before it (no authlib: a
    # confluent-kafka without the schema-registry extra).
    with contextlib.suppress(ImportError):
        import authlib.deprecate  # type: ignore[import-untyped]  # noqa: F401
    warnings.simplefilter("ignore", DeprecationWarning)
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
