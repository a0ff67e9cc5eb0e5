"""``GET /symbols`` and the latest quotes, from the hot store."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from orderbook_kit.api.dependencies import Api, records
from orderbook_kit.api.schemas import INVALID, UNAVAILABLE, UNKNOWN, Quote, Symbol
from orderbook_kit.store import queries as hot

router = APIRouter(tags=["hot store"])


@router.get("/symbols", responses=UNAVAILABLE)
def symbols(api: Api) -> list[str]:
    """Every symbol with ticks in the hot store."""
    return api.known_symbols()


@router.get("/quotes/latest", response_model=list[Quote], responses=UNAVAILABLE)
def latest_quotes(api: Api) -> list[dict[str, Any]]:
    """The latest quote of every symbol."""
    return records(api.hot_store(lambda conn: hot.latest_quotes(connection=conn)))


@router.get(
    "/quotes/{symbol}/latest",
    response_model=Quote,
    responses={**INVALID, **UNKNOWN, **UNAVAILABLE},
)
def latest_quote(symbol: Symbol, api: Api) -> dict[str, Any]:
    """The latest quote of ``symbol``."""
    for row in records(api.hot_store(lambda conn: hot.latest_quotes(connection=conn))):
        if row["symbol"] == symbol:
            return row
    api.require_known(symbol)  # raises 404 with the known symbols
    raise HTTPException(404, f"no quote of {symbol!r}")  # pragma: no cover - raced a delete
