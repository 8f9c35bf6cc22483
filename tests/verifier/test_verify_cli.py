"""``tracemark verify BUNDLE.json [--rpc URL] [--trust FILE] [--json]``: one line, and an exit
code that says whether the bundle is evidence against the chain (0), not yet (12, 16), false
(11), or from a registry no pinned trust root names (15)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from anchoring.devchain import free_port
from api.cli import app
from api.cli.verify import (
    EXIT_BUNDLE_INVALID,
    EXIT_NOT_ANCHORED,
    EXIT_NOT_FINAL,
    EXIT_UNTRUSTED,
)
from readmodels.bundles import build_bundle
from registry.fingerprints import GoodType
from registry.service import Registry
from tests.trust import trust_root_of
from tests.verifier.conftest import Story, World
from verifier.bundlereport import COMPLETENESS_NOT_PROVEN
from verifier.trust import TrustRoot

pytestmark = pytest.mark.slow


class Verify:
    """Runs ``tracemark verify`` in-process on bundle files written to a temporary dir; the
    pinned trust roots live in a directory of that dir (``TRACEMARK_TRUST_DIR``), never the
    user's own."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.runner = CliRunner()
        self.env: dict[str, str | None] = {
            "TRACEMARK_DATA_DIR": str(tmp_path / "data"),
            "TRACEMARK_TRUST_DIR": str(tmp_path / "trust"),
            "TRACEMARK_VERIFY_RPC_URL": None,
            "COLUMNS": None,
        }

    def write(self, document: dict[str, Any], name: str = "bundle.json") -> Path:
        path = self.tmp_path / name
        path.write_text(json.dumps(document, indent=2))
        return path

    def trust_file(self, root: TrustRoot, name: str = "trust-root.json") -> Path:
        path = self.tmp_path / name
        path.write_text(root.to_json())
        return path

    def pin(self, registry: Registry) -> TrustRoot:
        """Pin the registry's trust root as a user does: ``tracemark trust add FILE``, checked
        against its fingerprint."""
        root = trust_root_of(registry)
        args = ["trust", "add", str(self.trust_file(root)), "--fingerprint", root.fingerprint()]
        result = self.runner.invoke(app, args, env=self.env)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        assert result.stdout.startswith(f"added: {root.fingerprint()}")
        return root

    def __call__(self, *args: str | Path, expect: int, env: dict[str, str] | None = None) -> Result:
        result = self.runner.invoke(
            app, ["verify", *map(str, args)], env={**self.env, **(env or {})}
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == expect, (
            f"exit {result.exit_code}, not {expect}\n{result.stdout}\n{result.stderr}"
        )
        return result


@pytest.fixture
def verify(tmp_path: Path) -> Verify:
    return Verify(tmp_path)


def _document(world: World, good_type: GoodType, fingerprint: bytes) -> dict[str, Any]:
    return dict(json.loads(build_bundle(world.registry, good_type, fingerprint).to_json()))


def _one_line(text: str, prefix: str) -> str:
    assert text.startswith(prefix) and text.count("\n") == 1, text
    return text


def test_a_good_bundle_is_ok_against_the_chain_and_not_yet_without_one(
    story: Story, verify: Verify
) -> None:
    world = story.world
    rpc = world.devchain.rpc_url
    path = verify.write(_document(world, GoodType.FILE, story.revoked_file))
    root = verify.pin(world.registry)

    done = verify(path, "--rpc", rpc, expect=0)
    line = _one_line(done.stdout, "OK: ")
    assert done.stderr == ""
    assert f"registered by {world.creator.address} at leaf 6, revoked by" in line
    assert "anchored on chain 31337 in contract 0x5FbDB2315678afecb367f032d93F642f64180aa3" in line
    assert "confirmations; final by 1 confirmation)" in line
    assert line.rstrip().endswith(
        f"; trust root {root.label()}; complete as of head 23: the state map committed at "
        "leaf 22 holds 2 entries of this good, the last at leaf 12"
    )
    # The RPC from the environment, and a trust root given for this run that matches.
    trust = ("--trust", str(verify.trust_file(root, "given.json")))
    verify(path, *trust, expect=0, env={"TRACEMARK_VERIFY_RPC_URL": rpc})
    # A trust root asking a depth the anchor has not reached yet: not final (exit 16).
    deep = verify.trust_file(trust_root_of(world.registry, confirmations=1000), "deep.json")
    waiting = verify(path, "--rpc", rpc, "--trust", deep, expect=EXIT_NOT_FINAL)
    line = _one_line(waiting.stdout, "NOT FINAL: ")
    assert "but not final yet: the trust root asks 1000 confirmations" in line

    offline = verify(path, expect=EXIT_NOT_ANCHORED)
    line = _one_line(offline.stdout, "OK: ")
    assert "chain not checked (the bundle says head 23 is final on chain 31337" in line
    assert line.rstrip().endswith("(pass --rpc URL to check it)")

    report = json.loads(verify(path, "--rpc", rpc, "--json", expect=0).stdout)
    assert report["status"] == "verified" and "failure" not in report
    assert (report["trust_root"], report["trust_fingerprint"]) == (
        root.label(),
        root.fingerprint(),
    )
    assert (report["complete"], report["completeness"]) == (True, "complete as of head 23")
    assert report["state"] == {
        "tree_size": 23,
        "commitment_leaf_index": 22,
        "map_root": report["state"]["map_root"],
        "entry_count": 2,
        "last_leaf_index": 12,
    }
    assert [e["kind"] for e in report["entries"]] == ["REGISTER", "REVOKE"]
    assert report["entries"][1]["reason"] == "pirated copy"
    assert report["chain"]["anchored"] is True and report["chain"]["confirmations"] >= 1


def test_a_batch_registered_code_verifies_from_the_file(story: Story, verify: Verify) -> None:
    path = verify.write(_document(story.world, GoodType.CODE, story.codes[4]))
    verify.pin(story.world.registry)
    line = verify(path, "--rpc", story.world.devchain.rpc_url, expect=0).stdout
    assert "at leaf 18 (item 5 of a batch of 5)" in _one_line(line, "OK: ")


def test_a_false_bundle_fails_with_its_reason(story: Story, verify: Verify) -> None:
    world = story.world
    rpc = world.devchain.rpc_url
    root = verify.pin(world.registry)
    document = _document(world, GoodType.FILE, story.revoked_file)
    document["entry"]["inclusion_proof"][1] = "0x" + "00" * 32
    path = verify.write(document)
    failed = verify(path, "--rpc", rpc, expect=EXIT_BUNDLE_INVALID)
    assert failed.stdout == ""
    assert _one_line(failed.stderr, "FAIL: leaf 6 is not in head 23: inclusion proof")
    # Offline too: a false bundle is false with or without a chain.
    verify(path, expect=EXIT_BUNDLE_INVALID)
    as_json = verify(path, "--json", expect=EXIT_BUNDLE_INVALID)
    failure = json.loads(as_json.stdout)
    assert (failure["status"], failure["failed_step"]) == ("failed", "inclusion")
    assert failure["failure"].startswith("leaf 6 is not in head 23: inclusion proof")
    # A head that is not signed by the key the trust root given names.
    good = verify.write(_document(world, GoodType.FILE, story.plain_file), "good.json")
    other = "0x" + "55" * 20
    key = {"address": other, "from_size": 1, "until_size": None, "handover_signature": None}
    other_key = TrustRoot.model_validate({**root.document(), "signing_keys": [key]})
    refused = verify(
        good, "--trust", verify.trust_file(other_key, "other-key.json"), expect=EXIT_BUNDLE_INVALID
    ).stderr
    assert refused.startswith(
        f"FAIL: head 23 is signed by {world.registry.address}, but trust root "
        f"{other_key.label()} names {other}"
    )
    # A trust root for another contract does not name the head's registry: untrusted.
    other_contract = TrustRoot.model_validate({**root.document(), "contract": other})
    given = verify.trust_file(other_contract, "other-contract.json")
    untrusted = verify(good, "--rpc", rpc, "--trust", given, expect=EXIT_UNTRUSTED)
    assert untrusted.stdout == ""
    refused = _one_line(untrusted.stderr, "UNTRUSTED: ")
    assert "names chain 31337 and contract 0x5FbDB2315678afecb367f032d93F642f64180aa3" in refused
    assert f"(pinned: {other_contract.label()}: chain 31337, contract " in refused
    # Nothing pinned at all: untrusted, with or without a chain.
    nothing = {"TRACEMARK_TRUST_DIR": str(verify.tmp_path / "empty-trust")}
    verify(good, expect=EXIT_UNTRUSTED, env=nothing)
    as_json = verify(good, "--rpc", rpc, "--json", expect=EXIT_UNTRUSTED, env=nothing)
    assert json.loads(as_json.stdout)["status"] == "untrusted"
    assert "(no trust root is pinned)" in as_json.stderr


def test_an_unanchored_head_is_not_yet_evidence(world: World, verify: Verify) -> None:
    fingerprint = world.register_file()
    path = verify.write(_document(world, GoodType.FILE, fingerprint))
    verify.pin(world.registry)
    line = verify(path, "--rpc", world.devchain.rpc_url, expect=EXIT_NOT_ANCHORED).stdout
    # Its entry at leaf 0 and the head's state commitment at leaf 1.
    assert "head 2 is not anchored on chain 31337" in _one_line(line, "NOT ANCHORED: ")
    world.anchor()
    verify(path, "--rpc", world.devchain.rpc_url, expect=0)


def test_unreadable_bundles_and_unreachable_nodes_have_their_own_exit_codes(
    story: Story, verify: Verify
) -> None:
    assert verify(verify.tmp_path / "missing.json", expect=3).stderr.startswith("error: ")
    garbage = verify.tmp_path / "garbage.json"
    garbage.write_text('{"format": "tracemark-bundle/v0"}')
    assert "unknown evidence format" in verify(garbage, expect=3).stderr
    path = verify.write(_document(story.world, GoodType.FILE, story.plain_file))
    verify.pin(story.world.registry)
    missing = verify(path, "--trust", "nobody", expect=3).stderr
    assert missing.startswith("error: cannot read the trust root nobody")
    assert "not a trust root" in verify(path, "--trust", garbage, expect=3).stderr
    assert "--rpc must be" in verify(path, "--rpc", "127.0.0.1:8545", expect=3).stderr
    down = f"http://127.0.0.1:{free_port()}"
    assert "did not answer" in verify(path, "--rpc", down, expect=10).stderr


def test_a_stripped_bundle_without_a_state_proof_says_its_completeness_is_not_proven(
    story: Story, verify: Verify
) -> None:
    """Issue 11, item 6: a bundle that carries no state proof (a v2 bundle, as made before
    issue 14) with the REVOKE entry removed verifies (an RFC 9162 log proves what is in it,
    never what is not), and every verdict line says so. (With its state, v3, it is refused:
    tests/verifier/test_completeness.py.)"""
    world = story.world
    rpc = world.devchain.rpc_url
    document = _document(world, GoodType.FILE, story.revoked_file)
    assert [e["kind"] for e in document["later_entries"]] == ["REVOKE"]
    document["later_entries"] = []
    del document["state"], document["checkpoint"]
    document["format"] = "tracemark-bundle/v2"
    path = verify.write(document, "stripped.json")
    verify.pin(world.registry)
    line = _one_line(verify(path, "--rpc", rpc, expect=0).stdout, "OK: ")
    assert "revoked" not in line.split(";")[0]  # the revocation is gone from what is shown
    assert COMPLETENESS_NOT_PROVEN in line
    offline = _one_line(verify(path, expect=EXIT_NOT_ANCHORED).stdout, "OK: ")
    assert COMPLETENESS_NOT_PROVEN in offline
    report = json.loads(verify(path, "--rpc", rpc, "--json", expect=0).stdout)
    assert (report["complete"], report["completeness"]) == (False, COMPLETENESS_NOT_PROVEN)
    assert COMPLETENESS_NOT_PROVEN in report["summary"]
    # Not final yet says it too.
    deep = verify.trust_file(trust_root_of(world.registry, confirmations=1000), "deep.json")
    waiting = _one_line(
        verify(path, "--rpc", rpc, "--trust", deep, expect=EXIT_NOT_FINAL).stdout, "NOT FINAL: "
    )
    assert COMPLETENESS_NOT_PROVEN in waiting
