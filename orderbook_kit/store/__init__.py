"""The hot store: clean ticks from Kafka into PostgreSQL, effectively once.

``python -m orderbook_kit.store`` runs it; ``python -m orderbook_kit.lab.postgres start`` starts the
kit's own PostgreSQL.
"""
