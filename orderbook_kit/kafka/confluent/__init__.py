"""The kit's producer and reader on confluent-kafka (librdkafka) instead of kafka-python.

Chosen with ``ORDERBOOK_KAFKA_CLIENT=confluent`` (``settings.kafka.client``) and installed with
``pip install -e .[fast]``. kafka-python stays the default and the notebooks' main path: it is pure
Python, so a learner can read every line of it. librdkafka is C, with its own I/O threads, and is
several times faster where the interpreter is the limit (notebook 09 measures both).
"""

from orderbook_kit.kafka.confluent.loading import confluent_kafka
from orderbook_kit.kafka.confluent.producer import ConfluentProducer, producer_config
from orderbook_kit.kafka.confluent.reader import read_records_confluent

__all__ = ["ConfluentProducer", "confluent_kafka", "producer_config", "read_records_confluent"]
