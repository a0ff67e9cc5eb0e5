"""The ingest stage: simulate the market and publish every tick to Kafka
(``python -m orderbook_kit.ingest``).

- :mod:`.service`: the command, producing ticks, continuing a restarted feed;
- :mod:`.feed_position`: where each symbol's feed stopped, read back from the raw topic.
"""
