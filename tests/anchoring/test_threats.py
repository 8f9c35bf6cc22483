"""THREATS section C (and 45) case by case, each on the real worker against a real anvil
(and, where anvil differs from production nodes, through the loopback proxy): reorgs that
drop or move the anchor (19, 20), stuck and repriced transactions (22, 23), a dropped one
(25), a reverted anchor (29), a node that goes down and comes back (30), an unfunded key
(33), a sustained fee spike past the time-to-anchor objective (34), and receipts that lie
(45). Each test is named after its case."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from hexbytes import HexBytes
from sqlalchemy import text
from web3 import Web3

import anchoring.loop as worker_module
from anchoring.chain import Chain, SignedAnchor
from anchoring.classify import SendVerdict
from anchoring.devchain import DevChain, free_port
from anchoring.errors import ReceiptMismatch, TransactionRejected
from anchoring.loop import run_anchoring
from anchoring.worker import AnchorWorker
from api.apikeys import create_api_key
from api.app import create_app
from registry.creator import CreatorKeys
from registry.service import Registry
from tests.anchoring.conftest import DEV_CONTRACT
from tests.anchoring.rpc_proxy import RpcProxy
from tests.anchoring.test_worker import (
    POLICY,
    _attempts,
    _finish,
    _gwei,
    _registered,
    _states,
    _tx_hash,
    _worker,
)
from tests.conftest import Clock
from tests.registry.helpers import registration

pytestmark = pytest.mark.slow


# -- helpers --------------------------------------------------------------------------------


class Api:
    """The real API in front of the same database and chain: what a platform sees."""

    def __init__(self, client: TestClient, registry: Registry) -> None:
        self.client = client
        self.key, _ = create_api_key(registry.engine, "cardhub", ("verify",), "t", registry.clock())

    def anchor_of(self, fingerprint: bytes) -> dict[str, Any] | None:
        answer = self.client.post(
            "/v1/verify",
            json={"good_type": "file", "fingerprint": "0x" + fingerprint.hex()},
            headers={"Authorization": f"Bearer {self.key}"},
        )
        assert answer.status_code == 200, answer.text
        anchor: dict[str, Any] | None = answer.json()["anchor"]
        return anchor

    def ready(self) -> dict[str, Any]:
        answer = self.client.get("/readyz")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


@pytest.fixture
def api(registry: Registry, chain: Chain) -> Iterator[Api]:
    with TestClient(create_app(registry, chain)) as client:
        yield Api(client, registry)


def _one_good(registry: Registry, clock: Clock) -> tuple[bytes, int]:
    """A registered, sequenced good (its fingerprint) and the head's size, old enough to seal."""
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    fingerprint = os.urandom(32)
    registry.register(registration(creator, clock(), fingerprint=fingerprint))
    head = registry.sequence_all()
    assert head is not None
    clock.advance(POLICY.max_age_seconds)
    return fingerprint, head.tree_size


def _anchor_row(registry: Registry) -> dict[str, Any]:
    with registry.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM anchors ORDER BY id DESC LIMIT 1")).one()
    return dict(row._mapping)


def _trail(registry: Registry) -> list[tuple[str, str]]:
    with registry.engine.connect() as conn:
        return [
            (str(a), str(b))
            for a, b in conn.execute(
                text("SELECT from_state, to_state FROM anchor_events ORDER BY id")
            )
        ]


def _raws(registry: Registry) -> list[bytes]:
    with registry.engine.connect() as conn:
        return [bytes(r) for (r,) in conn.execute(text("SELECT raw FROM anchor_attempts"))]


def _hashes(registry: Registry) -> list[bytes]:
    with registry.engine.connect() as conn:
        return [
            bytes(h)
            for (h,) in conn.execute(text("SELECT tx_hash FROM anchor_attempts ORDER BY id"))
        ]


def _mine_at_base_fee(devchain: DevChain, base_fee: int, blocks: int) -> None:
    """Mine ``blocks`` blocks, each at ``base_fee`` (empty blocks would let it decay)."""
    for _ in range(blocks):
        devchain.rpc("anvil_setNextBlockBaseFeePerGas", hex(base_fee))
        devchain.rpc("anvil_mine", "0x1")


# -- 19, 20: reorgs ---------------------------------------------------------------------------


def test_threat_19_reorg_removes_the_anchor_and_the_api_never_says_final_early(
    registry: Registry,
    chain: Chain,
    devchain: DevChain,
    operator: LocalAccount,
    clock: Clock,
    api: Api,
) -> None:
    """While mined the API labels the anchor "unconfirmed"; a reorg that drops its block takes
    the anchor off the answers (back to broadcast) and the worker anchors it again; "final"
    appears only once the confirmation rule holds for the block that now holds it."""
    fingerprint, size = _one_good(registry, clock)
    worker = _worker(registry, chain, operator)
    assert api.anchor_of(fingerprint) is None  # pending
    worker.run_until_idle()
    assert _states(registry) == [(size, "mined")]
    seen = api.anchor_of(fingerprint)
    assert seen is not None and seen["state"] == "unconfirmed"
    assert seen["block_number"] == _anchor_row(registry)["block_number"]

    devchain.rpc("anvil_reorg", 1, [])  # the anchor's block is gone, the transaction too
    assert worker.step() == f"head {size} reorged out of block {seen['block_number']}"
    assert _states(registry) == [(size, "broadcast")]
    assert api.anchor_of(fingerprint) is None  # during the reorg: no anchor is claimed

    views = []
    for _ in range(POLICY.confirmations + 2):
        worker.run_until_idle()
        row = _anchor_row(registry)
        view = api.anchor_of(fingerprint)
        depth = (
            None if row["block_number"] is None else chain.block_number() - row["block_number"] + 1
        )
        views.append((None if view is None else view["state"], row["state"], depth))
        devchain.rpc("anvil_mine", "0x1")
    # Every "final" the API said came with the confirmation rule met, and never before.
    assert views[-1][0] == "final"
    for said, stored, depth in views:
        if said == "final":
            assert stored == "final" and depth is not None and depth >= POLICY.confirmations
        elif depth is not None and depth >= POLICY.confirmations:
            pytest.fail(f"deep enough ({depth}) but the API said {said}")
    assert "unconfirmed" in [v[0] for v in views]
    assert ("mined", "broadcast") in _trail(registry)
    assert chain.last_anchored()[0] == size


def test_threat_20_reorg_reincludes_the_anchor_in_another_block(
    registry: Registry,
    chain: Chain,
    devchain: DevChain,
    operator: LocalAccount,
    clock: Clock,
    api: Api,
) -> None:
    """The same transaction lands in another block: the record takes the new block number and
    hash from the new receipt, the confirmations count from there, and the API's answer
    (its stored anchor) follows. Nothing is signed or sent again."""
    fingerprint, size = _one_good(registry, clock)
    worker = _worker(registry, chain, operator)
    worker.run_until_idle()
    before = _anchor_row(registry)
    [raw] = _raws(registry)
    nonce = chain.nonce(operator.address, "latest")
    devchain.rpc("anvil_mine", "0x1")  # one confirmation more, then the reorg
    assert worker.step() is None  # 2 of 3 confirmations
    # Two blocks replaced; our transaction re-included in the second of the new ones.
    devchain.rpc("anvil_reorg", 2, [["0x" + raw.hex(), 1]])
    receipt = chain.receipt(bytes(before["tx_hash"]))
    assert receipt is not None
    assert receipt["blockNumber"] == before["block_number"] + 1
    assert bytes(receipt["blockHash"]) != bytes(before["block_hash"])

    assert "reorged out of block" in (worker.step() or "")
    assert worker.step() == f"mined head {size} in block {before['block_number'] + 1}"
    after = _anchor_row(registry)
    assert after["block_number"] == receipt["blockNumber"]
    assert bytes(after["block_hash"]) == bytes(receipt["blockHash"])
    assert bytes(after["tx_hash"]) == bytes(before["tx_hash"])
    view = api.anchor_of(fingerprint)
    assert view is not None and view["block_number"] == receipt["blockNumber"]
    assert view["state"] == "unconfirmed"
    # The count restarts at the new block: at the old block's count it would be final now.
    devchain.rpc("anvil_mine", "0x1")
    assert chain.block_number() - before["block_number"] + 1 == POLICY.confirmations
    assert worker.step() is None and _states(registry) == [(size, "mined")]
    devchain.rpc("anvil_mine", "0x1")
    assert worker.step() == f"final head {size}"
    final = api.anchor_of(fingerprint)
    assert final is not None and final["state"] == "final"
    assert final["block_number"] == receipt["blockNumber"]
    assert len(_raws(registry)) == 1 and chain.nonce(operator.address, "latest") == nonce


# -- 22, 23, 25: stuck, repriced, dropped -------------------------------------------------------


def test_threat_22_the_original_cheaper_transaction_is_the_one_mined(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    """A stuck anchor was replaced at the same nonce, but the network mined the original: the
    worker finds it by the old hash it kept and records that one, once."""
    size = _registered(registry, clock, 3)
    worker = _worker(registry, chain, operator)
    nonce = chain.nonce(operator.address, "latest")
    devchain.rpc("evm_setAutomine", False)
    worker.step()
    worker.step()
    worker.step()  # broadcast at today's low fees, pending
    _mine_at_base_fee(devchain, _gwei(50), POLICY.stuck_blocks)  # a spike leaves it out
    steps = worker.run_until_idle()
    assert any(s.startswith("replaced") for s in steps), steps
    first, second = _hashes(registry)
    [(n1, fee1), (n2, fee2)] = _attempts(registry)
    assert n1 == n2 == nonce and fee2 > fee1
    # Another node still had the original: the replacement never got there, the original
    # did, and fees fell back under it.
    devchain.rpc("anvil_dropTransaction", "0x" + second.hex())
    original = _raws(registry)[0]
    devchain.rpc("anvil_setNextBlockBaseFeePerGas", hex(1))
    chain.send_raw(original)
    devchain.rpc("anvil_mine", "0x1")
    assert chain.receipt(first) is not None and chain.receipt(second) is None
    devchain.rpc("evm_setAutomine", True)
    _finish(worker, devchain)
    assert _states(registry) == [(size, "final")]
    assert _tx_hash(registry) == first  # the cheaper one, found by its kept hash
    assert chain.nonce(operator.address, "latest") == nonce + 1
    assert chain.last_anchored()[0] == size


def test_threat_23_a_broadcast_anchor_is_repriced_up_to_the_cap_then_stops_and_alerts(
    registry: Registry,
    chain: Chain,
    devchain: DevChain,
    operator: LocalAccount,
    clock: Clock,
    api: Api,
) -> None:
    """Fees keep rising past a broadcast anchor: it is re-signed at the same nonce with fees
    raised each time, up to the cap and never past it; at the cap nothing more is signed, the
    alert says "max fee reached", no nonce is spent; when fees fall the last attempt is
    mined and the next anchor covers everything registered meanwhile."""
    cap = _gwei(40)
    policy = replace(POLICY, max_fee_per_gas=cap, stuck_blocks=2)
    worker = AnchorWorker(registry, chain, operator, policy)
    size = _registered(registry, clock, 3)
    nonce = chain.nonce(operator.address, "latest")
    devchain.rpc("evm_setAutomine", False)
    worker.step()
    worker.step()
    worker.step()  # broadcast
    replaced = 0
    for _ in range(10):  # bounded: the cap is reached within a few rounds
        highest = max(fee for _, fee in _attempts(registry))
        _mine_at_base_fee(devchain, highest + 1, policy.stuck_blocks)  # just out of reach
        steps = worker.run_until_idle(max_steps=5)
        assert set(steps) <= {f"rebroadcast head {size}"} | {
            s for s in steps if s.startswith("replaced")
        }, steps
        if not any(s.startswith("replaced") for s in steps):
            break
        replaced += 1
    else:
        pytest.fail("the worker never stopped repricing")
    attempts = _attempts(registry)
    fees = [fee for _, fee in attempts]
    assert replaced >= 2 and len(attempts) == replaced + 1
    assert {n for n, _ in attempts} == {nonce}  # one nonce throughout
    assert fees == sorted(fees) and len(set(fees)) == len(fees) and max(fees) <= cap
    assert fees[-1] * 9 // 8 + 1 <= cap < 2 * (fees[-1] + 1)  # the next bump would pass it
    # At the cap: it stays, says so, and signs nothing more however long it waits.
    _mine_at_base_fee(devchain, fees[-1] + 1, policy.stuck_blocks)
    assert worker.step() is None and len(_attempts(registry)) == len(attempts)
    assert _states(registry) == [(size, "broadcast")]
    assert "max fee reached" in (_anchor_row(registry)["error"] or "")
    worker.beat()
    ready = api.ready()
    assert ready["status"] == "degraded"
    assert any("max fee reached" in alert for alert in ready["alerts"]), ready
    more = _registered(registry, clock, 4)  # registrations go on
    devchain.rpc("anvil_setNextBlockBaseFeePerGas", hex(_gwei(1)))
    devchain.rpc("anvil_mine", "0x1")  # fees fall: the last attempt is mined
    devchain.rpc("evm_setAutomine", True)
    _finish(worker, devchain)
    _finish(worker, devchain)
    assert _states(registry) == [(size, "final"), (more, "final")]
    assert chain.nonce(operator.address, "latest") == nonce + 2  # nothing wasted
    assert chain.last_anchored()[0] == more
    worker.beat()
    assert api.ready() == {"status": "ok", "checks": ready["checks"]}


def test_threat_25_a_dropped_transaction_goes_out_again_with_the_same_bytes(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    """The node forgot the anchor (no receipt, no transaction): the worker re-sends the
    stored raw transaction, byte for byte, at its nonce; it never signs again."""
    with RpcProxy(devchain.rpc_url, "anvil") as proxy:
        through = Chain.connect(proxy.url, chain.address)
        size = _registered(registry, clock, 3)
        worker = _worker(registry, through, operator)
        nonce = chain.nonce(operator.address, "latest")
        devchain.rpc("evm_setAutomine", False)
        worker.step()
        worker.step()
        worker.step()  # broadcast, pending
        [raw] = _raws(registry)
        [tx_hash] = _hashes(registry)
        assert proxy.sent_raw == [raw]
        devchain.rpc("anvil_dropTransaction", "0x" + tx_hash.hex())
        assert not chain.transaction_known(tx_hash) and chain.receipt(tx_hash) is None
        assert worker.step() == f"rebroadcast head {size}"
        assert proxy.sent_raw == [raw, raw]  # the same bytes, nothing re-signed
        assert _raws(registry) == [raw]
        pending = chain.w3.eth.get_transaction(HexBytes(tx_hash))
        assert pending["nonce"] == nonce
        devchain.rpc("evm_setAutomine", True)
        devchain.rpc("anvil_mine", "0x1")
        _finish(worker, devchain)
        assert _states(registry) == [(size, "final")] and _tx_hash(registry) == tx_hash
        assert chain.nonce(operator.address, "latest") == nonce + 1


# -- 29: a reverted anchor ----------------------------------------------------------------------


def test_threat_29_an_out_of_gas_anchor_is_reverted_alarmed_resealed_and_anchored_again(
    registry: Registry,
    chain: Chain,
    devchain: DevChain,
    operator: LocalAccount,
    clock: Clock,
    api: Api,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A gas limit too low for the anchor (the simulation passes; the transaction runs out
    of gas): status 0 is recorded as reverted, never mined; an alarm is logged and shown;
    the head is sealed again and anchored once the gas limit is right."""
    size = _registered(registry, clock, 3)
    starved = AnchorWorker(registry, chain, operator, replace(POLICY, gas_limit=40_000))
    with caplog.at_level(logging.ERROR, logger="tracemark.anchoring"):
        steps = starved.run_until_idle(max_steps=4)
    assert steps[-1].startswith(f"head {size}: the anchor transaction reverted"), steps
    assert _states(registry) == [(size, "reverted")]
    receipt = chain.receipt(_hashes(registry)[0])
    assert receipt is not None and receipt["status"] == 0
    assert receipt["gasUsed"] == 40_000  # out of gas
    assert ("broadcast", "mined") not in _trail(registry)
    assert chain.last_anchored() == (0, b"")
    assert any(
        r.levelname == "ERROR" and "ALARM" in r.getMessage() and "reverted" in r.getMessage()
        for r in caplog.records
    )
    starved.beat()
    ready = api.ready()
    assert any(f"head {size} reverted" in alert for alert in ready["alerts"]), ready
    # The operator raises the gas limit: the head is sealed again and anchored.
    worker = _worker(registry, chain, operator)
    assert worker.step() == f"sealed head {size}"
    _finish(worker, devchain)
    assert _states(registry) == [(size, "reverted"), (size, "final")]
    assert chain.last_anchored()[0] == size
    worker.beat()
    assert "alerts" not in api.ready()  # a final anchor since: the alarm is over


# -- 30: the node goes down and comes back --------------------------------------------------------


class _Waits(threading.Event):
    """A stop event that records every pause the worker takes."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0))
        return super().wait(timeout)


def _error_waits(waits: list[float], interval: float) -> list[float]:
    """The pauses after errors: from the first doubled one on (idle pauses are ``interval``)."""
    doubled = [i for i, w in enumerate(waits) if w > interval]
    return waits[doubled[0] - 1 :] if doubled else []


def _until(what: str, condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.05)


def test_threat_30_bounded_backoff_and_recovery_after_the_node_restarts_with_its_state(
    registry: Registry,
    operator: LocalAccount,
    clock: Clock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The node goes away under a running worker: it backs off exponentially up to its bound,
    changes nothing stored, /readyz says not ready. A worker restarted while the node is
    still down waits the same way (it does not die). The node comes back on the same state
    file (its chain kept): the worker resumes and anchors, nothing is re-anchored."""
    bound, interval = 0.4, 0.05
    monkeypatch.setattr(worker_module, "MAX_BACKOFF_SECONDS", bound)
    state, port = tmp_path / "chain-state.json", free_port()
    life = DevChain(state_file=state, port=port).start()
    chain = Chain.connect(
        life.rpc_url, Chain.connect(life.rpc_url, DEV_CONTRACT).deploy(operator), timeout=1
    )

    def start_worker() -> tuple[threading.Thread, _Waits]:
        stop = _Waits()
        thread = threading.Thread(
            target=run_anchoring,
            args=(_worker(registry, chain, operator),),
            kwargs={"interval": interval, "stop": stop},
        )
        thread.start()
        return thread, stop

    threads: list[tuple[threading.Thread, _Waits]] = []
    try:
        first = _registered(registry, clock, 3)
        threads.append(start_worker())
        _until("head anchored", lambda: _states(registry) == [(first, "mined")])
        life.rpc("anvil_mine", hex(POLICY.confirmations))
        _until("head final", lambda: _states(registry) == [(first, "final")])
        time.sleep(1.5)  # anvil writes its state every second
        life.stop()
        thread, running = threads[0]
        second = _registered(registry, clock, 2)  # registering goes on
        with TestClient(create_app(registry, chain)) as client:
            _until("backing off", lambda: _error_waits(running.waits, interval).count(bound) >= 3)
            waits = _error_waits(running.waits, interval)
            steps = waits[: waits.index(bound) + 1]
            assert steps == [interval * 2**i for i in range(len(steps))], running.waits
            assert max(running.waits) == bound, running.waits  # bounded
            assert _states(registry) == [(first, "final")]  # nothing moved
            events = len(_trail(registry))
            time.sleep(3 * bound)
            assert len(_trail(registry)) == events  # no transition on error
            not_ready = client.get("/readyz")
            assert not_ready.status_code == 503 and "chain" in not_ready.json()["detail"]
            # A restart while the node is down: the new worker waits, it does not die.
            running.set()
            thread.join(timeout=20)
            threads.append(start_worker())
            thread, restarted = threads[1]
            _until("backing off again", lambda: restarted.waits.count(bound) >= 2)
            assert thread.is_alive(), "the worker died while the node was down"
            assert max(restarted.waits) == bound, restarted.waits
            with DevChain(state_file=state, port=port) as again:
                assert chain.last_anchored()[0] == first  # the chain kept its state

                def anchored() -> bool:
                    again.rpc("anvil_mine", "0x1")
                    return _states(registry)[-1:] == [(second, "final")]

                _until("anchoring resumed", anchored)
                assert chain.last_anchored()[0] == second
                assert client.get("/readyz").status_code == 200
    finally:
        for thread, stop in threads:
            stop.set()
            thread.join(timeout=20)
        life.stop()
    assert _states(registry) == [(first, "final"), (second, "final")]  # none reorged, once each


# -- 33, 34: alerts a user sees -------------------------------------------------------------------


def test_threat_33_an_unfunded_key_pauses_alerts_in_readyz_and_resumes_when_funded(
    registry: Registry,
    chain: Chain,
    devchain: DevChain,
    operator: LocalAccount,
    clock: Clock,
    api: Api,
) -> None:
    size = _registered(registry, clock, 3)
    worker = _worker(registry, chain, operator)
    worker.step()
    worker.step()  # signed
    balance = chain.w3.eth.get_balance(operator.address)
    devchain.rpc("anvil_setBalance", operator.address, "0x0")
    with pytest.raises(TransactionRejected) as refused:
        worker.step()
    assert refused.value.verdict == SendVerdict.INSUFFICIENT_FUNDS
    worker.beat()
    ready = api.ready()  # still ready: registering and verifying go on
    assert ready["status"] == "degraded"
    assert any("anchoring key unfunded" in alert for alert in ready["alerts"]), ready
    more = _registered(registry, clock, 2)  # accepted meanwhile
    assert _states(registry) == [(size, "signed")]
    devchain.rpc("anvil_setBalance", operator.address, hex(balance))
    _finish(worker, devchain)
    _finish(worker, devchain)
    assert _states(registry) == [(size, "final"), (more, "final")]
    worker.beat()
    assert api.ready()["status"] == "ok"


def test_threat_34_a_sustained_fee_spike_breaches_the_time_to_anchor_objective_visibly(
    registry: Registry,
    chain: Chain,
    devchain: DevChain,
    operator: LocalAccount,
    clock: Clock,
    api: Api,
) -> None:
    """Fees stay above the cap: the worker waits (nothing signed); once the oldest head has
    waited past the objective, /readyz says "time-to-anchor exceeded"; when fees drop one
    transaction covers everything and the alert clears."""
    policy = replace(POLICY, max_fee_per_gas=_gwei(20), time_to_anchor_seconds=60)
    worker = AnchorWorker(registry, chain, operator, policy)
    first = _registered(registry, clock, 3)
    devchain.rpc("evm_setAutomine", False)
    _mine_at_base_fee(devchain, _gwei(100), 1)
    assert worker.step() == f"sealed head {first}"
    assert worker.step() is None  # above the cap: waits
    worker.beat()
    alerts = api.ready()["alerts"]
    assert any("max fee reached" in a for a in alerts)
    assert not any("time-to-anchor" in a for a in alerts), alerts  # not yet late
    clock.advance(policy.time_to_anchor_seconds)
    more = _registered(registry, clock, 4)  # still accepted
    _mine_at_base_fee(devchain, _gwei(100), 1)
    assert worker.step() is None
    worker.beat()
    ready = api.ready()
    assert ready["status"] == "degraded"
    assert any("time-to-anchor exceeded" in a for a in ready["alerts"]), ready
    devchain.rpc("anvil_setNextBlockBaseFeePerGas", hex(_gwei(1)))
    devchain.rpc("anvil_mine", "0x1")
    devchain.rpc("evm_setAutomine", True)
    _finish(worker, devchain)
    assert _states(registry) == [(more, "final")]  # one anchor for both batches
    assert len(_attempts(registry)) == 1
    worker.beat()
    assert api.ready()["status"] == "ok"


# -- 45: receipts that lie ----------------------------------------------------------------------


def _mined_anchor(chain: Chain, operator: LocalAccount) -> tuple[dict[str, Any], SignedAnchor]:
    root = os.urandom(32)
    sealed = chain.sign_anchor(
        operator,
        size=1,
        root=root,
        proof=[],
        nonce=chain.nonce(operator.address),
        max_fee_per_gas=10**10,
        max_priority_fee_per_gas=10**9,
        gas=200_000,
    )
    chain.send_raw(sealed.raw)
    return dict(chain.w3.eth.wait_for_transaction_receipt(HexBytes(sealed.tx_hash))), sealed


OTHER_TOPIC = HexBytes(Web3.keccak(text="Transfer(address,address,uint256)"))
ELSEWHERE = "0x" + "42" * 20


def test_threat_45_a_log_with_another_topic_two_events_or_another_address_are_checked(
    chain: Chain, operator: LocalAccount
) -> None:
    """Only a log of our contract with the Anchored topic counts, and exactly one: each of
    the three checks is needed (deleting any one makes one of these fail)."""
    receipt, sealed = _mined_anchor(chain, operator)
    [ours] = receipt["logs"]
    other_topic = {**ours, "topics": [OTHER_TOPIC, *ours["topics"][1:]]}
    no_topics = {**ours, "topics": []}
    elsewhere = {**ours, "address": ELSEWHERE, "data": HexBytes(bytes(96))}
    assert chain.verify_receipt(receipt, sealed).root == sealed.root
    # Logs that are not our Anchored event beside it are not counted ...
    for extra in (other_topic, no_topics, elsewhere):
        for logs in ([extra, ours], [ours, extra]):
            anchored = chain.verify_receipt({**receipt, "logs": logs}, sealed)
            assert (anchored.size, anchored.root) == (1, sealed.root)
    # ... nor alone taken for it; and two Anchored events are one too many.
    for logs, reason in [
        ([other_topic], "0 Anchored events"),
        ([no_topics], "0 Anchored events"),
        ([elsewhere], "0 Anchored events"),
        ([], "0 Anchored events"),
        ([ours, ours], "2 Anchored events"),
    ]:
        with pytest.raises(ReceiptMismatch, match=reason):
            chain.verify_receipt({**receipt, "logs": logs}, sealed)


def _lie(how: str) -> Any:
    def rewrite(method: str, answer: dict[str, Any]) -> dict[str, Any]:
        result = answer.get("result")
        if method != "eth_getTransactionReceipt" or not result or not result.get("logs"):
            return answer
        ours = result["logs"][0]
        if how == "two events":
            result["logs"] = [ours, {**ours, "logIndex": hex(int(ours["logIndex"], 16) + 1)}]
        elif how == "another topic":
            result["logs"] = [{**ours, "topics": ["0x" + OTHER_TOPIC.hex(), *ours["topics"][1:]]}]
        elif how == "another address":
            result["logs"] = [{**ours, "address": ELSEWHERE}]
        return answer

    return rewrite


@pytest.mark.parametrize("how", ["two events", "another topic", "another address"])
def test_threat_45_a_node_that_lies_about_the_receipt_never_gets_an_anchor_recorded(
    registry: Registry,
    chain: Chain,
    devchain: DevChain,
    operator: LocalAccount,
    clock: Clock,
    api: Api,
    how: str,
) -> None:
    """Through the proxy the node's receipt is rewritten: the worker refuses it (fatal, with
    an alarm), never records the head as mined, and the API claims no anchor."""
    fingerprint, size = _one_good(registry, clock)
    with RpcProxy(devchain.rpc_url, "anvil") as proxy:
        proxy.rewrite = _lie(how)
        worker = _worker(registry, Chain.connect(proxy.url, chain.address), operator)
        steps = [worker.step() for _ in range(4)]
    assert steps[-1] is not None and "Anchored events" in steps[-1], steps
    assert _states(registry) == [(size, "fatal")]
    assert ("broadcast", "mined") not in _trail(registry)
    assert api.anchor_of(fingerprint) is None
    worker.beat()
    assert any(f"head {size} fatal" in a for a in api.ready()["alerts"])
