"""orderbook_kit: the code behind the realtime orderbook workbook.

Import what you need from its modules (``orderbook_kit.market.tick``,
``orderbook_kit.market.simulator``, ...);
importing the package itself does nothing but define the version.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
