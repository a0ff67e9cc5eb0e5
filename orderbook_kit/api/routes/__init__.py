"""The API's routes, one router per resource: health, quotes, candles, ticks (recent ticks and
dead letters, read from Kafka), live (the WebSocket of ticks), book (each symbol's order book and
its WebSocket) and the dashboard page."""

from orderbook_kit.api.routes import book, candles, dashboard, health, live, quotes, ticks

__all__ = ["book", "candles", "dashboard", "health", "live", "quotes", "ticks"]
