"""``GET /``: the live dashboard, plain HTML and plotly.js (from the plotly package), fed by the
API itself: nothing from the internet."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/")
def dashboard() -> HTMLResponse:
    """The live dashboard: plain HTML and plotly.js, fed by this API."""
    page = resources.files("orderbook_kit.api").joinpath("static/dashboard.html")
    return HTMLResponse(page.read_text())


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    """plotly.js from the plotly package itself: the dashboard needs no internet."""
    bundle = resources.files("plotly").joinpath("package_data/plotly.min.js")
    return FileResponse(str(bundle), media_type="text/javascript")
