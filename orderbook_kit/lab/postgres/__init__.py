"""PostgreSQL 16 for the hot store, with no Docker and no system install: ``server`` runs the
binaries that the ``pgserver`` wheel ships (``runtime`` finds them)."""
