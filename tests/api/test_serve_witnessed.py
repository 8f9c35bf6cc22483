"""`tracemark serve` with TRACEMARK_WITNESS_POLICY, end to end: the real witness (over loopback
HTTP) cosigns the head's checkpoint, ``/tlog/checkpoint`` serves it with the cosignature, and
the head is anchored after that; with the witness gone, the next checkpoint is not published
and ``/readyz`` says why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from anchoring.devchain import free_port
from registry.checkpoint import open_checkpoint
from registry.logkeys import load_log_note_keys
from registry.witnessconfig import init_witness, load_witness_config
from registry.witnesspolicy import parse_policy
from tests.api.test_serve import _serve_until
from tests.witness_server import running_witness

TRACEMARK = str(Path(sys.executable).parent / "tracemark")


@pytest.mark.slow
def test_serve_publishes_and_anchors_only_what_the_witness_cosigned(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = {
        **os.environ,
        "TRACEMARK_API_PORT": str(port),
        "TRACEMARK_DATA_DIR": str(data),
        "TRACEMARK_SEQUENCER_INTERVAL": "0.2",
        "TRACEMARK_ANCHOR_MAX_AGE": "0",
        "TRACEMARK_ANCHOR_CONFIRMATIONS": "2",
    }

    def run(*args: str) -> str:
        return subprocess.run(
            [TRACEMARK, *args], env=env, check=True, capture_output=True, text=True, timeout=60
        ).stdout

    run("init")  # the data dir's log note keys: the witness must know them
    keys = load_log_note_keys(data, f"127.0.0.1:{port}/tlog")
    config = load_witness_config(init_witness(tmp_path / "w1", "witness.test/w1", [keys.vkeys()]))
    run("keys", "new")
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    run("register", str(tmp_path / "a"), "--product", "art", "--new-product")
    served: dict[str, bytes] = {}

    def get(path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            return bytes(reply.read())

    with running_witness(config) as (url, _app):
        policy_file = tmp_path / "witnesses.policy"
        policy_file.write_text(f"witness w1 {config.vkeys()[0]} {url}\nquorum w1\n")
        env["TRACEMARK_WITNESS_POLICY"] = str(policy_file)
        log = _serve_until(
            env,
            "anchor of head 2: mined -> final",
            lambda: served.update(checkpoint=get("/tlog/checkpoint")),
        )
    assert "witnesses: 1 in the policy, quorum 'w1'" in log
    assert "witnessing: checkpoint 2 published, cosigned by all" in log
    # Published before anchored: the worker seals only a witnessed head.
    assert log.index("checkpoint 2 published") < log.index("anchor of head 2: sealed")
    checkpoint, note = open_checkpoint(served["checkpoint"], keys.verifiers(), origin=keys.origin)
    assert checkpoint.size == 2
    assert parse_policy(policy_file.read_text()).check(note) == ("w1",)
    # The witness is gone (its port closed): the next head is signed, not published.
    run("register", str(tmp_path / "b"), "--product", "art")
    answers: dict[str, object] = {}

    def ask() -> None:
        answers["checkpoint"] = get("/tlog/checkpoint")
        try:
            answers["readyz"] = json.loads(get("/readyz"))
        except urllib.error.HTTPError as refused:  # 503: kept, so a failure names the check
            answers["readyz"] = json.loads(refused.read())

    log = _serve_until(env, "ALERT witnessing: checkpoint 4 NOT published", ask)
    assert "w1: unreachable" in log
    still = answers["checkpoint"]
    assert isinstance(still, bytes)
    assert open_checkpoint(still, keys.verifiers(), origin=keys.origin)[0].size == 2
    ready = answers["readyz"]
    assert isinstance(ready, dict) and ready.get("status") == "degraded", ready
    assert any("checkpoint 4 is not published" in alert for alert in ready["alerts"])
    assert "anchor of head 4" not in log
