"""Unsealed code keys kept in an API process's memory for code lookups (``CodeKeyCache``).

Moved out of ``readmodels.authenticity`` (which re-exports it) to keep that module about the
facts and the verdict.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from registry.fingerprints import CodeFingerprinter

CODE_KEY_CACHE_TTL: Final = 30.0
"""Seconds an API process keeps a creator's unsealed code keys before reading them again. A
retirement (or a new key) made through another process reaches this one this late at most:
the window in which a retired, perhaps leaked, key is still tried here."""


class CodeKeyCache:
    """Unsealed code keys, per creator, for code lookups (bounded LRU, entries expire).

    Unsealing (a read and an AES-GCM decryption) per request would cost the code path most of
    its throughput; the keys stay in this process's memory only, never in a log. A creator's
    entry holds a fingerprinter per live key, newest (its current key) first.
    """

    def __init__(
        self,
        capacity: int = 1024,
        ttl: float = CODE_KEY_CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self._clock = clock
        self._items: OrderedDict[bytes, tuple[float, tuple[CodeFingerprinter, ...]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, creator: bytes) -> tuple[CodeFingerprinter, ...] | None:
        with self._lock:
            found = self._items.get(creator)
            if found is None:
                return None
            if found[0] <= self._clock():
                del self._items[creator]
                return None
            self._items.move_to_end(creator)
            return found[1]

    def put(self, creator: bytes, fingerprinters: tuple[CodeFingerprinter, ...]) -> None:
        with self._lock:
            self._items[creator] = (self._clock() + self.ttl, fingerprinters)
            self._items.move_to_end(creator)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def forget(self, creator: bytes) -> None:
        with self._lock:
            self._items.pop(creator, None)


__all__ = ["CODE_KEY_CACHE_TTL", "CodeKeyCache"]
