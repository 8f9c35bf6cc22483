"""The worker SIGKILLed at each step boundary and restarted (THREATS 27, 49): every head ends
up anchored exactly once, with one transaction, and no entry is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.runtime import ANVIL_ACCOUNT_0_KEY
from anchoring.worker import FAULT_POINT_ENV

TRACEMARK = str(Path(sys.executable).parent / "tracemark")
pytestmark = pytest.mark.slow


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TRACEMARK, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("point", ["sealed", "signed", "sent", "mined"])
def test_sigkill_at_each_step_boundary_then_restart(tmp_path: Path, point: str) -> None:
    operator = Account.from_key(ANVIL_ACCOUNT_0_KEY)
    with DevChain() as network:
        address = Chain.connect(network.rpc_url, "0x" + "00" * 20).deploy(operator)
        chain = Chain.connect(network.rpc_url, address)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TRACEMARK_")},
            "TRACEMARK_DATA_DIR": str(tmp_path / "data"),
            "TRACEMARK_CHAIN_RPC_URL": network.rpc_url,
            "TRACEMARK_ANCHOR_KEY": ANVIL_ACCOUNT_0_KEY,
            "TRACEMARK_CONTRACT_ADDRESS": address,
            "TRACEMARK_ANCHOR_CONFIRMATIONS": "1",
        }
        assert _run(env, "keys", "new").returncode == 0
        (tmp_path / "work").write_bytes(b"a work")
        _run(env, "register", str(tmp_path / "work"), "--product", "art", "--new-product")
        sequenced = _run(env, "log", "sequence", "--json")
        assert sequenced.returncode == 0, sequenced.stderr
        head_size = json.loads(sequenced.stdout)["tree_size"]
        assert head_size == 2  # the registration, then the state commitment every head ends with
        nonce_before = chain.nonce(operator.address, "latest")

        crashed = _run({**env, FAULT_POINT_ENV: point}, "anchor", "--now", "--wait")
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr

        resumed = _run(env, "anchor", "--now", "--wait", "--json")
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)["anchors"][0]["state"] == "final"
        status = json.loads(_run(env, "status", "--json").stdout)
        assert [a["state"] for a in status["recent_anchors"]] == ["final"]
        assert chain.last_anchored()[0] == status["tree_size"] == head_size
        assert chain.nonce(operator.address, "latest") == nonce_before + 1  # one transaction
        check = _run(env, "log", "check", "--json")
        assert json.loads(check.stdout)["ok"] is True
