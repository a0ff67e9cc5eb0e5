"""orderbook_kit: the code behind the realtime orderbook workbook.

What a learner uses is importable from here (``from orderbook_kit import Tick, load_settings``);
the rest lives in folders by role, each importing only the ones below it:

    settings/    every knob, from environment variables      (Settings, load_settings)
    market/      the domain, no I/O: tick, simulator, checks,  (Tick, OrderbookSimulator,
                 the order book and its messages               OrderBook, DepthSimulator)
    kafka/       producing, reading, groups, offsets           (TickProducer, read_ticks)
    database/    PostgreSQL connections
    monitoring/  generic Prometheus collectors, lag
    runtime/     how a service runs: command line, consume loop, start_service
    ingest/ quality/ store/ archive/ book/ candles/ api/
                 the pipeline's stages (python -m orderbook_kit.<stage>)
    lab/         the servers a learner runs: Kafka, PostgreSQL, S3, Prometheus
    lessons/     notebook-only helpers: plots, widgets, exercises

Importing the package loads nothing else: each name is imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook_kit.exports import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:
    from orderbook_kit.database.client import connect as connect
    from orderbook_kit.errors import BookOutOfSyncError as BookOutOfSyncError
    from orderbook_kit.errors import DeliveryError as DeliveryError
    from orderbook_kit.errors import OrderbookKitError as OrderbookKitError
    from orderbook_kit.kafka.admin import admin_client as admin_client
    from orderbook_kit.kafka.admin import delete_pipeline as delete_pipeline
    from orderbook_kit.kafka.admin import ensure_topic as ensure_topic
    from orderbook_kit.kafka.admin import quiet_kafka_logs as quiet_kafka_logs
    from orderbook_kit.kafka.book_topics import BookWriter as BookWriter
    from orderbook_kit.kafka.book_topics import follow_books as follow_books
    from orderbook_kit.kafka.candle_topics import read_candles as read_candles
    from orderbook_kit.kafka.groups import wait_until_read as wait_until_read
    from orderbook_kit.kafka.offsets import committed_total as committed_total
    from orderbook_kit.kafka.offsets import end_offsets as end_offsets
    from orderbook_kit.kafka.offsets import group_lag as group_lag
    from orderbook_kit.kafka.offsets import set_group_offsets as set_group_offsets
    from orderbook_kit.kafka.offsets import wait_for_messages as wait_for_messages
    from orderbook_kit.kafka.producer import TickProducer as TickProducer
    from orderbook_kit.kafka.producer import produce_in_background as produce_in_background
    from orderbook_kit.kafka.reader import read_records as read_records
    from orderbook_kit.kafka.reader import read_ticks as read_ticks
    from orderbook_kit.market.book_faults import BookFaultInjector as BookFaultInjector
    from orderbook_kit.market.book_messages import BookSnapshot as BookSnapshot
    from orderbook_kit.market.book_messages import BookUpdate as BookUpdate
    from orderbook_kit.market.book_messages import book_checksum as book_checksum
    from orderbook_kit.market.book_sync import BookSync as BookSync
    from orderbook_kit.market.candles import Candle as Candle
    from orderbook_kit.market.candles import WindowTick as WindowTick
    from orderbook_kit.market.candles import closed_windows as closed_windows
    from orderbook_kit.market.checks import QualityChecker as QualityChecker
    from orderbook_kit.market.depth_simulator import DepthSimulator as DepthSimulator
    from orderbook_kit.market.faults import FAULT_KINDS as FAULT_KINDS
    from orderbook_kit.market.faults import FaultInjector as FaultInjector
    from orderbook_kit.market.feed_delays import hold_back as hold_back
    from orderbook_kit.market.frames import simulated_frame as simulated_frame
    from orderbook_kit.market.order_book import OrderBook as OrderBook
    from orderbook_kit.market.reasons import Reason as Reason
    from orderbook_kit.market.simulator import OrderbookSimulator as OrderbookSimulator
    from orderbook_kit.market.simulator import instrument_for as instrument_for
    from orderbook_kit.market.tick import Tick as Tick
    from orderbook_kit.runtime.launcher import start_service as start_service
    from orderbook_kit.settings import defaults as defaults
    from orderbook_kit.settings.environment import Settings as Settings
    from orderbook_kit.settings.environment import load_settings as load_settings
    from orderbook_kit.settings.rules import redacted_url as redacted_url
    from orderbook_kit.waiting import poll_until as poll_until

__getattr__, __dir__, _exported = lazy_exports(
    __name__,
    {
        "orderbook_kit.settings.environment": ["Settings", "load_settings"],
        "orderbook_kit.settings": ["defaults"],
        "orderbook_kit.settings.rules": ["redacted_url"],
        "orderbook_kit.market.tick": ["Tick"],
        "orderbook_kit.market.simulator": ["OrderbookSimulator", "instrument_for"],
        "orderbook_kit.market.faults": ["FAULT_KINDS", "FaultInjector"],
        "orderbook_kit.market.reasons": ["Reason"],
        "orderbook_kit.market.checks": ["QualityChecker"],
        "orderbook_kit.market.frames": ["simulated_frame"],
        "orderbook_kit.market.book_messages": ["BookSnapshot", "BookUpdate", "book_checksum"],
        "orderbook_kit.market.book_faults": ["BookFaultInjector"],
        "orderbook_kit.market.book_sync": ["BookSync"],
        "orderbook_kit.market.order_book": ["OrderBook"],
        "orderbook_kit.market.depth_simulator": ["DepthSimulator"],
        "orderbook_kit.market.candles": ["Candle", "WindowTick", "closed_windows"],
        "orderbook_kit.market.feed_delays": ["hold_back"],
        "orderbook_kit.kafka.admin": [
            "admin_client",
            "delete_pipeline",
            "ensure_topic",
            "quiet_kafka_logs",
        ],
        "orderbook_kit.kafka.producer": ["TickProducer", "produce_in_background"],
        "orderbook_kit.kafka.reader": ["read_records", "read_ticks"],
        "orderbook_kit.kafka.offsets": [
            "committed_total",
            "end_offsets",
            "group_lag",
            "set_group_offsets",
            "wait_for_messages",
        ],
        "orderbook_kit.kafka.groups": ["wait_until_read"],
        "orderbook_kit.kafka.book_topics": ["BookWriter", "follow_books"],
        "orderbook_kit.kafka.candle_topics": ["read_candles"],
        "orderbook_kit.database.client": ["connect"],
        "orderbook_kit.runtime.launcher": ["start_service"],
        "orderbook_kit.errors": ["BookOutOfSyncError", "DeliveryError", "OrderbookKitError"],
        "orderbook_kit.waiting": ["poll_until"],
    },
)
__all__ = ["__version__", *_exported]
