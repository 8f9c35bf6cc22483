"""``tracemark serve --role sequencer,anchoring`` in two real processes on one PostgreSQL
database and one anvil (issue 16): the process holding both roles is SIGKILLed mid-load;
the other takes both over within the lease's bound; every entry is sequenced once, every
anchor's head is anchored once (one transaction each, the nonces contiguous), the contract
holds the last head, and ``tracemark log check`` is clean."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from eth_account import Account
from sqlalchemy import text

from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.runtime import ANVIL_ACCOUNT_0_KEY
from registry.eip712 import DEV_DOMAIN
from tests.api.test_roles import (
    SCHEDULING_SLACK,
    TAKEOVER_BOUND,
    Deployment,
    Load,
    _check_sequenced_once,
    _until,
    deployment,  # noqa: F401  (the fixture)
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def devchain() -> Iterator[DevChain]:
    with DevChain(block_time=0.2) as devchain:
        operator = Account.from_key(ANVIL_ACCOUNT_0_KEY)
        address = Chain.connect(devchain.rpc_url, DEV_DOMAIN.verifying_contract).deploy(operator)
        assert address == DEV_DOMAIN.verifying_contract  # the domain the registry signs for
        yield devchain


def _anchors(of: Deployment) -> list[tuple[int, str, int | None]]:
    with of.engine.connect() as conn:
        return [
            (int(size), str(state), None if nonce is None else int(nonce))
            for size, state, nonce in conn.execute(
                text("SELECT tree_size, state, nonce FROM anchors ORDER BY id")
            )
        ]


def test_a_killed_sequencer_and_anchorer_is_taken_over_and_each_head_anchored_once(
    deployment: Deployment,  # noqa: F811  (the fixture imported above)
    devchain: DevChain,
) -> None:
    chain = Chain.connect(devchain.rpc_url, DEV_DOMAIN.verifying_contract)
    deployment.env.update(
        {
            "TRACEMARK_CHAIN_RPC_URL": devchain.rpc_url,
            "TRACEMARK_ANCHOR_KEY": ANVIL_ACCOUNT_0_KEY,
            "TRACEMARK_ANCHOR_MAX_ENTRIES": "1",
            "TRACEMARK_ANCHOR_MAX_AGE": "0",
            "TRACEMARK_ANCHOR_CONFIRMATIONS": "2",
        }
    )
    roles = "sequencer,anchoring"
    operator = Account.from_key(ANVIL_ACCOUNT_0_KEY).address
    first = deployment.start("first", roles)
    for role in ("sequencer", "anchoring"):
        _until(f"the first holds {role}", lambda r=role: deployment.holder_pid(r) == first.pid)
    second = deployment.start("second", roles)
    deployment.until_standing_by("second", "anchoring")
    load = Load(deployment.registry, 120, pause=0.03)
    _until(
        "the first anchors",
        lambda: any(state == "final" for _, state, _ in _anchors(deployment)),
        60,
    )
    first.kill()
    killed_at = time.monotonic()
    assert first.wait(10) == -signal.SIGKILL
    for role in ("sequencer", "anchoring"):
        _until(
            f"the second takes {role} over", lambda r=role: deployment.holder_pid(r) == second.pid
        )
    assert time.monotonic() - killed_at < TAKEOVER_BOUND + SCHEDULING_SLACK
    load.finish()
    _check_sequenced_once(deployment, load)
    size = deployment.scalar("SELECT tree_size FROM log_state")
    _until(
        "the last head is anchored",
        lambda: _anchors(deployment)[-1][:2] == (size, "final"),
        90,
    )
    anchors = _anchors(deployment)
    sizes = [s for s, _, _ in anchors]
    assert all(state == "final" for _, state, _ in anchors), anchors
    assert sizes == sorted(set(sizes))  # each head anchored once, in order
    # One transaction an anchor: nonces 1.. (0 deployed the contract), none spent twice.
    assert [nonce for _, _, nonce in anchors] == list(range(1, len(anchors) + 1))
    assert chain.nonce(operator, "latest") == len(anchors) + 1
    assert chain.last_anchored()[0] == size
    assert deployment.scalar("SELECT count(*) FROM anchor_attempts") == len(anchors)
    # Both anchored: the first before the kill, the second after it.
    assert "anchor of head" in deployment.log_of("first")
    assert "anchor of head" in deployment.log_of("second")
