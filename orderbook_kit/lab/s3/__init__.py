"""An S3-compatible object store on this machine, for the archive's lessons and tests.

``python -m orderbook_kit.lab.s3 start`` runs S3Proxy (Apache 2.0, from Maven Central, like
Kafka's jars) on 127.0.0.1, keeping its buckets as folders under ``.s3/data``. The archive talks
to it, or to Amazon S3 or any S3-compatible store, through the same ``s3://bucket/prefix`` URL.
"""
