"""Monitoring: what each service exports for Prometheus, and how it is served.

- :mod:`.metrics`: the metrics of the ingest, quality and store services, each in a registry of
  its own (never prometheus_client's global one), with bounded label sets;
- :mod:`.lag`: consumer lag per partition, asked of the broker once a second in the background;
- :mod:`.server`: the ``/metrics`` endpoint on 127.0.0.1 (``--metrics-port``,
  ``ORDERBOOK_METRICS_PORT``; port 0 picks a free one).
"""
