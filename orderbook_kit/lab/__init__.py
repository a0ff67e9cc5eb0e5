"""The servers a learner runs on this machine: Apache Kafka on the JVM (one broker, or a cluster
of three), PostgreSQL, an S3-compatible store and Prometheus. They are the lab, not the pipeline:
no stage imports this package.

- :mod:`.broker`, :mod:`.postgres`, :mod:`.s3`, :mod:`.prometheus`: one server each, with a command
  (``python -m orderbook_kit.lab.broker start``, ...);
- :mod:`.managed`: what every server shares - a state folder, an info file checked against the
  process's command line, 127.0.0.1 only, a session of its own, bounded waits - with
  :mod:`.commands`, their shared ``start | ensure | stop | status | logs`` command line;
- :mod:`.jvm`: finding Java and Maven, and the jars Maven fetches (the broker, S3Proxy);
- :mod:`.ports`: free ports, and checking one; :mod:`.processes`: pids, signals, waits.

Imports: settings, errors, paths, kafka, database and runtime's command line.
"""
