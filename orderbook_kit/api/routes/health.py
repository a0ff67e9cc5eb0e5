"""``GET /health``: whether PostgreSQL and Kafka answer, each with the reason when not."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from orderbook_kit.api.dependencies import Api
from orderbook_kit.api.schemas import Dependency, Health
from orderbook_kit.errors import OrderbookKitError

router = APIRouter(tags=["service"])


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "PostgreSQL or Kafka does not answer"}},
)
def health(api: Api) -> JSONResponse:
    """Whether PostgreSQL and Kafka answer (503 if either does not), each with the reason."""
    try:
        api.store.run(lambda conn: conn.execute("SELECT 1"))
        database = Dependency(ok=True, detail="answers")
    except (OrderbookKitError, psycopg.Error) as exc:
        database = Dependency(ok=False, detail=str(exc).splitlines()[0])
    stream = api.stream
    kafka_error = stream.error or (None if stream.ready.is_set() else "connecting to Kafka")
    kafka = Dependency(ok=kafka_error is None, detail=kafka_error or "answers")
    body = Health(
        status="ok" if database.ok and kafka.ok else "degraded",
        database=database,
        kafka=kafka,
        stream_clients=stream.clients,
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)
