"""The book service: the exchange's depth updates checked into a book any reader can rebuild.

``python -m orderbook_kit.book`` runs it (see :mod:`.service`); :mod:`.feed` is the depth feed
that writes what the exchange sends to the raw topic.
"""
