"""What the kit's services (``ingest``, ``quality``) share: flags, errors, exit codes and stopping.

- Flags that set a :class:`~orderbook_kit.settings.environment.Settings` field obey the same rule
  as its environment variable, and default to it.
- Every bad setting ends the service with one line, ``error: <VARIABLE or --flag>: <why>; <fix>``,
  and exit code 2; a failed delivery with exit code 1; an interruption with 130. Never a traceback.
- Ctrl-C (SIGINT) and SIGTERM: see :class:`StopSignal`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import faulthandler
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kafka.errors import KafkaError

from orderbook_kit.errors import (
    ArchiveWriteError,
    DatabaseLostError,
    DeliveryError,
    OrderbookKitError,
    SameTopicError,
    SettingsError,
)
from orderbook_kit.market.decoding import Skipped
from orderbook_kit.monitoring.metrics import ConsumerMetrics
from orderbook_kit.monitoring.server import metrics_endpoint
from orderbook_kit.runtime.command_line import EXIT_BAD_SETTING, CommandParser, flag_type
from orderbook_kit.settings.environment import (
    SETTINGS,
    Settings,
    environment_variables,
    read_setting,
    variable_of,
)
from orderbook_kit.settings.rules import seconds, whole_number

__all__ = [
    "EXIT_BAD_SETTING",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_DELIVERED",
    "ConsumerCommand",
    "ServiceParser",
    "StopSignal",
    "positive_count",
    "positive_seconds",
    "print_skipped",
    "run_consumer_service",
    "run_service",
]

log = logging.getLogger(__name__)

EXIT_NOT_DELIVERED = 1  # also: the database went away while a batch was being stored
EXIT_INTERRUPTED = 130  # the shell's code for "stopped by Ctrl-C"

# Rules of the flags every service has (--count, --duration, --idle).
positive_count = whole_number(minimum=1, example=100)
positive_seconds = seconds(example=10)


class ServiceParser(CommandParser):
    """argparse with the kit's conventions: setting flags, and one-line errors with exit code 2.

    ``defaults`` are the settings from the environment; each setting flag defaults to its value.
    """

    def __init__(self, prog: str, description: str, defaults: Settings) -> None:
        super().__init__(prog=prog, description=description)
        self.defaults = defaults
        self._flag_of: dict[str, str] = {}  # setting key -> its flag
        self.add_setting("--bootstrap-servers", "kafka.bootstrap_servers", "Kafka address")
        self.add_argument("--count", type=flag_type(positive_count), help="stop after this many")
        self.add_argument(
            "--duration", type=flag_type(positive_seconds), help="stop after this many seconds"
        )
        self.add_argument("-q", "--quiet", action="store_true", help="do not print every message")
        self.add_setting(
            "--metrics-port",
            "service.metrics_port",
            "serve Prometheus metrics on 127.0.0.1 (0: any port)",
        )
        self._typed: set[str] = set()
        self.epilog = "Environment variables: " + ", ".join(environment_variables())

    def add_idle_flag(self) -> None:
        """``--idle SECONDS``, for services that consume: stop once no message came that long."""
        self.add_argument(
            "--idle",
            type=flag_type(positive_seconds),
            help="stop after this many seconds without messages",
        )

    def add_setting(self, flag: str, key: str, help: str) -> None:
        """A flag for the setting ``key`` (``topics.raw``), checked by the same rule as its
        environment variable."""
        spec = SETTINGS[key]
        self._flag_of[key] = flag
        self.add_argument(
            flag,
            dest=key,
            metavar=flag.lstrip("-").upper().replace("-", "_"),  # --source-topic SOURCE_TOPIC
            type=flag_type(spec.rule),
            default=self.defaults.value(key),
            help=f"{help} (env {spec.variable}, default %(default)s)",
        )

    def settings(self, arguments: argparse.Namespace, argv: Sequence[str] | None) -> Settings:
        """The environment's settings with the flags on top; an error names the flag if given."""
        given = sys.argv[1:] if argv is None else list(argv)
        typed = {
            key
            for key, flag in self._flag_of.items()
            if any(arg == flag or arg.startswith(flag + "=") for arg in given)
        }
        values = {key: getattr(arguments, key) for key in self._flag_of}
        self._typed = typed
        try:
            return self.defaults.with_values(values)
        except SameTopicError as exc:
            # Blame the name the user typed: `--source-topic orderbook.clean` is the flag's fault.
            if exc.field not in typed and exc.other in typed:
                exc = SameTopicError(exc.other, exc.field, exc.topic, variable_of)
            raise exc.renamed(lambda field: self._name(field, typed)) from None
        except SettingsError as exc:
            raise exc.renamed(lambda field: self._name(field, typed)) from None

    def name_of(self, key: str) -> str:
        """What gave the setting ``key`` its value: the flag if one was typed, else the variable
        (call after :meth:`settings`), for errors found later, such as a port in use."""
        return self._name(key, self._typed)

    def _name(self, key: str, typed: set[str]) -> str:
        return self._flag_of[key] if key in typed else variable_of(key)


class StopSignal:
    """Ctrl-C (SIGINT) and SIGTERM for a service, in three phases:

    - connecting: a signal interrupts at once (nothing to finish yet);
    - running (after :meth:`running`): the first signal sets :attr:`event`, so the service finishes
      its batch or flush and stops cleanly; a second one interrupts at once;
    - finishing (after :meth:`finishing`): signals are noted but not acted on, because what is
      left - a bounded flush and close - ends by itself within a few seconds.

    An interruption is a ``KeyboardInterrupt``, which :func:`run_service` turns into exit code 130.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self._phase = "connecting"

    def install(self) -> StopSignal:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)
        return self

    def running(self) -> None:
        self._phase = "running"

    def finishing(self) -> None:
        self._phase = "finishing"

    def _handle(self, signum: int, _frame: object) -> None:
        # No printing here: the signal may arrive while the main thread is printing, and a
        # buffered stream cannot be re-entered. The service reports once it has stopped.
        log.info("received %s in phase %s", signal.Signals(signum).name, self._phase)
        if self._phase == "finishing":
            return
        if self._phase == "connecting" or self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()


class ConsumerService(Protocol):
    """What the consuming services (the gate, the store) have in common."""

    def __enter__(self) -> object: ...

    def __exit__(self, exc_type: type[BaseException] | None, /, *rest: object) -> None: ...

    def run(
        self,
        *,
        count: int | None,
        duration_s: float | None,
        idle_s: float | None,
        stop: threading.Event,
    ) -> Summarised: ...


class Summarised(Protocol):
    def summary(self) -> str: ...


def print_skipped(skipped: Skipped) -> None:
    """A service's line for a message it passed over (unless ``--quiet``)."""
    print(skipped, flush=True)


@dataclasses.dataclass(frozen=True)
class ConsumerCommand:
    """A consuming stage's command line (``python -m orderbook_kit.quality``, ``.store``,
    ``.archive``), declared: its settings flags, its opening line, its metrics, and its service,
    built as ``service(settings, metrics=..., <reporter>=...)``: the metrics to count into (None
    unless exported: histograms cost a little per tick), and a printer of each message it sets
    aside (or routes), unless ``--quiet``."""

    prog: str
    description: str
    topic_key: str  # the setting of the topic it reads ("topics.clean"): --source-topic
    reads: str  # what it does with that topic, for --source-topic's help ("topic to store")
    group_key: str  # ... and of its consumer group ("store.group"): --group
    flags: Sequence[tuple[str, str, str]]  # its own: (--flag, setting key, help)
    announce: Callable[[Settings], str]
    new_metrics: Callable[[], ConsumerMetrics]
    service: Callable[..., ConsumerService]
    reporter: str  # the service's keyword for the printer: "on_skipped"
    printer: Callable[[Any], None]

    def parser(self, defaults: Settings) -> ServiceParser:
        parser = ServiceParser(self.prog, self.description, defaults)
        parser.add_idle_flag()
        parser.add_setting("--source-topic", self.topic_key, self.reads)
        parser.add_setting("--group", self.group_key, "consumer group")
        for flag, key, help_text in self.flags:
            parser.add_setting(flag, key, help_text)
        return parser

    def main(self, argv: Sequence[str] | None, defaults: Callable[[], Settings]) -> int:
        """Parse ``argv``, build the service, run it until a limit or Ctrl-C, print its summary;
        every error one line and an exit code (see :func:`run_service`)."""
        return run_service(lambda: self._run(argv, defaults))

    def _run(self, argv: Sequence[str] | None, defaults: Callable[[], Settings]) -> int:
        stop = StopSignal().install()  # until connected, Ctrl-C interrupts at once
        parser = self.parser(defaults())
        arguments = parser.parse_args(argv)
        settings = parser.settings(arguments, argv)
        print(self.announce(settings), flush=True)
        metrics = self.new_metrics()
        group, topic = str(settings.value(self.group_key)), str(settings.value(self.topic_key))
        metrics.watch_lag(settings, group, topic)
        counted = metrics if settings.service.metrics_port is not None else None
        printer = None if arguments.quiet else self.printer
        service = self.service(settings, metrics=counted, **{self.reporter: printer})
        return run_consumer_service(service, stop, arguments, metrics, parser, settings)


def run_consumer_service(
    service: ConsumerService,
    stop: StopSignal,
    arguments: argparse.Namespace,
    metrics: ConsumerMetrics,
    parser: ServiceParser,
    settings: Settings,
) -> int:
    """Serve ``metrics`` if ``--metrics-port`` (or its variable) is set, connect ``service``, run
    it until ``--count``, ``--duration`` or ``--idle`` says so or ``stop`` is signalled, and print
    its summary."""
    source = parser.name_of("service.metrics_port")
    with metrics_endpoint(metrics.registry, settings.service.metrics_port, source=source):
        try:
            return _run_consumer(service, stop, arguments)
        finally:
            metrics.close()


def _run_consumer(service: ConsumerService, stop: StopSignal, arguments: argparse.Namespace) -> int:
    with service:
        stop.running()
        try:
            stats = service.run(
                count=arguments.count,
                duration_s=arguments.duration,
                idle_s=arguments.idle,
                stop=stop.event,
            )
        finally:
            stop.finishing()
    print(stats.summary(), flush=True)
    return 0


def _configure_logging(level: str) -> None:
    """ORDERBOOK_LOG_LEVEL: the kit's log at ``level``; at DEBUG or INFO, kafka-python's too (to
    see what a client waits for)."""
    if level == "WARNING":
        return
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if level in {"DEBUG", "INFO"}:
        logging.getLogger("kafka").setLevel(level)
        logging.getLogger("orderbook_kit.kafka.producer").setLevel(level)


def _dump_stacks_on_sigusr1() -> None:
    """`kill -USR1 <pid>` prints where every thread of a service is, to its stderr: for a service
    that seems stuck (the tests ask for it when a service does not get on within their bound).
    Only where stderr is a real file (not when a test runs the service in its own process)."""
    if not hasattr(signal, "SIGUSR1") or sys.__stderr__ is None:
        return
    with contextlib.suppress(AttributeError, ValueError, OSError):  # no descriptor to write to
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)


def run_service(body: Callable[[], int]) -> int:
    """Run a service's ``body`` and turn the kit's errors into one line and an exit code."""
    # kafka-python logs every failed reconnect, and the producer each failed delivery; a service
    # reports an outage itself, once, with what it means and what to do.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    logging.getLogger("orderbook_kit.kafka.producer").setLevel(logging.ERROR)
    _dump_stacks_on_sigusr1()
    try:
        _configure_logging(str(read_setting("service.log_level")))
        return body()
    except (DeliveryError, DatabaseLostError, ArchiveWriteError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_NOT_DELIVERED
    except OrderbookKitError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_SETTING
    except KafkaError as exc:  # one the kit did not foresee: still one line, never a traceback
        print(
            f"error: Kafka failed: {exc}. Check the broker (`make status`, `make logs`) and run "
            "the command again.",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_NOT_DELIVERED
    except KeyboardInterrupt:
        print("Stopped (interrupted).", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
