"""Evidence exports (``tracemark-export/v1``): two goods exported from a registry anchored on a
real anvil, then checked with the file and the chain alone (the registry's database deleted,
no app running); mutation probes that each fail with their own reason, a forked head the
chain never anchored among them; paging a creator's goods; strict parsing."""

from __future__ import annotations

import copy
import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import verifier.exportformat as export_format
from api.cli import app
from api.cli.verify import EXIT_BUNDLE_INVALID, EXIT_NOT_ANCHORED, EXIT_UNTRUSTED
from readmodels.bundles import build_bundle
from readmodels.exports import CSV_COLUMNS, ExportSelection, write_export
from registry.creator import CreatorKeys
from registry.errors import InvalidInput, NotFound
from registry.fingerprints import GoodType
from registry.merkle import hash_leaf
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
from registry.settings import load_settings
from registry.signatures import sign
from registry.transfers import Party, TransferRequest
from tests.conftest import Clock, CreatorFactory
from tests.registry import merkle_reference
from tests.registry.helpers import registration
from tests.trust import trust_root_of
from tests.verifier.conftest import CODES, POLICY_DOCUMENT, World
from verifier.bundle import MalformedBundle
from verifier.bundlereport import COMPLETENESS_NOT_PROVEN
from verifier.errors import BundleInvalid
from verifier.export import check_export
from verifier.exportformat import FORMAT_V2, Export, MalformedExport, parse_evidence
from verifier.trust import TrustPolicy, TrustRoot

Document = dict[str, Any]


@dataclass
class Evidence:
    """An export of two goods: a file sold before the first anchor (head 3) and a code of a
    bulk batch, later revoked in a batch (head 10)."""

    world: World
    file: bytes
    code: bytes
    path: Path
    csv_path: Path
    document: Document
    #: The same export with its head 16 replaced by a fork the registry signed (see below).
    forked: Document


def _flip(node: str) -> str:
    return node[:-1] + ("0" if node[-1] != "0" else "1")


def _fork(world: World, document: Document) -> Document:
    """A split view: the registry's key signs head 16 of a log whose leaf 14 (nobody's in this
    export) differs, and re-proves the code under it. Everything in the file checks out;
    only the chain, which anchored the real head 16, can tell."""
    registry = world.registry
    leaves = [hash_leaf(registry.entry_at(i).leaf_data()) for i in range(16)]
    leaves[14] = hash_leaf(b"a leaf the chain never saw")
    root = merkle_reference.mth(leaves)
    forked = copy.deepcopy(document)
    head = forked["heads"][1]
    assert head["tree_size"] == 16
    message = {"size": 16, "root": root, "timestamp": head["timestamp"]}
    head["root"] = "0x" + root.hex()
    head["signature"] = (
        "0x" + sign("TreeHead", message, registry.domain, registry.account.key).hex()
    )
    good = forked["goods"][1]
    for entry in (good["entry"], *good["later_entries"]):
        path = merkle_reference.path(entry["leaf_index"], leaves)
        entry["inclusion_proof"] = ["0x" + node.hex() for node in path]
    link = forked["consistency"][0]
    link["proof"] = ["0x" + n.hex() for n in merkle_reference.proof(6, leaves)]
    # The log's note keys sign the fork's checkpoint too (issue 15): with no witness policy
    # (quorum none) nothing in the file tells; a witness would have refused to cosign it.
    forked["checkpoints"][1] = registry.checkpoint_signer.sign(16, root).to_bytes().decode()
    return forked


@pytest.fixture
def evidence(world: World, tmp_path: Path) -> Evidence:
    registry = world.registry
    sold = world.register_file(
        policy=RoyaltyPolicy.parse(POLICY_DOCUMENT), metadata={"title": "a work"}
    )  # leaf 0 (every signed head then ends with its state commitment: leaf 1 here)
    agent = Party("cardhub", "agent-7")
    registry.transfer(
        TransferRequest("cardhub", GoodType.FILE, sold, Party(None, None), agent, 1000, "EUR")
    )  # leaf 2
    world.register_file()  # leaf 4
    world.anchor()  # head 6
    codes = world.register_codes(CODES)  # leaves 6..10
    world.revoke_codes(CODES[:1], reason="leaked lot")  # leaf 12
    world.register_file()  # leaf 14
    world.anchor()  # head 16
    selection = ExportSelection(goods=((GoodType.FILE, sold), (GoodType.CODE, codes[0])))
    result = write_export(registry, selection, tmp_path / "out")
    assert (result.goods, result.entries, result.heads) == (2, 4, [6, 16])
    assert result.anchored_heads == [6, 16] and result.next_after is None
    document = json.loads(result.json_path.read_text())
    return Evidence(
        world, sold, codes[0], result.json_path, result.csv_path, document, _fork(world, document)
    )


def stop_the_registry(evidence: Evidence, registry_db: Path) -> None:
    """Nothing of the registry remains but the chain: its database is closed and deleted."""
    evidence.world.registry.engine.dispose()
    for path in registry_db.parent.glob(registry_db.name + "*"):
        path.unlink()
    assert not registry_db.exists()


class Verify:
    """``tracemark verify`` in-process, given ``--trust`` the registry's trust root (a file
    written here); no trust root is pinned (``TRACEMARK_TRUST_DIR`` is an empty directory)."""

    def __init__(self, tmp_path: Path, root: TrustRoot) -> None:
        self.tmp_path = tmp_path
        self.root = root
        self.trust_file = tmp_path / "trust-root.json"
        self.trust_file.write_text(root.to_json())
        self.runner = CliRunner()
        self.env: dict[str, str | None] = {
            "TRACEMARK_DATA_DIR": str(tmp_path / "verifier-data"),
            "TRACEMARK_TRUST_DIR": str(tmp_path / "no-pinned-roots"),
            "TRACEMARK_VERIFY_RPC_URL": None,
            "COLUMNS": None,
        }

    def write(self, document: Document, name: str) -> Path:
        path = self.tmp_path / name
        path.write_text(json.dumps(document))
        return path

    def __call__(self, *args: str | Path, expect: int, trust: Path | None = None) -> Result:
        """Run with ``--trust`` the registry's trust root, or the trust root file ``trust``."""
        trusted = ["--trust", str(trust or self.trust_file)]
        return self.untrusted(*args, *trusted, expect=expect)

    def untrusted(self, *args: str | Path, expect: int) -> Result:
        """Run without ``--trust``: only the (empty) pinned directory."""
        result = self.runner.invoke(app, ["verify", *map(str, args)], env=self.env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr)
        return result


def test_two_goods_verify_against_the_chain_with_the_registry_gone(
    evidence: Evidence, tmp_path: Path
) -> None:
    world = evidence.world
    rpc, contract = world.devchain.rpc_url, world.chain.address
    root = trust_root_of(world.registry)
    stop_the_registry(evidence, tmp_path / "registry.db")
    verify = Verify(tmp_path, root)

    done = verify(evidence.path, "--rpc", rpc, expect=0)
    line = done.stdout
    assert line.startswith("OK: ") and line.count("\n") == 1 and done.stderr == ""
    assert (
        "OK: 2 goods (4 entries: 2 registrations, 1 transfer, 1 revocation) under 2 heads "
        f"(size 6, 16) signed by {world.registry.address}" in line
    )
    assert "heads consistent: one append-only log from size 6 to 16" in line
    assert f"anchored on chain 31337 in contract {contract}: head 6 at block " in line
    assert ", head 16 at block " in line and "confirmations)" in line
    assert "the last head is final by the trust root's rule (1 confirmation)" in line
    assert line.rstrip().endswith(f"; trust root {root.label()}; {COMPLETENESS_NOT_PROVEN}")

    offline = verify(evidence.path, expect=EXIT_NOT_ANCHORED)
    assert "chain not checked (the export says anchored: head 6, 16)" in offline.stdout
    assert offline.stdout.rstrip().endswith("(pass --rpc URL to check it)")

    report = json.loads(verify(evidence.path, "--rpc", rpc, "--json", expect=0).stdout)
    assert (report["format"], report["status"], report["goods"]) == (FORMAT_V2, "verified", 2)
    assert report["entries"] == {"REGISTER": 2, "REVOKE": 1, "TRANSFER": 1}
    assert [(h["tree_size"], h["anchored"]) for h in report["heads"]] == [(6, True), (16, True)]
    assert (report["chain_id"], report["contract"]) == (31337, contract)
    assert report["head_signers"] == [world.registry.address]
    assert (report["trust_root"], report["trust_fingerprint"]) == (
        root.label(),
        root.fingerprint(),
    )
    assert (report["complete"], report["completeness"]) == (False, COMPLETENESS_NOT_PROVEN)
    # The pin holds; a trust root naming another signing key is a failure ...
    other_key = {"address": "0x" + "12" * 20, "from_size": 1, "until_size": None}
    wrong_root = TrustRoot.model_validate(
        {**root.document(), "signing_keys": [{**other_key, "handover_signature": None}]}
    )
    wrong_file = tmp_path / "wrong-trust-root.json"
    wrong_file.write_text(wrong_root.to_json())
    wrong = verify(evidence.path, expect=EXIT_BUNDLE_INVALID, trust=wrong_file)
    assert wrong.stderr.startswith(
        f"FAIL: the export names registry {world.registry.address}, a key trust root "
        f"{wrong_root.label()} does not name"
    )
    # ... and with no trust root naming the registry, nothing is checked: untrusted.
    untrusted = verify.untrusted(evidence.path, "--rpc", rpc, expect=EXIT_UNTRUSTED)
    assert untrusted.stdout == ""
    assert untrusted.stderr.startswith("UNTRUSTED: no pinned trust root names chain 31337")

    # The CSV summary: one line a good, from the evidence in the file.
    with evidence.csv_path.open(newline="") as stream:
        rows = list(csv.reader(stream))
    creator = world.creator.address
    assert rows == [
        list(CSV_COLUMNS),
        ["file", "0x" + evidence.file.hex(), creator, "0", "no", "1", "cardhub", "6", "0"],
        ["code", "0x" + evidence.code.hex(), creator, "6", "yes", "0", "creator", "16", "0"],
    ]


Mutation = Callable[[Document], None]


def _flip_inclusion(d: Document) -> None:
    proof = d["goods"][1]["entry"]["inclusion_proof"]
    proof[0] = _flip(proof[0])


def _remove_first_head(d: Document) -> None:
    d["heads"].pop(0)
    d["anchors"].pop(0)
    d["consistency"].clear()


def _break_consistency(d: Document) -> None:
    proof = d["consistency"][0]["proof"]
    proof[-1] = _flip(proof[-1])


def _drop_the_link(d: Document) -> None:
    d["consistency"].clear()


def _claim_another_tx(d: Document) -> None:
    d["anchors"][0]["tx_hash"] = d["anchors"][1]["tx_hash"]


def _swap_payload(d: Document) -> None:
    d["goods"][0]["later_entries"][0]["payload"]["transfer"]["price"] = "1"


PROBES: dict[str, tuple[Mutation, str, str]] = {
    "flipped-proof-node": (
        _flip_inclusion,
        "inclusion",
        "code 0x{code}: leaf 6 is not in head 16: inclusion proof for index 6 leads to root",
    ),
    "removed-head": (
        _remove_first_head,
        "shape",
        "file 0x{file} is proved under head 6, which is not among the export's heads (16)",
    ),
    "broken-consistency-proof": (
        _break_consistency,
        "consistency",
        "head 16 does not extend head 6: ",
    ),
    "missing-consistency-proof": (
        _drop_the_link,
        "shape",
        "no consistency proof from head 6 to head 16",
    ),
    "edited-payload": (
        _swap_payload,
        "leaf",
        "file 0x{file}: leaf 2: the leaf's payload_hash is not the SHA-256 of the payload",
    ),
}


def test_each_mutation_fails_with_its_own_reason_a_forked_head_on_chain(
    evidence: Evidence, tmp_path: Path
) -> None:
    chain = evidence.world.chain
    names = {"code": evidence.code.hex(), "file": evidence.file.hex()}
    root = trust_root_of(evidence.world.registry)
    trust = TrustPolicy.of(root)
    stop_the_registry(evidence, tmp_path / "registry.db")
    for name, (mutate, step, reason) in PROBES.items():
        document = copy.deepcopy(evidence.document)
        mutate(document)
        with pytest.raises(BundleInvalid) as caught:
            check_export(Export.parse(json.dumps(document)), trust, chain)
        assert caught.value.step == step, (name, caught.value.detail)
        assert reason.format(**names) in caught.value.detail, (name, caught.value.detail)

    # A pointer to a transaction that anchored another head: only the chain can say.
    document = copy.deepcopy(evidence.document)
    _claim_another_tx(document)
    offline = check_export(Export.parse(json.dumps(document)), trust, None)
    assert offline.status == "chain-not-checked"
    with pytest.raises(BundleInvalid) as caught:
        check_export(Export.parse(json.dumps(document)), trust, chain)
    assert caught.value.step == "chain"
    assert "does not anchor head 6" in caught.value.detail

    # Through the command: one FAIL line, exit 11.
    verify = Verify(tmp_path, root)
    broken = copy.deepcopy(evidence.document)
    _break_consistency(broken)
    failed = verify(verify.write(broken, "broken.json"), expect=EXIT_BUNDLE_INVALID)
    assert failed.stdout == "" and failed.stderr.startswith("FAIL: head 16 does not extend head 6")
    assert failed.stderr.count("\n") == 1

    # A head the chain never anchored: a fork of head 16 signed with the registry's key.
    # Every signature and proof in the file holds: offline, this is "not yet evidence" ...
    forked = verify.write(evidence.forked, "forked.json")
    assert verify(forked, expect=EXIT_NOT_ANCHORED).stdout.startswith("OK: 2 goods")
    # ... and the chain, which anchored another root for size 16, refuses it.
    refused = verify(forked, "--rpc", evidence.world.devchain.rpc_url, expect=EXIT_BUNDLE_INVALID)
    assert refused.stderr.startswith("FAIL: contract 0x5FbDB2315678afecb367f032d93F642f64180aa3 ")
    assert "for size 16, not the head's root" in refused.stderr
    assert "the contract never anchored this head" in refused.stderr


def test_unanchored_entries_are_not_evidence_yet(world: World, tmp_path: Path) -> None:
    """A good logged after the last anchor is proved under the latest signed head, which the
    export does not call anchored; against the chain it is not evidence yet (exit 12)."""
    first = world.register_file()
    world.anchor()  # head 2 (leaf 0, and its state commitment)
    later = world.register_file()  # leaf 2: not anchored
    selection = ExportSelection(goods=((GoodType.FILE, first), (GoodType.FILE, later)))
    result = write_export(world.registry, selection, tmp_path / "out")
    assert (result.heads, result.anchored_heads) == ([2, 4], [2])
    verify = Verify(tmp_path, trust_root_of(world.registry))
    line = verify(result.json_path, "--rpc", world.devchain.rpc_url, expect=EXIT_NOT_ANCHORED)
    assert "not anchored on chain 31337" in line.stdout and "yet: head 4" in line.stdout
    # Claiming that head 4 is anchored is a lie the chain exposes.
    document = json.loads(result.json_path.read_text())
    claim = dict(document["anchors"][0], tree_size=4)
    document["anchors"].append(claim)
    lie = verify(verify.write(document, "lie.json"), "--rpc", world.devchain.rpc_url, expect=11)
    assert "the evidence says head 4 is anchored, but contract" in lie.stderr
    assert "holds no root for that size" in lie.stderr
    with pytest.raises(NotFound, match="no file 0x00"):
        write_export(
            world.registry,
            ExportSelection(goods=((GoodType.FILE, bytes(32)),)),
            tmp_path / "none",
        )


# -- a creator's goods, paged; dates; the command --------------------------------------------


def _cli(data_dir: Path) -> Callable[..., Result]:
    runner = CliRunner()
    env = {"TRACEMARK_DATA_DIR": str(data_dir), "TRACEMARK_API_URL": None, "COLUMNS": "250"}

    def run(*args: str | Path, expect: int = 0) -> Result:
        result = runner.invoke(app, [str(a) for a in args], env=env)
        assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr)
        return result

    return run


def test_a_creators_goods_exported_page_by_page(
    tmp_path: Path, make_creator: CreatorFactory
) -> None:
    data_dir, out = tmp_path / "data", tmp_path / "out"
    clock = Clock()
    registry = Registry.open(load_settings(data_dir=data_dir), clock=clock)
    creator, other = make_creator(), make_creator()
    goods = []
    for n in range(5):
        request = registration(creator, clock())
        registry.register(request)
        goods.append(bytes(request.signed.message["fingerprint"]))
        registry.register(registration(other, clock()))
        if n == 2:  # logged, then two days later the rest
            registry.sequence_all()
            clock.advance(2 * 86400)
    registry.sequence_all()
    registry.register(registration(creator, clock()))  # still queued: nothing to prove
    root = trust_root_of(registry)
    registry.engine.dispose()
    tracemark = _cli(data_dir)

    exported: list[str] = []
    after: list[str] = []
    for page in range(4):
        args = ["export", "--creator", creator.address, "--limit", "2", "--out", out]
        answer = json.loads(tracemark(*args, "--name", f"p{page}", *after, "--json").stdout)
        rows = list(csv.DictReader((out / f"p{page}.csv").open(newline="")))
        exported += [row["fingerprint"] for row in rows]
        assert all(row["creator"] == creator.address for row in rows)
        check = Verify(tmp_path, root)(out / f"p{page}.json", expect=EXIT_NOT_ANCHORED).stdout
        assert check.startswith(f"OK: {answer['goods']} good")
        if answer["next_after"] is None:
            break
        assert "one page of a selection" in check
        after = ["--after", str(answer["next_after"])]
    assert exported == ["0x" + g.hex() for g in goods]
    assert page == 2 and answer["skipped_queued"] == 1

    # Since a date: the goods with an entry from then on (the last two of each creator).
    since = clock.now - 86400
    day = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d")
    line = tracemark("export", "--since", day, "--out", out, "--name", "s")
    assert "wrote" in line.stdout and "(4 goods," in line.stdout

    # Exactly one way of selecting.
    assert tracemark("export", "--out", out, expect=3).stderr.startswith("error: select goods")
    both = ["export", "--creator", creator.address, "--since", "2026-01-01", "--out", out]
    assert tracemark(*both, expect=3).stderr.startswith("error: select goods")
    mixed = ["export", "--creator", creator.address, "--good", "code:0x" + "00" * 32]
    assert tracemark(*mixed, "--out", out, expect=3).stderr.startswith("error: select goods")
    assert "TYPE:0x" in tracemark("export", "--good", "0x12", "--out", out, expect=3).stderr


def test_parsing_is_strict_and_bounded(
    registry: Registry, creator: CreatorKeys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = registration(creator, registry.clock())
    registry.register(request)
    registry.sequence_all()
    good = bytes(request.signed.message["fingerprint"])
    selection = ExportSelection(goods=((GoodType.FILE, good),))
    text = write_export(registry, selection, tmp_path).json_path.read_text()
    assert isinstance(parse_evidence(text), Export)

    document = json.loads(text)
    document["goods"][0]["note"] = "x"
    with pytest.raises(MalformedExport, match=r"goods\[0\]\.note: Extra inputs are not permitted"):
        parse_evidence(json.dumps(document))
    with pytest.raises(MalformedBundle, match="unknown evidence format 'tracemark-export/v3'"):
        parse_evidence(text.replace(FORMAT_V2, "tracemark-export/v3", 1))
    # v2 names its checkpoints (one, or null, a head); v1 has none.
    assert document["format"] == FORMAT_V2 and document["checkpoints"][0].startswith("127.0.0.1")
    for change, reason in (
        ({"checkpoints": None}, "v2 names checkpoints"),
        ({"format": "tracemark-export/v1"}, "v1 has no checkpoints"),
        ({"checkpoints": [7]}, r"checkpoints\[0\]: Input should be a valid string"),
    ):
        with pytest.raises(MalformedExport, match=reason):
            parse_evidence(json.dumps({**document, "goods": [], **change}))
    with pytest.raises(MalformedExport, match="duplicate key"):
        parse_evidence('{"format": "tracemark-export/v1", "format": "x"}')
    with pytest.raises(MalformedExport, match="this is a tracemark-bundle/v4 bundle"):
        Export.parse(build_bundle(registry, GoodType.FILE, good).to_json())
    monkeypatch.setattr(export_format, "MAX_EXPORT_BYTES", len(text) - 1)
    with pytest.raises(MalformedExport, match="at most"):
        parse_evidence(text)
    with pytest.raises(InvalidInput, match="one export holds at most 2"):
        ExportSelection(goods=((GoodType.FILE, good),) * 3, limit=2)
