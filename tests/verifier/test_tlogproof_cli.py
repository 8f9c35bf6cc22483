"""``tracemark log proof --tlog-proof`` writes a good's registration as a
``c2sp.org/tlog-proof@v1`` file, and ``tracemark verify FILE`` recognises one by its first line
and checks it like a native bundle: the same exit codes (0, 11, 12, 15) and verdicts, saying it
was a tlog-proof and that completeness is not proven. Against a real anvil for the chain."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from api.cli import app
from api.cli.verify import EXIT_BUNDLE_INVALID, EXIT_NOT_ANCHORED, EXIT_UNTRUSTED
from readmodels.tlogproofs import build_good_tlog_proof, build_receipt_tlog_proof
from registry.fingerprints import GoodType
from registry.service import Registry
from registry.settings import load_settings
from registry.transfers import Party, TransferRequest
from tests.trust import trust_root_of
from tests.verifier.conftest import World
from verifier.bundlereport import COMPLETENESS_NOT_PROVEN
from verifier.tlogproof import TlogProof
from verifier.trust import TrustRoot

AMBIENT = (
    "TRACEMARK_API_URL",
    "TRACEMARK_DATABASE_URL",
    "TRACEMARK_KEYS_DIR",
    "TRACEMARK_MASTER_KEY",
    "TRACEMARK_CHAIN_ID",
    "TRACEMARK_CONTRACT_ADDRESS",
    "TRACEMARK_VERIFY_RPC_URL",
    "TRACEMARK_LOG_ORIGIN",
    "TRACEMARK_WITNESS_POLICY",
    "COLUMNS",
)


class Cli:
    """``tracemark`` in process on one data dir and one trust dir under ``tmp_path``."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.runner = CliRunner()
        self.env: dict[str, str | None] = dict.fromkeys(AMBIENT)
        self.env["TRACEMARK_DATA_DIR"] = str(tmp_path / "data")
        self.env["TRACEMARK_TRUST_DIR"] = str(tmp_path / "trust")

    def __call__(self, *args: str | Path, expect: int = 0) -> Result:
        result = self.runner.invoke(app, [str(a) for a in args], env=self.env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr)
        return result

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.tmp_path / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def trust_file(self, root: TrustRoot) -> Path:
        return self.file("trust-root.json", root.to_json())


def test_log_proof_writes_a_tlog_proof_that_verify_reads(tmp_path: Path) -> None:
    """No chain: the file ``log proof --tlog-proof`` writes is the spec's text, and
    ``verify`` checks everything but the chain under the registry's trust root (exit 12)."""
    cli = Cli(tmp_path)
    cli("init")
    cli("keys", "new")
    song = cli.file("song.flac", secrets.token_bytes(3000))
    [entry] = json.loads(cli("register", song, "--json").stdout)["entries"]
    cli("log", "sequence")
    written = cli("log", "proof", "--fingerprint", entry["fingerprint"], "--tlog-proof").stdout
    assert written.startswith("c2sp.org/tlog-proof@v1\nextra ")
    proof = TlogProof.parse(written)
    assert proof.to_bytes().decode() == written
    registry = Registry.open(load_settings(data_dir=tmp_path / "data"))
    assert proof == build_good_tlog_proof(
        registry, GoodType.FILE, bytes.fromhex(entry["fingerprint"][2:])
    )
    path = cli.file("song.tlog-proof", written)
    trust = cli.trust_file(trust_root_of(registry))

    offline = cli("verify", path, "--trust", trust, expect=EXIT_NOT_ANCHORED).stdout
    assert offline.startswith(f"OK: tlog-proof: file {entry['fingerprint']} registered by ")
    assert "chain not checked" in offline and offline.rstrip().endswith(
        "(pass --rpc URL to check it)"
    )
    assert COMPLETENESS_NOT_PROVEN in offline
    # Refusals on the command line: --from and --json do not go with it, nor a non-entry leaf.
    head = json.loads(cli("log", "head", "--json").stdout)
    # --size: under that head's checkpoint, even once the log has grown.
    cli("register", cli.file("other.flac", secrets.token_bytes(3000)))
    cli("log", "sequence")
    args = ("log", "proof", "--fingerprint", entry["fingerprint"], "--tlog-proof")
    older = TlogProof.parse(cli(*args, "--size", str(head["tree_size"])).stdout)
    assert older == proof
    newer = TlogProof.parse(cli(*args).stdout)
    assert newer.checkpoint != proof.checkpoint and newer.index == proof.index
    cli("log", "proof", "--index", str(head["tree_size"] - 1), "--tlog-proof", expect=3)
    cli("log", "proof", "--index", "0", "--from", "1", "--tlog-proof", expect=3)


@pytest.mark.slow
def test_verify_a_tlog_proof_against_the_chain(world: World, tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    fingerprint = world.register_file()
    receipt = world.registry.transfer(
        TransferRequest(
            platform="keyshop",
            good_type=GoodType.FILE,
            fingerprint=fingerprint,
            seller=Party(None, None),
            buyer=Party("keyshop", "buyer-1"),
            price=100,
            currency="EUR",
            final=False,
            idempotency_key=None,
        )
    )
    world.anchor()
    rpc = world.devchain.rpc_url
    root = trust_root_of(world.registry)
    registration = build_good_tlog_proof(world.registry, GoodType.FILE, fingerprint)
    good = cli.file("good.tlog-proof", registration.to_bytes())
    # Not pinned yet: untrusted (15), by the checkpoint's origin, with or without the chain.
    untrusted = cli("verify", good, "--rpc", rpc, expect=EXIT_UNTRUSTED)
    assert untrusted.stderr.startswith("UNTRUSTED: no pinned trust root names the log ")
    pinned = cli("trust", "add", cli.trust_file(root), "--fingerprint", root.fingerprint())
    assert pinned.stdout.startswith("added: ")

    done = cli("verify", good, "--rpc", rpc)
    line = done.stdout
    assert line.startswith(f"OK: tlog-proof: file 0x{fingerprint.hex()} registered by ")
    assert "checkpoint" in line and "signed by the log (Ed25519, ML-DSA-44)" in line
    assert "anchored on chain 31337" in line and line.rstrip().endswith(COMPLETENESS_NOT_PROVEN)
    report = json.loads(cli("verify", good, "--rpc", rpc, "--json").stdout)
    assert (report["status"], report["evidence_format"], report["complete"]) == (
        "verified",
        "c2sp.org/tlog-proof@v1",
        False,
    )
    assert report["checkpoint"]["log_signatures"] == ["Ed25519", "ML-DSA-44"]

    receipt_proof = build_receipt_tlog_proof(world.registry, receipt.transfer_id)
    sold = cli.file("sold.tlog-proof", receipt_proof.to_bytes())
    line = cli("verify", sold, "--rpc", rpc).stdout
    assert "transferred on keyshop (attested by the registry)" in line

    # One proof line changed: exit 11, the step named.
    forged = TlogProof(
        registration.index,
        (bytes(32), *registration.inclusion_proof[1:]),
        registration.checkpoint,
        registration.extra,
    )
    bad = cli.file("bad.tlog-proof", forged.to_bytes())
    failed = cli("verify", bad, "--rpc", rpc, expect=EXIT_BUNDLE_INVALID)
    assert failed.stderr.startswith("FAIL: leaf ") and "is not in checkpoint" in failed.stderr
    as_json = json.loads(cli("verify", bad, "--json", expect=EXIT_BUNDLE_INVALID).stdout)
    assert as_json["failed_step"] == "inclusion"
    # A file that says it is a tlog-proof but is not one: a clear one-line error.
    broken = cli.file("broken.tlog-proof", "c2sp.org/tlog-proof@v1\nindex 01\n\nx\n")
    error = cli("verify", broken, expect=3).stderr
    assert "broken.tlog-proof" in error and "leading zeros" in error
