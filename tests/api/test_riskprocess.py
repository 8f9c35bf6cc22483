"""The risk worker's process as ``tracemark serve`` runs it: it works, it is started again
when it dies, and it stops when asked."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from api.riskprocess import RiskProcess
from readmodels.riskworker import risk_state_t
from registry.service import Registry
from registry.settings import load_settings
from tests.polling import wait_until


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    return wait_until(what, check, timeout=60.0, every=0.2)


@pytest.mark.slow
def test_the_risk_worker_runs_is_restarted_when_it_dies_and_stops(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", database_url="", master_key=None)
    registry = Registry.open(settings)

    def heartbeat() -> int:
        with registry.engine.connect() as conn:
            found = conn.execute(select(risk_state_t.c.heartbeat)).scalar()
        return int(found or 0)

    risk = RiskProcess(settings, interval=0.2)
    risk.start()
    try:
        first = wait_for("the first refresh", heartbeat)
        pid = risk.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for("a new process", lambda: risk.pid != pid and risk.restarts == 1)
        wait_for("a refresh by the new process", lambda: heartbeat() > first)
    finally:
        risk.stop()
    gone = risk.pid
    assert gone is not None
    with pytest.raises(ProcessLookupError):
        os.kill(gone, 0)
    registry.engine.dispose()
