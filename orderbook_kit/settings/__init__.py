"""Settings: every knob of the kit, read from environment variables, each checked once.

- :mod:`.environment`: ``Settings`` (its sections: ``settings.kafka``, ``.topics``, ``.simulator``,
  ``.gate``, ``.store``, ``.archive``, ``.api``, ``.service``, ``.lab``, ``.lessons``) and
  ``load_settings()``;
- :mod:`.sections`: each section, each setting declared once with its variable, rule and default;
- :mod:`.rules`: how each value is checked (a bad one names its variable and the fix);
- :mod:`.defaults`: each default, written once;
- :mod:`.timing`: how often Kafka clients poll, and a group's session timeout (tuned, not set).

Imports: only :mod:`orderbook_kit.errors` and :mod:`orderbook_kit.paths`; every other layer may
import it.
"""
