"""``/readyz``'s chain check (issue 16): a good answer is reused for ``CHAIN_CHECK_SECONDS``
so HAProxy's checks every 2 s do not each cost two node calls; a failing node is asked again
at every check, so a replica is ready at the first check after its node is back."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from anchoring.chain import Chain, ChainMismatch
from api import app as app_module
from api.app import create_app
from registry.service import Registry


def chain_says(client: TestClient) -> str:
    """The chain check's part of a ``/readyz`` answer (no anchoring worker runs here, so the
    answer as a whole is 503 for its missing heartbeat either way)."""
    answer = client.get("/readyz")
    assert answer.status_code == 503
    parts = dict(part.split(": ", 1) for part in answer.json()["detail"].split("; "))
    return parts["chain"]


def test_a_good_chain_answer_is_reused_and_a_failing_one_is_asked_again(
    registry: Registry, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real_check = chain.check
    node_down = [False]

    def counted(expected_chain_id: int) -> None:
        calls.append(expected_chain_id)
        if node_down[0]:  # the fault: a real node cannot be made to fail on one call
            raise ChainMismatch("the node serves chain 0, not 31337")
        real_check(expected_chain_id)

    monkeypatch.setattr(chain, "check", counted)
    clock = [1_000.0]
    monkeypatch.setattr(app_module.time, "monotonic", lambda: clock[0])
    with TestClient(create_app(registry, chain)) as client:
        assert chain_says(client) == "ok"
        assert chain_says(client) == "ok"
        assert len(calls) == 1  # the second check reused the first's good answer
        clock[0] += app_module.CHAIN_CHECK_SECONDS + 0.1
        node_down[0] = True
        for _ in range(3):  # a failure is asked every time, never reused
            assert "serves chain 0" in chain_says(client)
        assert len(calls) == 4
        node_down[0] = False
        assert chain_says(client) == "ok"  # back at the first check
        assert len(calls) == 5
        clock[0] += app_module.CHAIN_CHECK_SECONDS - 0.2
        assert chain_says(client) == "ok"
        assert len(calls) == 5
