"""With a witness policy the worker anchors only heads whose checkpoint the quorum cosigned:
on a real anvil, a real witness (over HTTP on loopback) and a real registry database."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import text

from anchoring.chain import Chain
from anchoring.devchain import DevChain, free_port
from anchoring.worker import AnchorPolicy, AnchorWorker
from registry.creator import CreatorKeys
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.logkeys import LogNoteKeys
from registry.migrate import upgrade
from registry.service import Registry
from registry.witnessconfig import init_witness, load_witness_config
from registry.witnesspolicy import parse_policy
from tests.anchoring.test_witnessing import one_round
from tests.conftest import Clock
from tests.registry.helpers import registration
from tests.witness_server import running_witness

POLICY = AnchorPolicy(max_entries=1_000, max_age_seconds=5, confirmations=3)
LOG_KEYS = LogNoteKeys.from_seeds("127.0.0.1:8000/tlog", b"\x03" * 32, b"\x04" * 32)

pytestmark = pytest.mark.slow


def _grow(registry: Registry, clock: Clock, n: int) -> int:
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    for _ in range(n):
        registry.register(registration(creator, clock(), fingerprint=os.urandom(32)))
    head = registry.sequence_all()
    assert head is not None
    clock.advance(POLICY.max_age_seconds)  # due for anchoring by age
    return head.tree_size


def _anchored(registry: Registry) -> list[tuple[int, str]]:
    with registry.engine.connect() as conn:
        rows = conn.execute(text("SELECT tree_size, state FROM anchors ORDER BY id"))
        return [(int(size), state) for size, state in rows]


def test_only_heads_the_quorum_cosigned_are_anchored(
    tmp_path: Path, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    config = load_witness_config(
        init_witness(tmp_path / "w1", "witness.test/w1", [LOG_KEYS.vkeys()])
    )
    vkey = config.vkeys()[0]
    down = parse_policy(f"witness w1 {vkey} http://127.0.0.1:{free_port()}\nquorum w1\n")
    engine = create_db_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    upgrade(engine)
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
        note_keys=LOG_KEYS,
        witness_policy=down,
    )
    worker = AnchorWorker(registry, chain, operator, POLICY)
    first = _grow(registry, clock, 3)
    # The witness is down: below the quorum nothing is published, so nothing is sealed.
    refused = one_round(registry, down)
    assert refused is not None and not refused.published
    assert worker.step() is None and _anchored(registry) == []
    with running_witness(config) as (url, _app):
        up = parse_policy(f"witness w1 {vkey} {url}\nquorum w1\n")
        witnessed = one_round(registry, up)
        assert witnessed is not None and witnessed.published and witnessed.size == first
        # A newer head, signed but not yet witnessed, is not what gets anchored.
        second = _grow(registry, clock, 2)
        worker.run_until_idle()
        devchain.rpc("anvil_mine", hex(POLICY.confirmations))
        worker.run_until_idle()
        assert _anchored(registry) == [(first, "final")]
        assert chain.last_anchored() == (first, registry.tree_head(first).root)
        # Once witnessed, it is anchored too, extending the first.
        assert (done := one_round(registry, up)) is not None and done.size == second
        worker.run_until_idle()
        devchain.rpc("anvil_mine", hex(POLICY.confirmations))
        worker.run_until_idle()
    assert _anchored(registry) == [(first, "final"), (second, "final")]
    assert chain.last_anchored() == (second, registry.tree_head(second).root)
