"""Prometheus for the pipeline, on this machine: ``python -m orderbook_kit.lab.prometheus``."""
