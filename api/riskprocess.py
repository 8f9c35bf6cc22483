"""The risk worker's process, as ``tracemark serve`` runs it next to the API.

A process, not a thread: a refresh reads the look-back's records and runs every rule in
Python, and in the API's interpreter it held the GIL away from the verify requests
(``verifier.riskworker``). Started with ``spawn`` (a fresh interpreter: no threads, locks
or connections inherited from the API), stopped through an event.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event

from api.webhooks.outbox import publish_signals
from registry.service import Registry
from registry.settings import Settings
from verifier.anomaly import REFRESH_SECONDS
from verifier.riskworker import RiskWorker, run_risk_worker

#: How long ``stop`` waits for the worker to finish its refresh before ending it.
STOP_TIMEOUT = 30.0


def _main(settings: Settings, stop: Event, interval: float, log_level: str) -> None:
    # Ctrl-C reaches the whole process group: the API decides when this one stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # As in ``tracemark serve``: alembic announces every plugin at INFO when it opens.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    registry = Registry.open(settings)
    worker = RiskWorker(registry.engine, clock=registry.clock, publish=publish_signals)
    try:
        run_risk_worker(worker, interval=interval, stop=stop)
    finally:
        registry.engine.dispose()


class RiskProcess:
    """Start and stop the risk worker in a process of its own."""

    def __init__(self, settings: Settings, *, interval: float = REFRESH_SECONDS) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._process: BaseProcess = context.Process(
            target=_main,
            args=(settings, self._stop, interval, settings.log_level),
            name="tracemark-risk",
            daemon=True,
        )

    def start(self) -> None:
        self._process.start()

    def stop(self) -> None:
        self._stop.set()
        self._process.join(STOP_TIMEOUT)
        if self._process.is_alive():
            logging.getLogger("tracemark").warning("the risk worker did not stop; ending it")
            self._process.terminate()
            self._process.join(5)


__all__ = ["RiskProcess"]
