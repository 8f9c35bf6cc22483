"""The chain's newest block as this server last saw it, refreshed in the background.

Verify answers report confirmations without asking the chain on the request path; while the
node is down they keep coming from the database, labelled with how old this view is
(THREATS 30).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from anchoring.chain import Chain


class ChainWatch:
    def __init__(
        self, chain: Chain | None, *, interval: float = 1.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.chain = chain
        self.interval = interval
        self._clock = clock
        self.block: int | None = None
        self.seen_at: int | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def refresh(self) -> None:
        if self.chain is None:
            return
        try:
            block = self.chain.block_number()
        except Exception as exc:  # any failure: keep the last view, say why
            self.error = getattr(exc, "detail", type(exc).__name__)
            return
        self.block, self.seen_at, self.error = block, int(self._clock()), None

    def view(self) -> tuple[int | None, int | None]:
        """(newest block seen, when); starts the watcher on first use."""
        if self.chain is not None and self._thread is None:
            with self._lock:
                if self._thread is None:
                    self.refresh()
                    self._thread = threading.Thread(
                        target=self._run, name="tracemark-chainwatch", daemon=True
                    )
                    self._thread.start()
        return self.block, self.seen_at

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        # Ready to start again (an app whose lifespan restarts, as test harnesses do).
        self._thread, self._stop = None, threading.Event()
