"""Serving the data: an HTTP API over the hot store and Kafka, and a live stream of clean ticks.

``python -m orderbook_kit.api`` runs it on 127.0.0.1 (uvicorn); :func:`.app.create_app` builds
the FastAPI application for your own server or tests.
"""
