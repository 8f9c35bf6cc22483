"""The chain commands: status, anchor --now --wait, deploy to a network, chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anchoring.devchain import DevChain
from anchoring.runtime import ANVIL_ACCOUNT_0_KEY

TRACEMARK = str(Path(sys.executable).parent / "tracemark")
pytestmark = pytest.mark.slow


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACEMARK_")}
    return {**clean, "TRACEMARK_DATA_DIR": str(tmp_path / "data"), **extra}


def _run(env: dict[str, str], *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([TRACEMARK, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == expect, done.stderr
    return done


def test_anchor_now_on_the_embedded_dev_chain_and_status(tmp_path: Path) -> None:
    env = _env(tmp_path)
    _run(env, "keys", "new")
    (tmp_path / "work").write_bytes(b"a work")
    _run(env, "register", str(tmp_path / "work"), "--product", "art", "--new-product")
    head = json.loads(_run(env, "log", "sequence", "--json").stdout)
    # The registration, then the state commitment every head ends with (issue 14).
    assert head["tree_size"] == 2
    before = json.loads(_run(env, "status", "--json").stdout)
    assert before["tree_size"] == head["tree_size"] and before["last_anchored"] is None
    done = json.loads(_run(env, "anchor", "--now", "--wait", "--json").stdout)
    assert done["anchors"][0]["state"] == "final"
    after = json.loads(_run(env, "status", "--json").stdout)
    assert after["last_anchored"]["tree_size"] == head["tree_size"]
    assert after["last_anchored"]["tx_hash"].startswith("0x")
    # Nothing left to anchor; and without a running serve there is no dev chain to show.
    assert json.loads(_run(env, "anchor", "--now", "--json").stdout)["steps"] == []
    assert "no dev chain is running" in _run(env, "chain", expect=8).stderr


def test_deploy_to_a_network_then_anchor_there(tmp_path: Path) -> None:
    assert "TRACEMARK_CHAIN_RPC_URL" in _run(_env(tmp_path), "deploy", expect=8).stderr
    with DevChain() as network:
        # A "real network": a fresh chain burns a nonce first, so the contract lands
        # elsewhere than the dev default and must be configured.
        network.rpc("anvil_setNonce", "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x5")
        env = _env(
            tmp_path,
            TRACEMARK_CHAIN_RPC_URL=network.rpc_url,
            TRACEMARK_ANCHOR_KEY=ANVIL_ACCOUNT_0_KEY,
        )
        deployed = json.loads(_run(env, "deploy", "--json").stdout)
        assert deployed["chain_id"] == 31337
        address = deployed["contract_address"]
        assert address != "0x5FbDB2315678afecb367f032d93F642f64180aa3"
        # Without the address the registry refuses the network (no contract at the default).
        assert "does not hold the TracemarkAnchor contract" in _run(env, "chain", expect=8).stderr
        env["TRACEMARK_CONTRACT_ADDRESS"] = address
        info = json.loads(_run(env, "chain", "--json").stdout)
        assert (info["contract_address"], info["last_anchored_size"]) == (address, 0)
        _run(env, "keys", "new")
        (tmp_path / "work").write_bytes(b"a work")
        _run(env, "register", str(tmp_path / "work"), "--product", "art", "--new-product")
        head = json.loads(_run(env, "log", "sequence", "--json").stdout)
        assert head["tree_size"] == 2  # the registration and the head's state commitment
        network.rpc("evm_setIntervalMining", 1)
        _run(env, "anchor", "--now", "--wait")
        anchored = json.loads(_run(env, "chain", "--json").stdout)["last_anchored_size"]
        assert anchored == head["tree_size"]
