"""The API's routes, one router per resource: health, quotes, candles, ticks (recent ticks and
dead letters, read from Kafka), live (the WebSocket) and the dashboard page."""

from orderbook_kit.api.routes import candles, dashboard, health, live, quotes, ticks

__all__ = ["candles", "dashboard", "health", "live", "quotes", "ticks"]
