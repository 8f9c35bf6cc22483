"""Bundles, exports and absence proofs carry their head's checkpoint with its witnesses'
cosignatures, and ``tracemark verify`` checks it under the trust root (issue 15).

A registry with a witness policy (2 of 3) on a real anvil; three real witnesses (``tracemark
witness``'s app on loopback: their own keys and durable state) that the registry asks itself
(``anchoring.witnessing``) for each head's checkpoint before it is anchored. Mutations of the
carried checkpoint each fail at their named step; evidence made before issue 15 (a v3 bundle,
a v1 export or absence proof: the same file without its checkpoint) verifies under ``quorum
none`` and fails under a quorum."""

from __future__ import annotations

import copy
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from anchoring.chain import Chain
from anchoring.devchain import DevChain, free_port
from anchoring.witnessing import Witnessing
from anchoring.worker import AnchorPolicy, AnchorWorker
from api.app import create_app
from api.cli import app
from api.cli.verify import EXIT_BUNDLE_INVALID
from api.trustroot import NO_WITNESS_POLICY
from readmodels.bundles import build_absence, build_bundle
from readmodels.exports import ExportSelection, write_export
from registry.creator import CreatorKeys
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType
from registry.logkeys import LogNoteKeys
from registry.migrate import upgrade
from registry.note import parse_note, sign_note
from registry.service import Registry
from registry.witnessconfig import (
    WitnessConfig,
    init_witness,
    load_witness_config,
)
from registry.witnesspolicy import WitnessPolicy, parse_policy
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration
from tests.trust import trust_root_of
from tests.verifier.test_verify_cli import Verify
from tests.verifier.witnessing import flip_signature_byte, unknown_line
from tests.witness_server import running_witness
from verifier.absence import Absence, MalformedAbsence
from verifier.bundle import Bundle, MalformedBundle
from verifier.errors import BundleInvalid
from verifier.export import check_export
from verifier.exportformat import Export, MalformedExport
from verifier.offline import check_bundle
from verifier.statecheck import check_absence
from verifier.trust import TrustPolicy, TrustRoot

# The anchoring tests' real anvil, its account #0 and the contract.
from tests.anchoring.conftest import chain, devchain, operator  # noqa: F401  # isort: skip

pytestmark = pytest.mark.slow

Document = dict[str, Any]
NAMES = ("w1", "w2", "w3")


@dataclass
class Witnessed:
    """A registry whose policy asks 2 of 3 witnesses, its witnesses, and two anchored heads:
    the first cosigned by w1 and w2 (w3 down), the second by all three."""

    registry: Registry
    policy: WitnessPolicy
    chain: Chain
    devchain: DevChain
    files: list[bytes]
    root: TrustRoot

    def bundle(self, index: int = 0) -> Document:
        built = build_bundle(self.registry, GoodType.FILE, self.files[index])
        document: Document = json.loads(built.to_json())
        return document


def _witnesses(tmp_path: Path, keys: LogNoteKeys) -> dict[str, WitnessConfig]:
    """Three witnesses made as an operator makes one (``tracemark witness init``)."""
    return {
        name: load_witness_config(
            init_witness(tmp_path / name, f"witness.test/{name}", [keys.vkeys()])
        )
        for name in NAMES
    }


def _policy(configs: dict[str, WitnessConfig], urls: dict[str, str]) -> WitnessPolicy:
    # w1 and w3 by their ML-DSA-44 keys, w2 by its Ed25519 one: each witness answers with
    # both lines, so the other is a line this policy does not know (and must ignore).
    lines = []
    for name, config in configs.items():
        vkeys = config.vkeys()
        chosen = vkeys[1] if name == "w2" else vkeys[0]
        lines.append(f"witness {name} {chosen} {urls[name]}")
    return parse_policy("\n".join([*lines, "group wit 2 w1 w2 w3", "quorum wit"]) + "\n")


@pytest.fixture
def witnessed(
    tmp_path: Path,
    clock: Clock,
    make_creator: CreatorFactory,
    chain: Chain,  # noqa: F811
    devchain: DevChain,  # noqa: F811
    operator: LocalAccount,  # noqa: F811
) -> Iterator[Witnessed]:
    """The registry asks its witnesses itself (``anchoring.witnessing``, real add-checkpoint
    requests over HTTP to three ``tracemark witness`` apps on loopback) before anchoring."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    upgrade(engine)
    keys = LogNoteKeys.from_seeds("registry.test/tlog", os.urandom(32), os.urandom(32))
    configs = _witnesses(tmp_path, keys)
    with ExitStack() as stack:
        urls = {
            name: stack.enter_context(running_witness(config))[0]
            for name, config in configs.items()
        }
        policy = _policy(configs, urls)
        registry = Registry(
            engine,
            domain=DEV_DOMAIN,
            account=Account.create(),
            master_key=secrets.token_bytes(32),
            clock=clock,
            note_keys=keys,
            witness_policy=policy,
        )
        # The first round finds w3 down (its URL a closed port); the second reaches it.
        down = _policy(configs, {**urls, "w3": f"http://127.0.0.1:{free_port()}"})
        creator: CreatorKeys = make_creator()
        worker = AnchorWorker(
            registry,
            chain,
            operator,
            AnchorPolicy(max_entries=1, max_age_seconds=0, confirmations=1),
        )
        files = []
        for asked, cosigners in ((down, ("w1", "w2")), (policy, NAMES)):
            for _ in range(2):
                request = registration(creator, clock(), domain=registry.domain)
                registry.register(request)
                files.append(bytes(request.signed.message["fingerprint"]))
            registry.sequence_all()
            witnessing = Witnessing(registry, asked)
            try:
                round_ = witnessing.step()
            finally:
                witnessing.close()
            assert round_ is not None and round_.published, round_
            assert round_.cosigned == cosigners
            worker.run_until_idle()
            devchain.rpc("anvil_mine", "0x1")
            worker.run_until_idle()
        yield Witnessed(registry, policy, chain, devchain, files, trust_root_of(registry))


def _refused(document: Document, root: TrustRoot, step: str) -> str:
    with pytest.raises(BundleInvalid) as caught:
        check_bundle(Bundle.parse(json.dumps(document)), TrustPolicy.of(root), None)
    assert caught.value.step == step, caught.value.detail
    return caught.value.detail


def _with_checkpoint(document: Document, checkpoint: str) -> Document:
    changed = copy.deepcopy(document)
    changed["checkpoint"] = checkpoint
    return changed


def _drop_lines(checkpoint: str, *names: str) -> str:
    note = parse_note(checkpoint)
    kept = tuple(s for s in note.signatures if s.name not in names)
    return type(note)(note.text, kept).to_bytes().decode()


# -- the registry's trust root --------------------------------------------------------------


def test_the_registry_serves_a_trust_root_naming_its_log_and_witness_policy(
    witnessed: Witnessed, registry: Registry, tmp_path: Path
) -> None:
    served = TestClient(create_app(witnessed.registry)).get("/.well-known/tracemark-trust.json")
    root = TrustRoot.parse(served.content)
    assert served.headers["x-tracemark-trust-fingerprint"] == root.fingerprint()
    log = root.transparency
    assert log is not None and log.log_origin == "registry.test/tlog"
    assert log.log_vkeys == witnessed.registry.checkpoint_signer.keys.vkeys()
    assert log.witness_policy == witnessed.policy.to_text()
    assert log.describe_quorum() == "2 of [w1, w2, w3] (3 witnesses known)"
    # The policy is under the fingerprint: another policy is another root.
    relaxed = TrustRoot.model_validate(
        {**root.document(), "transparency": {**log.model_dump(), "witness_policy": "quorum none\n"}}
    )
    assert relaxed.fingerprint() != root.fingerprint()
    # Pinning shows the quorum.
    verify = Verify(tmp_path)
    pinned = verify.runner.invoke(
        app,
        ["trust", "add", str(verify.trust_file(root)), "--fingerprint", root.fingerprint()],
        env=verify.env,
    )
    assert pinned.exit_code == 0, pinned.stderr
    assert "witness quorum 2 of [w1, w2, w3] (3 witnesses known)" in pinned.stdout
    # A registry without witnesses names quorum none (``registry``: the anchoring tests' own).
    plain = TrustRoot.parse(TestClient(create_app(registry)).get(served.url.path).content)
    assert plain.transparency is not None
    assert plain.transparency.witness_policy == NO_WITNESS_POLICY


# -- bundles --------------------------------------------------------------------------------


def test_a_bundle_witnessed_at_the_quorum_verifies_and_says_who_cosigned(
    witnessed: Witnessed, tmp_path: Path
) -> None:
    first, second = witnessed.bundle(0), witnessed.bundle(2)
    assert first["format"] == second["format"] == "tracemark-bundle/v4"
    assert first["tree_head"]["tree_size"] == second["tree_head"]["tree_size"] == 6
    # Both goods are under the largest anchored head, cosigned by all three.
    verify = Verify(tmp_path)
    trust = verify.trust_file(witnessed.root)
    rpc = witnessed.devchain.rpc_url
    line = verify(verify.write(first), "--trust", trust, "--rpc", rpc, expect=0).stdout
    assert "checkpoint 6 signed by the log (Ed25519, ML-DSA-44), witnessed by 3 of 3: w1, " in line
    report = json.loads(
        verify(verify.write(first), "--trust", trust, "--rpc", rpc, "--json", expect=0).stdout
    )
    assert report["status"] == "verified"
    assert report["witness"]["witnessed_by"] == ["w1", "w2", "w3"]
    assert report["witness"]["log_signatures"] == ["Ed25519", "ML-DSA-44"]
    # At exactly the quorum: w3's line taken out, the verdict names the two.
    two = _with_checkpoint(first, _drop_lines(first["checkpoint"], "witness.test/w3"))
    line = verify(verify.write(two, "two.json"), "--trust", trust, "--rpc", rpc, expect=0).stdout
    assert "witnessed by 2 of 3: w1, w2;" in line


def test_below_the_quorum_or_with_a_flipped_byte_a_bundle_fails(
    witnessed: Witnessed, tmp_path: Path
) -> None:
    document, root = witnessed.bundle(0), witnessed.root
    checkpoint = document["checkpoint"]
    one = _drop_lines(checkpoint, "witness.test/w2", "witness.test/w3")
    assert "missing w2, w3" in _refused(_with_checkpoint(document, one), root, "witness")
    none = _drop_lines(checkpoint, *(f"witness.test/{n}" for n in NAMES))
    _refused(_with_checkpoint(document, none), root, "witness")
    # A flipped byte in any cosignature line the policy knows, or in the log's own.
    lines = parse_note(checkpoint).signatures
    for index, line in enumerate(lines):
        flipped = _with_checkpoint(document, flip_signature_byte(checkpoint, index))
        known = any(
            (line.name, line.key_id) == (w.verifier.name, w.verifier.key_id)
            for w in witnessed.policy.witnesses
        )
        if index < 2:  # the log's Ed25519 and ML-DSA-44 lines
            _refused(flipped, root, "checkpoint")
        elif known:
            assert "fails" in _refused(flipped, root, "witness")
        else:  # a witness's other key: a line the policy does not know, ignored
            check_bundle(Bundle.parse(json.dumps(flipped)), TrustPolicy.of(root), None)
    # A note that is not UTF-8 (an unpaired surrogate in the JSON) is refused as it is read.
    with pytest.raises(MalformedBundle, match="unable to parse raw data as a unicode string"):
        Bundle.parse(json.dumps(_with_checkpoint(document, checkpoint + "\udc80")))
    # Through the command: one FAIL line, exit 11.
    verify = Verify(tmp_path)
    failed = verify(
        verify.write(_with_checkpoint(document, one)),
        "--trust",
        verify.trust_file(root),
        expect=EXIT_BUNDLE_INVALID,
    )
    assert failed.stderr.startswith("FAIL: the checkpoint of head 6 is not witnessed as trust root")
    report = json.loads(
        verify(
            verify.write(_with_checkpoint(document, one)),
            "--trust",
            verify.trust_file(root),
            "--json",
            expect=EXIT_BUNDLE_INVALID,
        ).stdout
    )
    assert report["failed_step"] == "witness"


def test_a_checkpoint_of_another_root_or_log_key_fails_unknown_lines_do_not(
    witnessed: Witnessed,
) -> None:
    document, root = witnessed.bundle(0), witnessed.root
    checkpoint = document["checkpoint"]
    note = parse_note(checkpoint)
    keys = witnessed.registry.checkpoint_signer.keys
    # The log's keys signing another root for the same size (a split view), cosigned by no one.
    forged = witnessed.registry.checkpoint_signer.sign(6, os.urandom(32)).to_bytes().decode()
    assert "is not head 6" in _refused(_with_checkpoint(document, forged), root, "checkpoint")
    # The head's very text signed by another key under the log's name, cosignatures kept.
    impostor = LogNoteKeys.from_seeds(keys.origin, os.urandom(32), os.urandom(32))
    resigned = sign_note(note.text, impostor.signers).with_signatures(*note.signatures[2:])
    detail = _refused(_with_checkpoint(document, resigned.to_bytes().decode()), root, "checkpoint")
    assert "no signature from a known key" in detail
    # Lines nobody knows, even under the log's or a witness's name, are ignored.
    noisy = (
        checkpoint + unknown_line() + unknown_line(keys.origin) + unknown_line("witness.test/w1")
    )
    report = check_bundle(
        Bundle.parse(json.dumps(_with_checkpoint(document, noisy))), TrustPolicy.of(root), None
    )
    assert report.witness is not None and report.witness.witnessed_by == NAMES


def test_a_bundle_from_before_issue_15_verifies_only_without_a_quorum(
    witnessed: Witnessed,
) -> None:
    document = witnessed.bundle(0)
    log = witnessed.root.transparency
    assert log is not None
    relaxed = TrustRoot.model_validate(
        {
            **witnessed.root.document(),
            "transparency": {**log.model_dump(), "witness_policy": NO_WITNESS_POLICY},
        }
    )
    pinned_before = TrustRoot.model_validate(
        {k: v for k, v in witnessed.root.document().items() if k != "transparency"}
    )
    # The same evidence as v3, v2 and v1 wrote it: no checkpoint (nor the later fields).
    v3 = {k: v for k, v in document.items() if k != "checkpoint"} | {
        "format": "tracemark-bundle/v3"
    }
    v2 = {k: v for k, v in v3.items() if k != "state"} | {"format": "tracemark-bundle/v2"}
    v1 = {k: v for k, v in v2.items() if k != "creator_identity"} | {
        "format": "tracemark-bundle/v1"
    }
    for old in (v3, v2, v1):
        bundle = Bundle.parse(json.dumps(old))
        report = check_bundle(bundle, TrustPolicy.of(relaxed), None)
        assert report.witness is not None and not report.witness.witnessed
        assert "head 6 not witnessed: the evidence carries no checkpoint" in report.summary()
        before = check_bundle(bundle, TrustPolicy.of(pinned_before), None)
        assert before.witness is not None and "no witness policy" in before.summary()
        detail = _refused(old, witnessed.root, "checkpoint")
        assert "carries no checkpoint for head 6" in detail


def test_an_absence_proof_carries_its_heads_checkpoint(witnessed: Witnessed) -> None:
    absence = build_absence(witnessed.registry, GoodType.FILE, os.urandom(32))
    assert absence.format == "tracemark-absence/v2" and absence.checkpoint is not None
    trust = TrustPolicy.of(witnessed.root)
    report = check_absence(Absence.parse(absence.to_json()), trust, witnessed.chain)
    assert report.status == "verified" and report.witness is not None
    assert "witnessed by 3 of 3: w1, w2, w3" in report.summary()
    assert report.as_dict()["witness"]["witnessed_by"] == ["w1", "w2", "w3"]
    document = json.loads(absence.to_json())

    def refused(change: Document, step: str) -> str:
        with pytest.raises(BundleInvalid) as caught:
            check_absence(Absence.parse(json.dumps(change)), trust, None)
        assert caught.value.step == step, caught.value.detail
        return caught.value.detail

    below = _drop_lines(absence.checkpoint, "witness.test/w1", "witness.test/w2")
    assert "missing w1, w2" in refused({**document, "checkpoint": below}, "witness")
    forged = witnessed.registry.checkpoint_signer.sign(6, os.urandom(32)).to_bytes().decode()
    assert "is not head 6" in refused({**document, "checkpoint": forged}, "checkpoint")
    # As v1 wrote it (no checkpoint): refused under the quorum, verified under quorum none.
    v1 = {k: v for k, v in document.items() if k != "checkpoint"}
    v1["format"] = "tracemark-absence/v1"
    assert "carries no checkpoint for head 6" in refused(v1, "checkpoint")
    log = witnessed.root.transparency
    assert log is not None
    relaxed = TrustRoot.model_validate(
        {
            **witnessed.root.document(),
            "transparency": {**log.model_dump(), "witness_policy": NO_WITNESS_POLICY},
        }
    )
    old = check_absence(Absence.parse(json.dumps(v1)), TrustPolicy.of(relaxed), None)
    assert "head 6 not witnessed" in old.summary()
    with pytest.raises(MalformedAbsence, match="v1 has no checkpoint"):
        Absence.parse(json.dumps({**v1, "checkpoint": None}))
    with pytest.raises(MalformedAbsence, match="v2 names checkpoint"):
        Absence.parse(json.dumps({**v1, "format": "tracemark-absence/v2"}))


# -- exports --------------------------------------------------------------------------------


def test_an_export_carries_each_heads_checkpoint_and_fails_below_the_quorum(
    witnessed: Witnessed, tmp_path: Path
) -> None:
    selection = ExportSelection(goods=tuple((GoodType.FILE, fp) for fp in witnessed.files))
    result = write_export(witnessed.registry, selection, tmp_path / "out")
    # The first two goods' earliest anchored head is 3 (w1, w2), the others' 6 (all three).
    assert result.heads == [3, 6]
    document = json.loads(result.json_path.read_text())
    assert document["format"] == "tracemark-export/v2" and len(document["checkpoints"]) == 2
    trust = TrustPolicy.of(witnessed.root)
    report = check_export(Export.parse(json.dumps(document)), trust, witnessed.chain)
    assert report.status == "verified"
    summary = report.summary()
    assert "checkpoint 3 signed by the log (Ed25519, ML-DSA-44), witnessed by 2 of 3: w1, w2" in (
        summary
    )
    assert "checkpoint 6 signed by the log (Ed25519, ML-DSA-44), witnessed by 3 of 3" in summary
    heads = report.as_dict()["heads"]
    assert [h["witness"]["witnessed_by"] for h in heads] == [["w1", "w2"], ["w1", "w2", "w3"]]
    verify = Verify(tmp_path)
    rpc = witnessed.devchain.rpc_url
    trust_file = verify.trust_file(witnessed.root)
    verify(result.json_path, "--trust", trust_file, "--rpc", rpc, expect=0)

    def refused(change: Document, step: str) -> str:
        with pytest.raises(BundleInvalid) as caught:
            check_export(Export.parse(json.dumps(change)), trust, None)
        assert caught.value.step == step, caught.value.detail
        return caught.value.detail

    # Head 3 below the quorum: w2's cosignature removed.
    below = copy.deepcopy(document)
    below["checkpoints"][0] = _drop_lines(document["checkpoints"][0], "witness.test/w2")
    assert "missing w2, w3" in refused(below, "witness")
    failed = verify(verify.write(below, "below.json"), "--trust", trust_file, expect=11)
    assert failed.stderr.startswith("FAIL: the checkpoint of head 3 is not witnessed")
    # A flipped byte of w1's cosignature (its ML-DSA-44 line, the one the policy names).
    lines = parse_note(document["checkpoints"][1]).signatures
    w1 = next(
        i
        for i, s in enumerate(lines)
        if (s.name, s.key_id)
        == (
            witnessed.policy.witness("w1").verifier.name,
            witnessed.policy.witness("w1").verifier.key_id,
        )
    )
    flipped = copy.deepcopy(document)
    flipped["checkpoints"][1] = flip_signature_byte(document["checkpoints"][1], w1)
    refused(flipped, "witness")
    # The heads' checkpoints swapped: each names another size and root.
    swapped = copy.deepcopy(document)
    swapped["checkpoints"].reverse()
    assert "is not head 3" in refused(swapped, "checkpoint")
    surrogate = copy.deepcopy(document)
    surrogate["checkpoints"][0] = "\ud800"
    with pytest.raises(MalformedExport, match="unable to parse raw data as a unicode string"):
        Export.parse(json.dumps(surrogate))
    # One checkpoint for two heads: the shape is wrong.
    short = copy.deepcopy(document)
    short["checkpoints"].pop()
    assert "1 checkpoints for 2 heads" in refused(short, "shape")
    # The export as v1 wrote it (no checkpoints): fails under the quorum, at the first head.
    v1 = {k: v for k, v in document.items() if k != "checkpoints"}
    v1["format"] = "tracemark-export/v1"
    assert "no checkpoint for head 3" in refused(v1, "checkpoint")
