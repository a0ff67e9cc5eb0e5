"""PostgreSQL plumbing: connecting with bounded waits (:mod:`.client`) and a small pool of kept
connections (:mod:`.pool`). The hot store's tables and queries live in :mod:`orderbook_kit.store`.

Imports: settings, errors and paths only.
"""
