"""``tracemark serve --role telemetry`` in two real processes on one PostgreSQL database
(issue 16, item 3): one folds the appended verification events into the counts; SIGKILLed
while the API side keeps appending, the other takes over within the lease's bound and every
event is counted exactly once."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from sqlalchemy import text

from registry.db import write_transaction
from registry.telemetry import VerificationRecord, append_verifications
from tests.api.test_roles import (
    SCHEDULING_SLACK,
    TAKEOVER_BOUND,
    Deployment,
    _until,
    deployment,  # noqa: F401  (the fixture)
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: Appends (as the API's flushes) of 50 events each, while the folders run.
FLUSHES = 120

_COUNTS = (
    "SELECT good_type, fingerprint, platform, count, first_at, last_at FROM verification_counts"
)
_EXPECTED = (
    "SELECT good_type, fingerprint, platform, count(*), min(at), max(at)"
    " FROM verification_events GROUP BY good_type, fingerprint, platform"
)


def _rows(where: Deployment, sql: str) -> set[tuple[object, ...]]:
    with where.engine.connect() as conn:
        return {tuple(row) for row in conn.execute(text(sql)).all()}


def test_a_killed_folder_is_taken_over_and_every_event_is_counted_once(
    deployment: Deployment,  # noqa: F811
) -> None:
    first = deployment.start("first", "telemetry")
    _until("the first holds the lease", lambda: deployment.holder_pid("telemetry") == first.pid)
    second = deployment.start("second", "telemetry")
    deployment.until_standing_by("second", "telemetry")
    goods = [bytes([n]) * 32 for n in range(40)]
    appended = threading.Event()

    def api_side() -> None:
        for flush in range(FLUSHES):
            batch = [
                VerificationRecord(
                    flush, ("a", "b", "c")[i % 3], 2, goods[(flush + i) % 40], "code", "x"
                )
                for i in range(50)
            ]
            with write_transaction(deployment.engine) as conn:
                append_verifications(conn, batch)
            time.sleep(0.02)
        appended.set()

    load = threading.Thread(target=api_side, name="appends")
    load.start()
    _until(
        "the first folds",
        lambda: (
            deployment.scalar(
                "SELECT coalesce(max(folded_through), 0) FROM verification_fold_state"
            )
            > 1_000
        ),
    )
    first.kill()  # SIGKILL: mid-load, no release
    killed_at = time.monotonic()
    assert first.wait(10) == -signal.SIGKILL
    _until("the second takes over", lambda: deployment.holder_pid("telemetry") == second.pid)
    took = time.monotonic() - killed_at
    assert took < TAKEOVER_BOUND + SCHEDULING_SLACK, (took, deployment.log_of("second")[-2000:])
    load.join(120)
    assert appended.is_set()
    total = FLUSHES * 50
    _until(
        "everything folded",
        lambda: deployment.scalar("SELECT folded_through FROM verification_fold_state") == total,
        60,
    )
    assert _rows(deployment, _COUNTS) == _rows(deployment, _EXPECTED)
    assert deployment.scalar("SELECT sum(count) FROM verification_counts") == total
