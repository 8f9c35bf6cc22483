"""The anchoring worker on a real anvil and a real registry database: heads end up anchored
exactly once, whatever step a crash interrupts (THREATS 27), with the node down (30) or the
key out of funds (33)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import text

from anchoring.chain import Chain
from anchoring.classify import SendVerdict
from anchoring.devchain import DevChain, free_port
from anchoring.errors import ChainMismatch, ChainUnavailable, TransactionRejected
from anchoring.worker import AnchorPolicy, AnchorWorker
from registry.creator import CreatorKeys
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.service import Registry
from tests.conftest import Clock
from tests.registry.helpers import registration

POLICY = AnchorPolicy(max_entries=1_000, max_age_seconds=5, confirmations=3)

pytestmark = pytest.mark.slow


def _registered(registry: Registry, clock: Clock, n: int) -> int:
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    for _ in range(n):
        registry.register(registration(creator, clock(), fingerprint=os.urandom(32)))
    head = registry.sequence_all()
    assert head is not None
    clock.advance(POLICY.max_age_seconds)
    return head.tree_size


def _worker(registry: Registry, chain: Chain, operator: LocalAccount) -> AnchorWorker:
    return AnchorWorker(registry, chain, operator, POLICY)


def _states(registry: Registry) -> list[tuple[int, str]]:
    with registry.engine.connect() as conn:
        return [
            (int(s), st)
            for s, st in conn.execute(text("SELECT tree_size, state FROM anchors ORDER BY id"))
        ]


def _finish(worker: AnchorWorker, devchain: DevChain) -> None:
    worker.run_until_idle()
    devchain.rpc("anvil_mine", hex(POLICY.confirmations))
    worker.run_until_idle()


def test_heads_are_anchored_mined_and_final_each_extending_the_last(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    worker = _worker(registry, chain, operator)
    first = _registered(registry, clock, 5)
    steps = worker.run_until_idle()
    assert [s.split(" ")[0] for s in steps] == ["sealed", "signed", "broadcast", "mined"]
    devchain.rpc("anvil_mine", hex(POLICY.confirmations))
    assert worker.step() == f"final head {first}"
    second = _registered(registry, clock, 7)
    _finish(worker, devchain)
    assert _states(registry) == [(first, "final"), (second, "final")]
    head = registry.latest_tree_head()
    assert head is not None and chain.last_anchored() == (second, head.root)
    assert worker.step() is None  # nothing left to anchor


def test_nothing_is_sealed_before_the_size_or_age_trigger(
    registry: Registry, chain: Chain, operator: LocalAccount, clock: Clock
) -> None:
    worker = _worker(registry, chain, operator)
    _registered(registry, clock, 3)
    clock.advance(-POLICY.max_age_seconds)  # the head is fresh and small
    assert worker.step() is None
    clock.advance(POLICY.max_age_seconds)
    assert worker.step() is not None


@pytest.mark.parametrize("crash_after", ["sealed", "signed"])
def test_a_crash_after_any_step_resumes_and_anchors_once(
    registry: Registry,
    chain: Chain,
    devchain: DevChain,
    operator: LocalAccount,
    clock: Clock,
    crash_after: str,
) -> None:
    size = _registered(registry, clock, 4)
    doomed = _worker(registry, chain, operator)
    while _states(registry)[-1:] != [(size, crash_after)]:
        doomed.step()
    nonce_before = chain.nonce(operator.address, "latest")
    _finish(_worker(registry, chain, operator), devchain)  # a fresh worker: a restart
    assert _states(registry) == [(size, "final")]
    assert chain.nonce(operator.address, "latest") == nonce_before + 1  # one transaction
    with registry.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM anchor_attempts")).scalar_one() == 1


def test_a_crash_between_sending_and_recording_never_signs_again(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    """THREATS 27: the stored raw transaction went out, then the worker died before it
    recorded 'broadcast'. The restart re-sends the same bytes, hears 'already imported' (or
    'nonce too low' once mined), and finds the receipt."""
    size = _registered(registry, clock, 4)
    worker = _worker(registry, chain, operator)
    worker.step()
    worker.step()  # signed
    with registry.engine.connect() as conn:
        raw = bytes(conn.execute(text("SELECT raw FROM anchor_attempts")).scalar_one())
    devchain.rpc("evm_setAutomine", False)
    chain.send_raw(raw)  # the broadcast that the crash hid
    assert "already with the node (already-known)" in (worker.step() or "")
    devchain.rpc("evm_setAutomine", True)
    devchain.rpc("anvil_mine", hex(POLICY.confirmations))
    worker.run_until_idle()
    assert _states(registry) == [(size, "final")]
    with registry.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM anchor_attempts")).scalar_one() == 1


def test_a_node_that_is_down_changes_nothing(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    """THREATS 30: ChainUnavailable for the caller's back-off, no state change; registering
    goes on; anchoring resumes when the node is back."""
    size = _registered(registry, clock, 3)
    down = Chain.connect(f"http://127.0.0.1:{free_port()}", chain.address, timeout=1)
    offline = _worker(registry, down, operator)
    offline.step()  # sealing needs only the database
    with pytest.raises(ChainUnavailable):
        offline.step()
    assert _states(registry) == [(size, "sealed")]
    _finish(_worker(registry, chain, operator), devchain)
    assert _states(registry) == [(size, "final")]


def test_an_unfunded_key_pauses_anchoring_and_loses_nothing(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    """THREATS 33."""
    size = _registered(registry, clock, 3)
    worker = _worker(registry, chain, operator)
    worker.step()
    worker.step()  # signed
    balance = chain.w3.eth.get_balance(operator.address)
    devchain.rpc("anvil_setBalance", operator.address, "0x0")
    with pytest.raises(TransactionRejected) as refused:
        worker.step()
    assert refused.value.verdict == SendVerdict.INSUFFICIENT_FUNDS
    assert _states(registry) == [(size, "signed")]
    more = _registered(registry, clock, 2)  # registrations are still accepted
    devchain.rpc("anvil_setBalance", operator.address, hex(balance))
    _finish(worker, devchain)
    _finish(worker, devchain)
    assert _states(registry) == [(size, "final"), (more, "final")]


def test_a_chain_that_comes_back_shorter_is_a_recorded_reorg_and_heads_are_reanchored(
    registry: Registry, chain: Chain, operator: LocalAccount, clock: Clock
) -> None:
    """A dev chain whose state was lost (or a restored database, THREATS 50): anchors the
    chain no longer holds are marked reorged, never silently rewritten, and anchored again."""
    with DevChain() as first_life:
        first = Chain.connect(
            first_life.rpc_url, Chain.connect(first_life.rpc_url, chain.address).deploy(operator)
        )
        size = _registered(registry, clock, 3)
        _finish(_worker(registry, first, operator), first_life)
        assert _states(registry) == [(size, "final")]
    with DevChain() as second_life:  # the same chain id, empty: the state file was lost
        again = Chain.connect(
            second_life.rpc_url, Chain.connect(second_life.rpc_url, chain.address).deploy(operator)
        )
        assert again.last_anchored() == (0, b"")
        worker = _worker(registry, again, operator)
        assert worker.reconcile() == [f"head {size} is no longer on chain; anchoring again"]
        _finish(worker, second_life)
        assert _states(registry) == [(size, "reorged"), (size, "final")]
        head = registry.latest_tree_head()
        assert head is not None and again.last_anchored() == (size, head.root)
    with registry.engine.connect() as conn:
        trail = [
            tuple(r)
            for r in conn.execute(
                text("SELECT from_state, to_state FROM anchor_events ORDER BY id")
            )
        ]
    assert ("final", "reorged") in trail


def _gwei(n: float) -> int:
    return int(n * 10**9)


def _attempts(registry: Registry) -> list[tuple[int, int]]:
    with registry.engine.connect() as conn:
        return [
            (int(n), int(f))
            for n, f in conn.execute(
                text("SELECT nonce, max_fee_per_gas FROM anchor_attempts ORDER BY id")
            )
        ]


def test_a_stuck_anchor_is_replaced_at_the_same_nonce_with_higher_fees(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    """THREATS 22: no receipt after K blocks -> a replacement at the same nonce, higher fees,
    both hashes kept; whichever is mined is the anchor."""
    size = _registered(registry, clock, 3)
    worker = _worker(registry, chain, operator)
    devchain.rpc("evm_setAutomine", False)
    worker.step()
    worker.step()
    worker.step()  # broadcast at today's low fees, pending
    devchain.rpc("anvil_setNextBlockBaseFeePerGas", hex(_gwei(50)))
    devchain.rpc("anvil_mine", "0x1")  # fees spike: our transaction is left out
    devchain.rpc("anvil_mine", hex(POLICY.stuck_blocks))
    replaced = [s for s in worker.run_until_idle() if s.startswith("replaced")]
    attempts = _attempts(registry)
    assert len(attempts) == 2 and attempts[0][0] == attempts[1][0]  # the same nonce
    assert attempts[1][1] > attempts[0][1] and replaced
    devchain.rpc("anvil_mine", "0x1")
    _finish(worker, devchain)
    assert _states(registry) == [(size, "final")]
    assert chain.last_anchored()[0] == size


def test_at_the_fee_cap_the_worker_waits_and_anchors_once_fees_drop(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    """THREATS 23/34: above the cap nothing is signed and no nonce is spent; when fees drop,
    one anchor covers everything that piled up."""
    capped = AnchorWorker(
        registry,
        chain,
        operator,
        AnchorPolicy(max_age_seconds=5, confirmations=3, max_fee_per_gas=_gwei(20)),
    )
    first = _registered(registry, clock, 3)
    devchain.rpc("evm_setAutomine", False)
    devchain.rpc("anvil_setNextBlockBaseFeePerGas", hex(_gwei(100)))
    devchain.rpc("anvil_mine", "0x1")
    assert capped.step() == f"sealed head {first}"
    nonce = chain.nonce(operator.address)
    assert capped.step() is None  # waits: nothing signed
    assert _states(registry) == [(first, "sealed")] and _attempts(registry) == []
    with registry.engine.connect() as conn:
        assert "max fee reached" in conn.execute(text("SELECT error FROM anchors")).scalar_one()
    more = _registered(registry, clock, 4)  # registrations go on meanwhile
    devchain.rpc("anvil_mine", hex(40))  # empty blocks: the base fee decays 12.5% a block
    devchain.rpc("evm_setAutomine", True)
    _finish(capped, devchain)
    # One transaction, at the nonce that was free all along, covers both batches.
    assert _states(registry) == [(more, "final")]
    assert [n for n, _ in _attempts(registry)] == [nonce]
    assert chain.last_anchored()[0] == more


def test_a_reorg_that_drops_the_anchor_sends_it_again_and_final_waits(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    """THREATS 19/20: the block that held the anchor is reorged away before finality; the
    worker notices, re-sends the same raw transaction, and records the new block."""
    size = _registered(registry, clock, 3)
    worker = _worker(registry, chain, operator)
    worker.run_until_idle()
    assert _states(registry) == [(size, "mined")]
    with registry.engine.connect() as conn:
        first_block = conn.execute(text("SELECT block_hash FROM anchors")).scalar_one()
    devchain.rpc("anvil_reorg", 1, [])  # the anchor's block is gone
    assert chain.receipt(_tx_hash(registry)) is None
    steps = worker.run_until_idle()
    assert any("reorged out of its block" in s or "reorged out" in s for s in steps), steps
    _finish(worker, devchain)
    assert _states(registry) == [(size, "final")]
    with registry.engine.connect() as conn:
        assert conn.execute(text("SELECT block_hash FROM anchors")).scalar_one() != first_block
        trail = [
            tuple(r)
            for r in conn.execute(
                text("SELECT from_state, to_state FROM anchor_events ORDER BY id")
            )
        ]
    assert ("mined", "broadcast") in trail and trail[-1] == ("mined", "final")
    assert chain.last_anchored()[0] == size


def _tx_hash(registry: Registry) -> bytes:
    with registry.engine.connect() as conn:
        return bytes(conn.execute(text("SELECT tx_hash FROM anchors")).scalar_one())


def test_after_a_database_restore_the_chain_is_adopted_never_overwritten(
    registry: Registry,
    chain: Chain,
    devchain: DevChain,
    operator: LocalAccount,
    clock: Clock,
    tmp_path: Path,
) -> None:
    """THREATS 50: a backup taken before an anchor knows nothing of it. The worker finds the
    chain ahead, adopts the anchor if the log holds that head, and refuses to anchor over it
    if the log itself is older."""
    import sqlite3

    def backup(to: Path) -> None:  # SQLite's online backup: WAL contents included
        with sqlite3.connect(db) as source, sqlite3.connect(to) as target:
            source.backup(target)

    engine_url = str(registry.engine.url)
    db = Path(engine_url.removeprefix("sqlite:///"))
    old_backup = tmp_path / "before-registrations.db"
    backup(old_backup)  # a backup from before anything was registered
    size = _registered(registry, clock, 3)
    log_backup = tmp_path / "before-anchoring.db"
    backup(log_backup)  # a backup with the log but not the anchor
    _finish(_worker(registry, chain, operator), devchain)
    head = registry.latest_tree_head()
    assert head is not None

    restored = Registry(
        create_db_engine(f"sqlite:///{log_backup}"),
        domain=DEV_DOMAIN,
        account=registry.account,
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    worker = _worker(restored, chain, operator)
    assert worker.reconcile() == [f"head {size} was anchored on chain but unknown here: adopted"]
    assert _states(restored) == [(size, "final")]
    assert worker.run_until_idle() == []  # nothing to re-anchor

    stale = Registry(
        create_db_engine(f"sqlite:///{old_backup}"),
        domain=DEV_DOMAIN,
        account=registry.account,
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    with pytest.raises(ChainMismatch, match="restore the log"):
        _worker(stale, chain, operator).reconcile()
    assert _states(stale) == []


def test_a_foreign_transaction_on_our_nonce_raises_the_alarm_and_we_anchor_again(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    """THREATS 32: the nonce is consumed, none of our hashes has a receipt: alarm, and the
    head is anchored at a fresh nonce."""
    size = _registered(registry, clock, 3)
    worker = _worker(registry, chain, operator)
    worker.step()
    worker.step()  # signed at nonce N
    [(nonce, _)] = _attempts(registry)
    # Someone else uses the anchoring key: a plain transfer takes nonce N.
    foreign = operator.sign_transaction(
        {
            "type": 2,
            "chainId": 31337,
            "nonce": nonce,
            "to": "0x" + "11" * 20,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    chain.send_raw(bytes(foreign.raw_transaction))
    steps = worker.run_until_idle()
    assert any("used by a foreign transaction" in s for s in steps), steps
    _finish(worker, devchain)
    assert _states(registry) == [(size, "final")]
    assert [n for n, _ in _attempts(registry)] == [nonce, nonce + 1]
    assert chain.last_anchored()[0] == size


def test_a_nonce_gap_is_filled_from_the_lowest_free_nonce(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    """THREATS 26: a transaction above the account's nonce can never be mined; the worker
    notices it is stuck and anchors at the lowest free nonce instead."""
    size = _registered(registry, clock, 3)
    worker = _worker(registry, chain, operator)
    worker.step()  # sealed
    free = chain.nonce(operator.address, "latest")
    with registry.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO anchorer_state (id, next_nonce, heartbeat, failures) "
                "VALUES (1, :n, 0, 0)"
            ),
            {"n": free + 3},
        )
    worker.step()  # signed at free + 3: a gap
    worker.step()  # broadcast: anvil queues it, never mines it
    devchain.rpc("anvil_mine", hex(POLICY.stuck_blocks))
    worker.run_until_idle()
    _finish(worker, devchain)
    assert _states(registry) == [(size, "final")]
    assert [n for n, _ in _attempts(registry)] == [free + 3, free]
    assert chain.last_anchored()[0] == size


def test_a_reorg_past_finality_raises_the_alarm_and_re_anchors(
    registry: Registry,
    chain: Chain,
    devchain: DevChain,
    operator: LocalAccount,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """THREATS 21: history is kept (the final anchor is marked reorged, with the reason), a
    critical alarm is logged, and the head is anchored again."""
    devchain.rpc("anvil_mine", hex(20))  # the contract's deployment stays below the reorg
    size = _registered(registry, clock, 3)
    worker = _worker(registry, chain, operator)
    _finish(worker, devchain)
    assert _states(registry) == [(size, "final")]
    devchain.rpc("anvil_reorg", POLICY.confirmations + 2, [])  # deeper than finality
    steps = worker.run_until_idle()
    assert any("finality violated" in s for s in steps), steps
    assert any(
        r.levelname == "CRITICAL" and "finality violated" in r.getMessage() for r in caplog.records
    )
    _finish(worker, devchain)
    assert _states(registry) == [(size, "reorged"), (size, "final")]
    assert chain.last_anchored()[0] == size


def test_roots_are_read_from_the_contract_only_at_the_confirmation_depth(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    """THREATS 8: a verifier's root comes from the configured contract at a block at least
    the confirmation depth deep: a head mined a moment ago is not trusted yet."""
    size = _registered(registry, clock, 3)
    worker = _worker(registry, chain, operator)
    worker.run_until_idle()  # mined, not yet deep
    head = registry.latest_tree_head()
    assert head is not None
    assert chain.confirmed_root(size, POLICY.confirmations) is None
    devchain.rpc("anvil_mine", hex(POLICY.confirmations))
    assert chain.confirmed_root(size, POLICY.confirmations) == head.root
    assert chain.confirmed_root(size + 1, POLICY.confirmations) is None  # never anchored


def test_with_the_finalized_tag_final_waits_for_the_networks_finalized_block(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    size = _registered(registry, clock, 3)
    worker = AnchorWorker(
        registry,
        chain,
        operator,
        AnchorPolicy(max_age_seconds=5, confirmations=1, use_finalized_tag=True),
    )
    worker.run_until_idle()
    devchain.rpc("anvil_mine", hex(5))
    worker.run_until_idle()
    assert _states(registry) == [(size, "mined")]  # 5 confirmations, not yet finalized
    devchain.rpc("anvil_mine", hex(80))  # anvil's finalized tag lags 64 blocks
    worker.run_until_idle()
    assert _states(registry) == [(size, "final")]
