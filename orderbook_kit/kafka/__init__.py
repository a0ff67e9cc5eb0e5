"""Kafka plumbing: admin and topics, producing, reading, consumer groups, offsets, replication.

- :mod:`.admin`: the admin client, topics, and retrying while the broker starts;
- :mod:`.producer`: ``TickProducer`` (acknowledged sends, bounded waits);
- :mod:`.reader`: bounded reads of a topic into records, ticks or frames;
- :mod:`.records`, :mod:`.serialization`: records and tick (de)serialising;
- :mod:`.groups`, :mod:`.offsets`, :mod:`.replication`: groups, lag, replicas;
- :mod:`.confluent`: the same producer and reader on confluent-kafka (librdkafka).

Imports: settings, errors, paths and :mod:`orderbook_kit.market` - never a stage.
(Inside this package, ``import kafka`` is still kafka-python: imports are absolute.)
"""
