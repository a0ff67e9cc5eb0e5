"""The servers a learner runs on this machine: Apache Kafka on the JVM (one broker, or a cluster
of three), PostgreSQL, an S3-compatible store and Prometheus. They are the lab, not the pipeline:
no stage imports this package.

- :mod:`.broker`, :mod:`.postgres`, :mod:`.s3`, :mod:`.prometheus`: one server each, with a command
  (``python -m orderbook_kit.lab.broker start``, ...);
- :mod:`.jvm`: finding Java and Maven, and the jars Maven fetches;
- :mod:`.processes`: pid files checked against the command line, ports, bounded waits.

Imports: settings, errors, paths, kafka, database and runtime's command line.
"""
