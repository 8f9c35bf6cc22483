"""``tracemark verify BUNDLE.json [--rpc URL] [--json]``: one line, and an exit code that says
whether the bundle is evidence against the chain (0), not yet (12), or false (11)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from anchoring.devchain import free_port
from api.cli import app
from api.cli.verify import EXIT_BUNDLE_INVALID, EXIT_NOT_ANCHORED
from registry.fingerprints import GoodType
from tests.verifier.conftest import Story, World
from verifier.bundle import build_bundle

pytestmark = pytest.mark.slow


class Verify:
    """Runs ``tracemark verify`` in-process on bundle files written to a temporary dir."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.runner = CliRunner()
        self.env: dict[str, str | None] = {
            "TRACEMARK_DATA_DIR": str(tmp_path / "data"),
            "TRACEMARK_VERIFY_RPC_URL": None,
            "COLUMNS": None,
        }

    def write(self, document: dict[str, Any], name: str = "bundle.json") -> Path:
        path = self.tmp_path / name
        path.write_text(json.dumps(document, indent=2))
        return path

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

    done = verify(path, "--rpc", rpc, expect=0)
    line = _one_line(done.stdout, "OK: ")
    assert done.stderr == ""
    assert f"registered by {world.creator.address} at leaf 3, revoked by" in line
    assert "anchored on chain 31337 in contract 0x5FbDB2315678afecb367f032d93F642f64180aa3" in line
    assert "confirmations)" in line
    # The RPC from the environment, and pins that match.
    pinned = ("--signer", world.registry.address, "--contract", world.chain.address)
    verify(path, *pinned, expect=0, env={"TRACEMARK_VERIFY_RPC_URL": rpc})

    offline = verify(path, expect=EXIT_NOT_ANCHORED)
    line = _one_line(offline.stdout, "OK: ")
    assert "chain not checked (the bundle says head 14 is final on chain 31337" in line
    assert line.rstrip().endswith("(pass --rpc URL to check it)")

    report = json.loads(verify(path, "--rpc", rpc, "--json", expect=0).stdout)
    assert report["status"] == "verified" and report["failure"] is None
    assert [e["kind"] for e in report["entries"]] == ["REGISTER", "REVOKE"]
    assert report["entries"][1]["reason"] == "pirated copy"
    assert report["chain"]["anchored"] is True and report["chain"]["confirmations"] >= 1


def test_a_batch_registered_code_verifies_from_the_file(story: Story, verify: Verify) -> None:
    path = verify.write(_document(story.world, GoodType.CODE, story.codes[4]))
    line = verify(path, "--rpc", story.world.devchain.rpc_url, expect=0).stdout
    assert "at leaf 11 (item 5 of a batch of 5)" in _one_line(line, "OK: ")


def test_a_false_bundle_fails_with_its_reason(story: Story, verify: Verify) -> None:
    world = story.world
    rpc = world.devchain.rpc_url
    document = _document(world, GoodType.FILE, story.revoked_file)
    document["entry"]["inclusion_proof"][1] = "0x" + "00" * 32
    path = verify.write(document)
    failed = verify(path, "--rpc", rpc, expect=EXIT_BUNDLE_INVALID)
    assert failed.stdout == ""
    assert _one_line(failed.stderr, "FAIL: leaf 3 is not in head 14: inclusion proof")
    # Offline too: a false bundle is false with or without a chain.
    verify(path, expect=EXIT_BUNDLE_INVALID)
    as_json = verify(path, "--json", expect=EXIT_BUNDLE_INVALID)
    assert json.loads(as_json.stdout)["failed_step"] == "inclusion"
    # A head that is not the registry the caller trusts.
    good = verify.write(_document(world, GoodType.FILE, story.plain_file), "good.json")
    other = "0x" + "55" * 20
    refused = verify(good, "--signer", other, expect=EXIT_BUNDLE_INVALID).stderr
    assert refused.startswith(f"FAIL: head 14 is signed by {world.registry.address}, not by")
    refused = verify(good, "--rpc", rpc, "--contract", other, expect=EXIT_BUNDLE_INVALID).stderr
    assert "was signed for contract 0x5FbDB2315678afecb367f032d93F642f64180aa3" in refused


def test_an_unanchored_head_is_not_yet_evidence(world: World, verify: Verify) -> None:
    fingerprint = world.register_file()
    path = verify.write(_document(world, GoodType.FILE, fingerprint))
    line = verify(path, "--rpc", world.devchain.rpc_url, expect=EXIT_NOT_ANCHORED).stdout
    assert "head 1 is not anchored on chain 31337" in _one_line(line, "OK: ")
    world.anchor()
    verify(path, "--rpc", world.devchain.rpc_url, expect=0)


def test_unreadable_bundles_and_unreachable_nodes_have_their_own_exit_codes(
    story: Story, verify: Verify
) -> None:
    assert verify(verify.tmp_path / "missing.json", expect=3).stderr.startswith("error: ")
    garbage = verify.tmp_path / "garbage.json"
    garbage.write_text('{"format": "tracemark-bundle/v0"}')
    assert "unknown bundle format" in verify(garbage, expect=3).stderr
    path = verify.write(_document(story.world, GoodType.FILE, story.plain_file))
    assert "--signer must be" in verify(path, "--signer", "nobody", expect=3).stderr
    assert "--rpc must be" in verify(path, "--rpc", "127.0.0.1:8545", expect=3).stderr
    down = f"http://127.0.0.1:{free_port()}"
    assert "did not answer" in verify(path, "--rpc", down, expect=10).stderr
