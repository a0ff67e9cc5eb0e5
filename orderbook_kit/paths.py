"""Where the kit keeps its downloads and the servers it starts (Kafka jars, PostgreSQL data).

For an editable install (the workbook's normal case) that is a git-ignored folder of the
repository, wherever a command runs from, so notebooks, ``make`` and the services all share one
cache and one server. Installed elsewhere, it is a folder under ``~/.cache/orderbook-kit``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["workbook_folder"]


def workbook_folder(name: str, variable: str) -> Path:
    """``$variable`` if set, else ``<repository>/.<name>``, else under ``~/.cache``."""
    configured = os.environ.get(variable, "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    repository = Path(__file__).resolve().parents[1]
    if (repository / "pyproject.toml").exists():
        return repository / f".{name}"
    return Path.home() / ".cache" / "orderbook-kit" / name
