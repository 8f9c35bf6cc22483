"""The singleton roles' loop (registry.rolesteps, the sequencer's and the order sweep's): a
step's faults are injected by the step itself; the waits are recorded instead of slept. The
loops on the real stack are covered by test_roles, test_serve and the settlement sweep test."""

from __future__ import annotations

import logging
import threading

import pytest

from registry.errors import LeaseLost, StorageBusy
from registry.rolesteps import Fence, Role, run_steps


class RecordedStop(threading.Event):
    """A stop event whose waits return at once and are kept, so back-offs can be read."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(timeout)
        return self.is_set()


def test_faults_back_off_doubling_to_the_cap_and_success_resets_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = RecordedStop()
    outcomes: list[object] = [
        StorageBusy("busy"),
        StorageBusy("busy"),
        RuntimeError("broken"),
        True,  # a full batch: again at once, no wait
        False,  # nothing more: wait the interval
        LeaseLost("another holds it"),  # stand by at once, no back-off
        StorageBusy("busy"),  # the back-off starts again from the interval
        "stop",
    ]
    fences: list[Fence | None] = []

    def step(fence: Fence | None) -> bool:
        fences.append(fence)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        if outcome == "stop":
            stop.set()
            return False
        assert isinstance(outcome, bool)
        return outcome

    logger = logging.getLogger("tests.rolesteps")
    with caplog.at_level(logging.INFO, logger="tests.rolesteps"):
        run_steps(
            step, Role(logger, "probing", "trying again", 3.0), interval=1.0, stop=stop, lease=None
        )
    assert outcomes == []
    assert fences == [None] * 8  # no lease: nothing fences a step
    assert stop.waits == [1.0, 2.0, 3.0, 1.0, 1.0, 1.0]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "database busy; trying again in 1.0s",
        "database busy; trying again in 2.0s",
        "probing failed; trying again in 3.0s",
        "probing stopped: another holds it",
        "database busy; trying again in 1.0s",
    ]
    # The unexpected failure is logged with its traceback; the busy ones are not.
    assert [r.exc_info is not None for r in caplog.records] == [False, False, True, False, False]
