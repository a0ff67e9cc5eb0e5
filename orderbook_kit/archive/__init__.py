"""Cold storage: the clean stream archived as Parquet files, on disk or on S3, exactly once.

``python -m orderbook_kit.archive`` runs the archive service; :mod:`.queries` asks the archive
questions with DuckDB; :mod:`.expectations` checks it with Great Expectations;
``python -m orderbook_kit.lab.s3 start`` runs an S3-compatible server on this machine.
"""
