"""The risk worker's process, as ``tracemark serve`` runs it next to the API.

A process, not a thread: a refresh reads the look-back's records and runs every rule in
Python, and in the API's interpreter it held the GIL away from the verify requests
(``readmodels.riskworker``). Started with ``spawn`` (a fresh interpreter: no threads, locks
or connections inherited from the API), stopped with SIGTERM, started again if it dies.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from multiprocessing.process import BaseProcess

from api.webhooks.publish import publish_signals
from readmodels.launderruleslimits import parse_amount_limits
from readmodels.realnamerule import rule_of
from readmodels.riskindex import REFRESH_SECONDS
from readmodels.riskworker import RiskWorker, run_risk_worker
from readmodels.signals import Thresholds
from registry.creditscores import CreditRefresh
from registry.lease import Lease
from registry.service import Registry
from registry.settings import Settings

#: How long ``stop`` waits for the worker to finish its refresh before ending it.
STOP_TIMEOUT = 30.0
#: How often the API looks whether the worker is still alive (seconds) ...
WATCH_SECONDS = 2.0
#: ... and how long it waits before starting a dead one again (doubling up to the maximum).
MIN_RESTART_PAUSE = 1.0
MAX_RESTART_PAUSE = 300.0

logger = logging.getLogger("tracemark.api.riskprocess")


def _main(settings: Settings, interval: float, log_level: str) -> None:
    # Ctrl-C reaches the whole process group: the API decides when this one stops, with
    # SIGTERM. NOTE: not a multiprocessing.Event: a worker killed while waiting on one
    # leaves its lock taken, and the next worker (and the API) would wait for ever.
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parent = os.getppid()

    def orphaned() -> None:
        # An API that died without stopping us: stop too, never run on alone.
        while not stop.wait(WATCH_SECONDS):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=orphaned, name="risk-orphan-watch", daemon=True).start()
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # As in ``tracemark serve``: alembic announces every plugin at INFO when it opens.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    registry = Registry.open(settings)
    worker = RiskWorker(
        registry.engine,
        clock=registry.clock,
        publish=publish_signals,
        payout_overdue_seconds=registry.payout_overdue_seconds,
        credit=CreditRefresh(registry.engine, overdue_after=registry.payout_overdue_seconds),
        realname=rule_of(settings.realname_min_level, settings.realname_limits),
        thresholds=Thresholds(amount_limits=parse_amount_limits(settings.amount_limits)),
    )
    # One risk worker per database (PostgreSQL: several ``serve --role risk`` may run).
    lease = Lease(registry.engine, "risk", seconds=settings.lease_seconds)
    keeper = lease.keep(stop)
    try:
        run_risk_worker(worker, interval=interval, stop=stop, lease=lease)
    finally:
        stop.set()
        keeper.join(10)  # it gives the lease up
        registry.engine.dispose()


class RiskProcess:
    """Start the risk worker in a process of its own, start it again if it dies (after a
    pause that doubles up to ``MAX_RESTART_PAUSE``), and stop it."""

    def __init__(self, settings: Settings, *, interval: float = REFRESH_SECONDS) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._settings = settings
        self._interval = interval
        self._stop = threading.Event()
        self._process: BaseProcess | None = None
        self._watcher: threading.Thread | None = None
        self.restarts = 0

    def _spawn(self) -> None:
        self._process = self._context.Process(
            target=_main,
            args=(self._settings, self._interval, self._settings.log_level),
            name="tracemark-risk",
            daemon=True,
        )
        self._process.start()

    def start(self) -> None:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="risk-watcher", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        pause = MIN_RESTART_PAUSE
        while not self._stop.wait(WATCH_SECONDS):
            process = self._process
            if process is None or process.is_alive():
                continue
            logger.error(
                "the risk worker exited (code %s); starting it again in %.0f s",
                process.exitcode,
                pause,
            )
            if self._stop.wait(pause):
                return
            self.restarts += 1
            self._spawn()
            pause = min(pause * 2, MAX_RESTART_PAUSE)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(WATCH_SECONDS + 1)
        process = self._process
        if process is None:
            return
        process.terminate()  # SIGTERM: the worker finishes its refresh and returns
        process.join(STOP_TIMEOUT)
        if process.is_alive():
            logger.warning("the risk worker did not stop; ending it")
            process.kill()
            process.join(5)


__all__ = ["RiskProcess"]
