"""Behaviour that anvil does not show on demand, injected through a loopback proxy: geth's
wordings (THREATS 24, 27) and a node that hangs (THREATS 31)."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import text

from anchoring.chain import Chain
from anchoring.classify import SendVerdict
from anchoring.devchain import DevChain
from anchoring.errors import ChainUnavailable, TransactionRejected
from registry.service import Registry
from tests.anchoring.rpc_proxy import RpcProxy
from tests.anchoring.test_worker import POLICY, _finish, _registered, _states, _worker
from tests.conftest import Clock

pytestmark = pytest.mark.slow


def test_geths_already_known_after_a_crash_means_look_up_the_receipt(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    with RpcProxy(devchain.rpc_url, "geth") as proxy:
        through = Chain.connect(proxy.url, chain.address)
        size = _registered(registry, clock, 3)
        worker = _worker(registry, through, operator)
        worker.step()
        worker.step()  # signed
        with registry.engine.connect() as conn:
            raw = bytes(conn.execute(text("SELECT raw FROM anchor_attempts")).scalar_one())
        devchain.rpc("evm_setAutomine", False)
        through.send_raw(raw)  # sent before the crash
        with pytest.raises(TransactionRejected) as again:
            through.send_raw(raw)
        assert "already known" in again.value.detail  # geth's words, not anvil's
        assert again.value.verdict == SendVerdict.ALREADY_KNOWN
        assert "already-known" in (worker.step() or "")
        devchain.rpc("evm_setAutomine", True)
        devchain.rpc("anvil_mine", hex(POLICY.confirmations))
        _finish(worker, devchain)
        assert _states(registry) == [(size, "final")]


def test_a_hanging_node_is_unavailable_after_one_deadline_and_nothing_is_retried(
    devchain: DevChain, chain: Chain
) -> None:
    with RpcProxy(devchain.rpc_url, "hang", hang_seconds=3) as proxy:
        hanging = Chain.connect(proxy.url, chain.address, timeout=0.5)
        with pytest.raises(ChainUnavailable):
            hanging.send_raw(b"\x02\x01")
        with pytest.raises(ChainUnavailable):
            hanging.chain_id()
        # One request each: web3's retries would have sent eth_sendRawTransaction again.
        assert proxy.seen["eth_sendRawTransaction"] == 1
        assert proxy.seen["eth_chainId"] == 1
