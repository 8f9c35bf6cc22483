"""Waiting in tests for what happens elsewhere (a worker process, a webhook receiver, a chain):
poll until a check answers something truthy, and fail with what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(what: str, check: Callable[[], T], *, timeout: float, every: float = 0.1) -> T:
    """The first truthy answer of ``check``, polled every ``every`` seconds; AssertionError
    naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
