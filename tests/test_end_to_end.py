"""The whole product on the real stack: `tracemark serve` (uvicorn on a loopback port, the
sequencer, the anchoring worker) on anvil, over SQLite and PostgreSQL.

A creator bulk-registers codes through the CLI over HTTP; they get anchored; platform A
verifies one and records its sale to an agent; platform B cannot move it without A's consent,
and the agent's sale on platform B succeeds with A's one-time hand-over authorization; a
third sale by a seller who is not the holder gets 409; the final sale consumes the code; the
royalty statement shows the splits; the proof bundle verifies offline against anvil with the
server stopped, under the registry's trust root pinned beforehand (``tracemark trust add URL``,
checked against its fingerprint).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from anchoring.chain import Chain
from anchoring.devchain import DevChain, free_port
from anchoring.runtime import ANVIL_ACCOUNT_0_KEY
from api.cli.verify import EXIT_NOT_FINAL
from registry.creator import CreatorKeys
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import CodeFingerprinter
from tests import polling
from verifier.bundlereport import COMPLETENESS_NOT_PROVEN
from verifier.client import NotAuthorized, ProblemConflict, TracemarkClient, verify_receipt
from verifier.trust import TrustPolicy

TRACEMARK = str(Path(sys.executable).parent / "tracemark")
STUDIO = "0x" + "5a" * 20
POLICY = {"recipients": [{"address": STUDIO, "bps": 800, "label": "studio"}]}
CODES = 300


@pytest.fixture
def anvil() -> Iterator[DevChain]:
    """A chain that outlives the server (the bundle is checked after it stops)."""
    with DevChain(block_time=1) as chain:
        operator = Account.from_key(ANVIL_ACCOUNT_0_KEY)
        address = Chain.connect(chain.rpc_url, DEV_DOMAIN.verifying_contract).deploy(operator)
        assert address == DEV_DOMAIN.verifying_contract
        yield chain


def wait_until(what: str, check: Any) -> Any:
    return polling.wait_until(what, check, timeout=90.0, every=0.5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_codes_from_creator_to_player(
    database: str, request: pytest.FixtureRequest, tmp_path: Path, anvil: DevChain
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TRACEMARK_DATA_DIR": str(tmp_path / "server"),
        "TRACEMARK_KEYS_DIR": str(tmp_path / "creator-keys"),
        "TRACEMARK_API_PORT": str(port),
        "TRACEMARK_CHAIN_RPC_URL": anvil.rpc_url,
        "TRACEMARK_ANCHOR_KEY": ANVIL_ACCOUNT_0_KEY,
        "TRACEMARK_SEQUENCER_INTERVAL": "0.2",
        "TRACEMARK_ANCHOR_MAX_AGE": "0",
        "TRACEMARK_ANCHOR_CONFIRMATIONS": "2",
        # The verifier's pinned trust roots: this test's own, never the user's.
        "TRACEMARK_TRUST_DIR": str(tmp_path / "trust"),
    }
    if database == "postgres":
        env["TRACEMARK_DATABASE_URL"] = request.getfixturevalue("postgres_url")

    def tracemark(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [TRACEMARK, *args], env=env, capture_output=True, text=True, timeout=300
        )
        if check:
            assert done.returncode == 0, f"tracemark {args[0]}: {done.stderr}"
        return done

    server_log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([TRACEMARK, "serve"], env=env, stderr=server_log)
    try:
        wait_until("the API", lambda: _answers(f"{url}/livez"))

        # -- the creator, over HTTP: codes never leave this machine ---------------------------
        creator_env = {k: v for k, v in env.items() if k != "TRACEMARK_DATABASE_URL"}
        creator_env["TRACEMARK_DATA_DIR"] = str(tmp_path / "creator-side")
        creator_env["TRACEMARK_API_URL"] = url

        def creator(*args: str) -> str:
            done = subprocess.run(
                [TRACEMARK, *args], env=creator_env, capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, f"tracemark {args}: {done.stderr}"
            return done.stdout

        creator("keys", "new")
        creator("keys", "enroll")
        codes = [f"GAME-{i:06d}-{os.urandom(2).hex().upper()}" for i in range(CODES)]
        (tmp_path / "codes.txt").write_text("\n".join(codes) + "\n")
        (tmp_path / "policy.json").write_text(json.dumps(POLICY))
        summary = json.loads(
            creator(
                "register-codes",
                str(tmp_path / "codes.txt"),
                "--product",
                "30-day-card",
                "--use",
                "single",
                "--new-product",
                "--royalty",
                str(tmp_path / "policy.json"),
                "--json",
            )
        )
        assert summary["registered"] == CODES
        keys = CreatorKeys.load(tmp_path / "creator-keys")
        code, fingerprint = (
            codes[17],
            CodeFingerprinter(keys.require_code_key()).fingerprint(codes[17]),
        )

        # -- the operator issues platform keys -------------------------------------------------
        def api_key(platform: str, *, scope: str = "") -> str:
            scopes = ["--scope", scope] if scope else ["--scope", "verify", "--scope", "transfer"]
            made = tracemark("api-keys", "create", "--platform", platform, *scopes, "--json")
            return str(json.loads(made.stdout)["key"])

        a = TracemarkClient(url, api_key=api_key("cardhub"))
        b = TracemarkClient(url, api_key=api_key("keyshop"))

        # -- platform A verifies, once anchored ------------------------------------------------
        answer = wait_until(
            "the codes anchored",
            lambda: (
                (v := a.verify("code", code=code, creator=keys.address)).verdict == "authentic"
                and v
            ),
        )
        assert answer.fingerprint == "0x" + fingerprint.hex()
        assert answer.anchor is not None and answer.anchor.chain_id == DEV_DOMAIN.chain_id

        good = {"good_type": "code", "fingerprint": fingerprint}
        to_agent = a.transfer(
            **good,
            seller={"creator": True},
            buyer={"reference": "agent-7"},
            price=1_000,
            currency="EUR",
            idempotency_key="a-1",
        )
        # Checked under the registry's trust root, whose key is the registry's address, known
        # to the platform out of band.
        registry_address = json.loads(tracemark("init", "--json").stdout)["registry_address"]
        root = a.trust_root()
        assert _checksum("0x" + root.signing_keys[-1].address.hex()) == registry_address
        assert (root.chain_id, root.contract_address) == (
            DEV_DOMAIN.chain_id,
            DEV_DOMAIN.verifying_contract,
        )
        assert verify_receipt(to_agent, TrustPolicy.of(root)) == root
        assert to_agent.royalties == []  # the creator sold it: no royalty
        # Platform B buys from A's agent: without A's consent it cannot move A's good (403);
        # with A's one-time hand-over authorization it can, once.
        with pytest.raises(NotAuthorized) as refused:
            b.transfer(
                **good,
                seller={"platform": "cardhub", "reference": "agent-7"},
                buyer={"reference": "reseller-9"},
                price=1,
                currency="EUR",
            )
        assert refused.value.status == 403 and refused.value.code == "not-the-holder"
        consent = a.authorize_handover(
            good_type="code", fingerprint=fingerprint, reference="agent-7", buyer_platform="keyshop"
        )
        resale = b.transfer(
            **good,
            seller={"platform": "cardhub"},
            buyer={"reference": "reseller-9"},
            price=2_000,
            currency="EUR",
            authorization=consent.authorization,
        )
        assert [r.amount for r in resale.royalties] == [str(2_000 * 800 // 10_000)]
        with pytest.raises(ProblemConflict) as double:
            a.transfer(
                **good,
                seller={"platform": "cardhub", "reference": "agent-7"},
                buyer={"reference": "victim"},
                price=1_500,
                currency="EUR",
            )
        assert double.value.status == 409
        # The risk worker (its own process) raises the refused double sale as a signal, which
        # an auditor lists and every verify answer carries.
        auditor = TracemarkClient(url, api_key=api_key("auditco", scope="audit"))
        # keyshop's refused claim (403) alone raises the signal too: a refresh between it and
        # cardhub's double sale shows keyshop only, so wait for the refresh that has both.
        good_subject = ("code", fingerprint)
        raised = wait_until(
            "the risk worker to raise the double sale",
            lambda: [
                s
                for s in auditor.signals(code="sold-by-non-holder", good=good_subject).items
                if "cardhub" in s.platforms
            ],
        )
        assert raised[0].platforms == ["cardhub", "keyshop"]
        risk = a.verify("code", fingerprint=fingerprint).risk
        assert "sold-by-non-holder" in [s.code for s in risk.signals] and risk.score >= 0.7
        auditor.close()
        final = b.transfer(
            **good,
            seller={"platform": "keyshop", "reference": "reseller-9"},
            buyer={"reference": "player-1"},
            price=2_500,
            currency="EUR",
            final=True,
        )
        assert final.final
        assert a.verify("code", fingerprint=fingerprint).verdict == "consumed"

        # -- the creator's royalty statement ---------------------------------------------------
        session = TracemarkClient(url)
        session.sign_in(keys.account)
        statement = session.royalty_statement(period="all")
        assert [(t.recipient, t.amount) for t in statement.totals] == [
            (_checksum(STUDIO), str(2_000 * 800 // 10_000 + 2_500 * 800 // 10_000))
        ]

        # -- the proof bundle, once its head (with the transfers) is anchored ------------------
        bundle = wait_until(
            "a bundle under an anchored head",
            lambda: (
                (bb := a.proof_bundle("code", fingerprint)).anchor is not None
                and bb.pending_entries == 0
                and bb
            ),
        )
        (tmp_path / "bundle.json").write_text(bundle.to_json())
        # The verifier pins the registry's trust root from its URL, checked against the
        # fingerprint (compared out of band) before it trusts it.
        pinned = tracemark("trust", "add", url, "--fingerprint", root.fingerprint(), "--json")
        assert json.loads(pinned.stdout)["status"] == "added"
        for client in (a, b, session):
            client.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
            server_log.close()
    assert server.returncode == 0, (tmp_path / "serve.log").read_text()[-3000:]

    # -- with the server stopped: the bundle against the chain alone ---------------------------
    # (The trust root asks 2 confirmations; anvil mines a block a second: wait for them.)
    def verify_bundle() -> subprocess.CompletedProcess[str] | None:
        done = tracemark(
            "verify", str(tmp_path / "bundle.json"), "--rpc", anvil.rpc_url, check=False
        )
        return None if done.returncode == EXIT_NOT_FINAL else done

    checked = wait_until("the anchor to be final", verify_bundle)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("OK: "), checked.stdout + checked.stderr
    assert "consumed" in checked.stdout and "anchored on chain 31337" in checked.stdout
    assert f"trust root {root.label()}" in checked.stdout
    # The bundle carries the state map's proof (issue 14): its history is proven complete.
    assert "complete as of head" in checked.stdout
    assert COMPLETENESS_NOT_PROVEN not in checked.stdout
    # The codes never reached the server: not in its database, not in its log.
    server_files = (
        b"".join(p.read_bytes() for p in (tmp_path / "server").rglob("*") if p.is_file())
        + (tmp_path / "serve.log").read_bytes()
    )
    assert not any(c.encode() in server_files for c in codes[:50])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _checksum(address: str) -> str:
    from registry.eip712 import checksum_address

    return checksum_address(bytes.fromhex(address[2:]))
