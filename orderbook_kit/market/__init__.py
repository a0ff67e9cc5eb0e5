"""The market domain, pure and with no I/O: what a tick is and what makes one good.

- :mod:`.tick`: the typed top-of-book tick (pydantic);
- :mod:`.simulator`: a seeded gas-market simulator;
- :mod:`.decoding`: bytes to a tick, or the reason it is not one;
- :mod:`.checks`, :mod:`.checker_memory`: the quality rules over a stream of ticks, and what
  they remember between runs;
- :mod:`.reasons`: why a message is set aside; :mod:`.faults`: bad ticks on purpose;
- :mod:`.frames`: ticks as pandas frames.

Imports: settings, errors and paths only - never Kafka, a database or a service.
"""
