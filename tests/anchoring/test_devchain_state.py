"""The embedded dev chain's state file: never half-written, bounded, and a restart after anvil
is killed at any moment comes back with the contract and every anchored root."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

import anchoring.devchain as devchain_module
from anchoring.chain import Chain
from anchoring.devchain import KEPT_EMPTY_BLOCKS, PERSISTED_STATES, DevChain
from tests.anchoring.conftest import DEV_CONTRACT
from tests.anchoring.test_reader import TREE, _anchor

pytestmark = pytest.mark.slow


def _until(what: str, condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.02)


def _kill(devchain: DevChain) -> None:
    process = devchain._process
    assert process is not None
    os.kill(process.pid, signal.SIGKILL)


def _state(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())  # whole: it parses
    return document


def _died(devchain: DevChain) -> bool:
    return devchain._process is not None and devchain._process.poll() is not None


def _one_life(
    state: Path,
    anchored: dict[int, bytes],
    size: int,
    moment: str,
    delay: float,
    operator: LocalAccount,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Start on ``state``, check every earlier root, anchor ``size``, kill anvil at ``moment``."""
    devchain = DevChain(state_file=state, block_time=0.25).start()
    try:
        chain = Chain.connect(devchain.rpc_url, DEV_CONTRACT)
        if not anchored:
            assert chain.deploy(operator) == DEV_CONTRACT
        # Everything anchored in earlier lives is there, at depth too (past states restored).
        assert chain.has_contract()
        depth = chain.block_number() - 2
        for old_size, root in anchored.items():
            assert chain.root_at(old_size) == root
            assert chain.root_at_block(old_size, depth) == root
        sealed = _anchor(chain, operator, size, max(anchored, default=0))
        receipt = chain.receipt(sealed.tx_hash)
        assert receipt is not None
        anchored[size] = TREE.root(size)
        # The anchor is in a snapshot once a snapshot's head is at or past its block
        # (snapshots follow blocks within a second; an anchor is final 3 blocks later).
        block = int(receipt["blockNumber"])
        _until("a snapshot", lambda: (devchain.snapshot_block or -1) >= block)
        if moment == "mid-dump":
            original = devchain.rpc

            def rpc(method: str, *params: object) -> object:
                if method == "anvil_dumpState":
                    threading.Timer(0.002, _kill, (devchain,)).start()
                return original(method, *params)

            monkeypatch.setattr(devchain, "rpc", rpc)
            _until("anvil killed", lambda: _died(devchain))
        elif moment == "mid-write":
            # The writer dies half-way: half a temporary file, anvil killed, no rename.
            def half_write(path: Path, data: bytes) -> None:
                path.with_name(f"{path.name}.tmp-1-1").write_bytes(data[: len(data) // 2])
                _kill(devchain)
                raise OSError("killed mid-write")

            monkeypatch.setattr(devchain_module, "_write_atomically", half_write)
            _until("anvil killed", lambda: _died(devchain))
            monkeypatch.undo()
            assert list(state.parent.glob("chain-state.json.tmp-*"))
        else:
            time.sleep(delay)
            _kill(devchain)
        _state(state)  # whatever the moment, the file is a whole snapshot
    finally:
        devchain.stop()
        monkeypatch.undo()


def test_a_restart_after_sigkill_at_any_moment_loses_no_anchored_root(
    tmp_path: Path, operator: LocalAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "chain-state.json"
    anchored: dict[int, bytes] = {}
    moments = ["after-a-snapshot", "mid-dump", "mid-write", "random", "random", "random"]
    rng = random.Random(12)
    for size, moment in zip([4, 8, 16, 24, 32, 48], moments, strict=True):
        delay = rng.uniform(0, 1.5) if moment == "random" else 0.0
        _one_life(state, anchored, size, moment, delay, operator, monkeypatch)
    with DevChain(state_file=state) as last:
        chain = Chain.connect(last.rpc_url, DEV_CONTRACT)
        assert {size: chain.root_at(size) for size in anchored} == anchored
        assert not list(tmp_path.glob("chain-state.json.tmp-*"))  # a stale half is removed


def test_the_state_is_bounded_and_a_restart_still_reads_old_anchors(
    tmp_path: Path, operator: LocalAccount
) -> None:
    state = tmp_path / "chain-state.json"
    with DevChain(state_file=state) as devchain:
        chain = Chain.connect(devchain.rpc_url, DEV_CONTRACT)
        chain.deploy(operator)
        first = _anchor(chain, operator, 8, 0)
        devchain.rpc("anvil_mine", hex(600))
        devchain.snapshot()
        small = state.stat().st_size
        devchain.rpc("anvil_mine", hex(600))
        devchain.snapshot()
        document = _state(state)
        # Bounded: 600 more blocks added nothing but the kept window moving on.
        assert abs(state.stat().st_size - small) < small // 10, (small, state.stat().st_size)
        assert len(document["blocks"]) <= KEPT_EMPTY_BLOCKS + 3
        assert len(document["historical_states"] or []) <= PERSISTED_STATES
    with DevChain(state_file=state) as again:
        chain = Chain.connect(again.rpc_url, DEV_CONTRACT)
        assert chain.block_number() == 1_202
        receipt = chain.receipt(first.tx_hash)  # the old anchor's block and receipt
        assert receipt is not None and chain.anchor_block(first.tx_hash, 8, TREE.root(8))
        assert chain.finalized_block() >= 1_202 - 64
        assert chain.confirmed_root(8, 3) == TREE.root(8)
