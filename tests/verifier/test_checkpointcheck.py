"""The head's checkpoint under the trust root (issue 15): the log's signature under the
root's vkeys, the head's size and root, the witness policy's quorum; and the trust root's
``transparency`` member (parsing, fingerprint, pinning). Real keys and real cosignatures on a
log in memory (``tests.verifier.statelog``): no database, no chain."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from registry.cosignature import CosignerV1
from registry.errors import Conflict
from registry.fingerprints import GoodType
from registry.leaf import EntryKind
from registry.note import vkey
from registry.treehead import TreeHead
from tests.verifier.statelog import MemoryLog, absence_document
from tests.verifier.witnessing import Witnesses, flip_signature_byte, log_keys, unknown_line
from verifier.absence import MalformedAbsence
from verifier.checkpointcheck import check_checkpoint
from verifier.errors import BundleInvalid
from verifier.exportformat import parse_evidence
from verifier.trust import MalformedTrustRoot, TrustRoot, extends
from verifier.truststore import TrustStore


@pytest.fixture(scope="module")
def head() -> TreeHead:
    log = MemoryLog()
    for _ in range(5):
        log.add(EntryKind.REGISTER, GoodType.FILE, os.urandom(32))
    return log.commit().head


@pytest.fixture(scope="module")
def base() -> TrustRoot:
    return MemoryLog().trust_root()


@pytest.fixture(scope="module")
def witnesses() -> Witnesses:
    return Witnesses()


def _refused(step: str, checkpoint: str | None, head: TreeHead, root: TrustRoot) -> str:
    with pytest.raises(BundleInvalid) as caught:
        check_checkpoint(checkpoint, head, root)
    assert caught.value.step == step, caught.value.detail
    return caught.value.detail


def test_a_checkpoint_at_the_quorum_says_who_witnessed_it(
    head: TreeHead, base: TrustRoot, witnesses: Witnesses
) -> None:
    root = witnesses.root(base)
    finding = check_checkpoint(witnesses.checkpoint(head, "w1", "w3"), head, root)
    assert finding.witnessed and finding.witnessed_by == ("w1", "w3")
    assert finding.log_signatures == ("Ed25519", "ML-DSA-44")
    assert finding.describe().endswith("witnessed by 2 of 3: w1, w3")
    assert finding.as_dict()["witnessed_by"] == ["w1", "w3"]
    every = check_checkpoint(witnesses.checkpoint(head, "w1", "w2", "w3"), head, root)
    assert every.witnessed_by == ("w1", "w2", "w3")


def test_below_the_quorum_it_fails_naming_who_is_missing(
    head: TreeHead, base: TrustRoot, witnesses: Witnesses
) -> None:
    root = witnesses.root(base)
    detail = _refused("witness", witnesses.checkpoint(head, "w2"), head, root)
    assert "cosigned by w2" in detail and "missing w1, w3" in detail
    _refused("witness", witnesses.checkpoint(head), head, root)


@pytest.mark.parametrize("line", [2, 3, 4])  # each cosignature: w1, w2 (Ed25519), w3 (ML-DSA)
def test_a_flipped_cosignature_byte_fails_even_above_the_quorum(
    head: TreeHead, base: TrustRoot, witnesses: Witnesses, line: int
) -> None:
    root = witnesses.root(base)
    good = witnesses.checkpoint(head, "w1", "w2", "w3")
    for byte in (0, 8, -1):  # the timestamp, the signature's first and last byte
        detail = _refused("witness", flip_signature_byte(good, line, byte), head, root)
        assert "fails" in detail


@pytest.mark.parametrize("line", [0, 1])  # the log's Ed25519 and ML-DSA-44 lines
def test_a_flipped_log_signature_byte_fails(
    head: TreeHead, base: TrustRoot, witnesses: Witnesses, line: int
) -> None:
    good = witnesses.checkpoint(head, "w1", "w2")
    _refused("checkpoint", flip_signature_byte(good, line), head, witnesses.root(base))


def test_a_checkpoint_of_another_root_or_size_fails(
    head: TreeHead, base: TrustRoot, witnesses: Witnesses
) -> None:
    root = witnesses.root(base)
    other = witnesses.checkpoint(head, "w1", "w2", root=os.urandom(32))
    assert "is not head" in _refused("checkpoint", other, head, root)
    smaller = head.model_copy(update={"tree_size": head.tree_size - 1})
    good = witnesses.checkpoint(head, "w1", "w2")
    assert "is not head" in _refused("checkpoint", good, smaller, root)


def test_a_checkpoint_signed_by_another_log_key_fails(
    head: TreeHead, base: TrustRoot, witnesses: Witnesses
) -> None:
    # The same origin (key name), other keys: their lines are unknown, so no known key signed.
    impostor = Witnesses(log=log_keys(witnesses.log.origin), cosigners=witnesses.cosigners)
    forged = impostor.checkpoint(head, "w1", "w2", "w3")
    detail = _refused("checkpoint", forged, head, witnesses.root(base))
    assert "no signature from a known key" in detail
    # Another log's origin altogether.
    elsewhere = Witnesses(log=log_keys("elsewhere.test/tlog"), cosigners=witnesses.cosigners)
    detail = _refused(
        "checkpoint", elsewhere.checkpoint(head, "w1", "w2"), head, witnesses.root(base)
    )
    assert "elsewhere.test/tlog" in detail


def test_unknown_signature_lines_are_ignored(
    head: TreeHead, base: TrustRoot, witnesses: Witnesses
) -> None:
    good = witnesses.checkpoint(head, "w1", "w2")
    # A stranger, a line with the log's name but an unknown key id, one with a witness's name.
    noisy = (
        good + unknown_line() + unknown_line(witnesses.log.origin) + unknown_line("witness.test/w3")
    )
    finding = check_checkpoint(noisy, head, witnesses.root(base))
    assert finding.witnessed_by == ("w1", "w2")


def test_no_checkpoint_verifies_only_under_quorum_none(
    head: TreeHead, base: TrustRoot, witnesses: Witnesses
) -> None:
    relaxed = witnesses.root(base, quorum="none")
    finding = check_checkpoint(None, head, relaxed)
    assert not finding.witnessed and not finding.has_checkpoint
    assert "not witnessed" in finding.describe()
    detail = _refused("checkpoint", None, head, witnesses.root(base))
    assert "carries no checkpoint" in detail
    # Under quorum none, a checkpoint is still checked: its log signature and its head.
    signed = check_checkpoint(witnesses.checkpoint(head), head, relaxed)
    assert signed.log_signatures and "not witnessed" in signed.describe()
    forged = witnesses.checkpoint(head, root=os.urandom(32))
    _refused("checkpoint", forged, head, relaxed)


def test_a_root_pinned_before_issue_15_checks_no_checkpoint(
    head: TreeHead, base: TrustRoot, witnesses: Witnesses
) -> None:
    finding = check_checkpoint(witnesses.checkpoint(head), head, base)
    assert not finding.checked and "no witness policy" in finding.describe()


def test_the_trust_root_names_the_log_and_its_policy_under_its_fingerprint(
    base: TrustRoot, witnesses: Witnesses
) -> None:
    # A root without transparency is the very document it was: same fingerprint.
    assert "transparency" not in base.document()
    assert TrustRoot.parse(base.to_json()).fingerprint() == base.fingerprint()
    root = witnesses.root(base)
    assert TrustRoot.parse(root.to_json()) == root
    assert root.fingerprint() != base.fingerprint()
    relaxed = witnesses.root(base, quorum="none")
    assert relaxed.fingerprint() != root.fingerprint()  # the policy is under the fingerprint
    assert root.transparency is not None and relaxed.transparency is not None
    assert root.transparency.describe_quorum() == "2 of [w1, w2, w3] (3 witnesses known)"
    assert relaxed.transparency.describe_quorum() == "none (no witness asked)"
    # A changed policy or log key is not an update of the pinned root (no signed hand-over).
    assert extends(root, root) and not extends(root, relaxed) and not extends(base, root)
    assert not extends(root, base)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"log_vkeys": []}, "at least 1"),
        ({"log_origin": "other.test/tlog"}, "not named by the log's origin"),
        ({"witness_policy": "quorum w9\n"}, "witness_policy"),
        ({"witness_policy": "witness w1 nonsense\nquorum w1\n"}, "witness_policy"),
        ({"surprise": 1}, "Extra inputs"),
    ],
)
def test_a_malformed_transparency_member_is_refused(
    base: TrustRoot, witnesses: Witnesses, change: dict[str, object], reason: str
) -> None:
    member = {**witnesses.transparency(), **change}
    with pytest.raises(MalformedTrustRoot, match=reason):
        TrustRoot.parse(json.dumps({**base.document(), "transparency": member}))


def test_a_log_key_must_be_a_checkpoint_key(base: TrustRoot, witnesses: Witnesses) -> None:
    # A cosignature key (0x04), even named by the origin, is not a log key; nor a vkey twice.
    origin = witnesses.log.origin
    cosigner_vkey = vkey(CosignerV1(origin, ed25519.Ed25519PrivateKey.generate()).verifier())
    witness_vkey = witnesses.policy().split()[2]
    for vkeys, reason in (
        ([cosigner_vkey], r"Ed25519 \(0x01\) or ML-DSA-44 \(0x06\)"),
        ([witness_vkey], "not named by the log's origin"),
        ([witnesses.log.vkeys()[0]] * 2, "listed twice"),
        (["not+a+vkey"], "log_vkeys"),
    ):
        member = {**witnesses.transparency(), "log_vkeys": vkeys}
        with pytest.raises(MalformedTrustRoot, match=reason):
            TrustRoot.parse(json.dumps({**base.document(), "transparency": member}))


def test_pinning_a_changed_policy_asks_for_replace(
    base: TrustRoot, witnesses: Witnesses, tmp_path: Path
) -> None:
    store = TrustStore(tmp_path)
    assert store.pin(base).status == "added"
    root = witnesses.root(base)
    with pytest.raises(Conflict, match="names other log keys or another witness policy"):
        store.pin(root)
    assert store.pin(root, replace=True).status == "replaced"
    relaxed = witnesses.root(base, quorum="none")
    with pytest.raises(Conflict, match="another witness policy"):
        store.pin(relaxed)
    assert store.roots() == [root]


def test_a_checkpoint_that_is_not_utf8_is_refused_not_a_crash(
    head: TreeHead, base: TrustRoot, witnesses: Witnesses
) -> None:
    root = witnesses.root(base)
    good = witnesses.checkpoint(head, "w1", "w2")
    for bad in ("\ud800", good + "\u2014 x \udfff\n"):
        assert "valid UTF-8" in _refused("checkpoint", bad, head, root)
    # ... and refused as the evidence is read (an absence proof here; bundles and exports in
    # test_witnessed_evidence).
    log = MemoryLog()
    log.add(EntryKind.REGISTER, GoodType.FILE, os.urandom(32))
    document = absence_document(log, log.commit(), GoodType.FILE, os.urandom(32))
    document.update(format="tracemark-absence/v2", checkpoint="\ud800")
    with pytest.raises(MalformedAbsence, match="unable to parse raw data as a unicode string"):
        parse_evidence(json.dumps(document))
