"""Proof bundles end to end on a real anvil: built from a registry, checked with nothing but the
chain, and every mutation of a good bundle refused with the reason (THREATS 2, 8, 12-16)."""

from __future__ import annotations

import copy
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine, text

from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.worker import AnchorWorker
from readmodels.bundles import build_bundle
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN, Domain
from registry.errors import NotFound
from registry.fingerprints import GoodType
from registry.leaf import EntryKind, payload_hash
from registry.migrate import upgrade
from registry.service import Registry
from registry.transfers import Party, TransferRequest
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration
from tests.trust import policy_of, trust_root_of
from tests.verifier.conftest import CODES, CONFIRMATIONS, POLICY, Story, World
from verifier.bundle import FORMAT_V4, MAX_BUNDLE_BYTES, Bundle, MalformedBundle
from verifier.bundlereport import BundleReport
from verifier.errors import BundleInvalid, NotAnchoredYet, UntrustedRegistry
from verifier.offline import check_bundle
from verifier.trust import TrustPolicy, TrustRoot

pytestmark = pytest.mark.slow

Document = dict[str, Any]


def _bundle(story: Story, good_type: GoodType, fingerprint: bytes) -> Bundle:
    """Built, written out and read back: what a verifier gets is the file, not the object."""
    return Bundle.parse(build_bundle(story.world.registry, good_type, fingerprint).to_json())


def _check(document: Document, trust: TrustPolicy, chain: Chain | None) -> BundleReport:
    return check_bundle(Bundle.parse(json.dumps(document)), trust, chain)


def _flip(text: str, nibble: int = -1) -> str:
    """The hex string with one bit of one hex digit flipped."""
    index = nibble % len(text)
    return text[:index] + format(int(text[index], 16) ^ 1, "x") + text[index + 1 :]


def _registry(tmp_path: Path, clock: Clock, domain: Domain, name: str) -> Registry:
    engine = create_db_engine(f"sqlite:///{tmp_path / name}")
    upgrade(engine)
    return Registry(
        engine,
        domain=domain,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )


# -- what a good bundle proves ----------------------------------------------------------------


def test_a_registered_and_revoked_file_is_proved_against_the_chain(story: Story) -> None:
    world = story.world
    bundle = _bundle(story, GoodType.FILE, story.revoked_file)
    assert bundle.format == FORMAT_V4 and bundle.creator_identity is None
    assert [(e.kind, e.leaf_index) for e in bundle.entries] == [
        (EntryKind.REGISTER, 6),
        (EntryKind.REVOKE, 12),
    ]
    assert bundle.tree_head.tree_size == 23 and bundle.pending_entries == 0
    assert bundle.anchor is not None and bundle.anchor.state == "final"
    assert bundle.entry.batch_proof is None

    root = trust_root_of(world.registry)
    report = check_bundle(bundle, TrustPolicy.of(root), world.chain)
    assert report.status == "verified"
    assert (report.trust_root, report.trust_fingerprint) == (root.label(), root.fingerprint())
    assert [(e.kind, e.leaf_index) for e in report.entries] == [
        (EntryKind.REGISTER, 6),
        (EntryKind.REVOKE, 12),
    ]
    assert report.entries[1].reason == "pirated copy"
    assert report.chain is not None and report.chain.chain_id == 31337
    assert report.chain.confirmations == CONFIRMATIONS + 1
    creator = world.creator.address
    summary = report.summary()
    assert f"registered by {creator} at leaf 6, revoked by {creator} at leaf 12" in summary
    assert f"in head 23 signed by {world.registry.address}" in summary
    assert f"anchored on chain 31337 in contract {DEV_DOMAIN.verifying_contract}" in summary
    assert f"{CONFIRMATIONS + 1} confirmations; final by 1 confirmation)" in summary
    # The state map under the head (its last leaf, 22) holds exactly these two entries.
    assert summary.endswith(
        f"; trust root {root.label()}; complete as of head 23: the state map committed at "
        "leaf 22 holds 2 entries of this good, the last at leaf 12"
    )
    assert report.state is not None and report.completeness == "complete as of head 23"


def test_a_batch_registered_code_is_proved_by_the_creators_one_signature(story: Story) -> None:
    bundle = _bundle(story, GoodType.CODE, story.codes[0])
    assert bundle.later_entries == ()
    batch = bundle.entry.batch_proof
    assert batch is not None and (batch.position, batch.count) == (0, 5)
    assert bundle.entry.payload["signed"]["type"] == "BatchRegistration"
    report = check_bundle(bundle, policy_of(story.world.registry), story.world.chain)
    assert report.status == "verified"
    assert "registered by" in report.summary()
    assert "at leaf 14 (item 1 of a batch of 5)" in report.summary()


def test_a_batch_revoked_code_proves_its_revocation(story: Story) -> None:
    bundle = _bundle(story, GoodType.CODE, story.codes[2])
    assert [e.kind for e in bundle.entries] == [EntryKind.REGISTER, EntryKind.REVOKE]
    revocation = bundle.later_entries[0]
    assert revocation.batch_proof is not None and revocation.batch_proof.position == 1
    report = check_bundle(bundle, policy_of(story.world.registry), story.world.chain)
    assert report.status == "verified"
    assert "at leaf 16 (item 3 of a batch of 5)" in report.summary()
    assert "revoked by" in report.summary() and "at leaf 21 (item 2 of a batch of 2)" in (
        report.summary()
    )
    assert report.entries[1].signed_type == "BatchRevocation"


def test_a_code_sold_to_its_end_user_proves_its_consumption(story: Story) -> None:
    world = story.world
    world.registry.transfer(
        TransferRequest(
            platform="cardhub",
            good_type=GoodType.CODE,
            fingerprint=story.codes[0],
            seller=Party(None, None),
            buyer=Party("cardhub", "user-1"),
            price=1_000,
            currency="EUR",
            final=True,
        )
    )
    world.anchor()
    bundle = _bundle(story, GoodType.CODE, story.codes[0])
    assert [e.kind for e in bundle.entries] == [EntryKind.REGISTER, EntryKind.TRANSFER]
    assert bundle.later_entries[0].actor == bytes.fromhex(world.registry.address[2:])
    trust = policy_of(world.registry)
    report = check_bundle(bundle, trust, world.chain)
    assert report.status == "verified"
    assert "consumed by a final sale on cardhub (attested by the registry) at leaf 23" in (
        report.summary()
    )
    # The registry attests a transfer only about this good, and only with the head's key.
    document = json.loads(bundle.to_json())
    forged = copy.deepcopy(document)
    forged["later_entries"][0]["actor"] = world.creator.address
    with pytest.raises(BundleInvalid) as caught:
        _check(forged, trust, world.chain)
    assert caught.value.step == "signature"
    assert "a TRANSFER's actor" in caught.value.detail
    forged = copy.deepcopy(document)
    transfer = forged["later_entries"][0]
    transfer["payload"]["transfer"]["fingerprint"] = "0x" + story.codes[1].hex()
    transfer["payload_hash"] = "0x" + payload_hash(transfer["payload"]).hex()
    with pytest.raises(BundleInvalid) as caught:
        _check(forged, trust, world.chain)
    assert caught.value.step == "signature"
    assert "does not name this good, its creator and the registry" in caught.value.detail


def test_without_a_chain_everything_else_is_checked_and_the_report_says_so(story: Story) -> None:
    report = check_bundle(
        _bundle(story, GoodType.FILE, story.plain_file), policy_of(story.world.registry), None
    )
    assert report.status == "chain-not-checked"
    assert report.chain is None
    assert "chain not checked (the bundle says head 23 is final on chain 31337" in (
        report.summary()
    )


def test_the_head_is_the_largest_anchored_one_and_later_entries_wait(world: World) -> None:
    # Every signed head ends with its state commitment: a good's entry and a commitment each.
    first = world.register_file()
    world.anchor()  # head 2
    second = world.register_file()
    world.anchor()  # head 4
    world.revoke_file(first)  # leaf 4, head 6: signed, not anchored
    bundle = build_bundle(world.registry, GoodType.FILE, first)
    assert (bundle.tree_head.tree_size, bundle.later_entries, bundle.pending_entries) == (4, (), 1)
    assert bundle.anchor is not None and bundle.anchor.tree_size == 4
    trust = policy_of(world.registry)
    report = check_bundle(bundle, trust, world.chain)
    assert report.status == "verified"
    assert "1 more entry of this good not under this head" in report.summary()
    # A good newer than every anchor: the latest signed head, and no anchor yet.
    third = world.register_file()
    fresh = build_bundle(world.registry, GoodType.FILE, third)
    assert (fresh.tree_head.tree_size, fresh.anchor) == (8, None)
    with pytest.raises(NotAnchoredYet) as caught:
        check_bundle(fresh, trust, world.chain)
    unanchored = caught.value.report
    assert unanchored.status == "not-anchored"
    assert "head 8 is not anchored on chain 31337" in caught.value.detail
    assert "head 8 is not anchored on chain 31337" in unanchored.summary()
    # Once anchored, the same bundle verifies: the root is read from the contract.
    world.anchor()
    later = check_bundle(fresh, trust, world.chain)
    assert later.status == "verified" and later.chain is not None
    assert later.chain.confirmations is None  # the bundle named no transaction
    assert second != third


def test_queued_and_unknown_goods_have_no_bundle(world: World) -> None:
    with pytest.raises(NotFound, match="is registered"):
        build_bundle(world.registry, GoodType.FILE, os.urandom(32))
    queued = os.urandom(32)
    world.registry.register(registration(world.creator, world.clock(), fingerprint=queued))
    with pytest.raises(NotFound, match="still queued"):
        build_bundle(world.registry, GoodType.FILE, queued)


def test_a_conflicting_claim_travels_with_the_good(
    world: World, make_creator: CreatorFactory
) -> None:
    fingerprint = world.register_file()
    rival = make_creator()
    world.registry.register(registration(rival, world.clock(), fingerprint=fingerprint))
    world.registry.sequence_all()
    world.anchor()
    bundle = build_bundle(world.registry, GoodType.FILE, fingerprint)
    assert [e.kind for e in bundle.entries] == [EntryKind.REGISTER, EntryKind.CONFLICT]
    report = check_bundle(bundle, policy_of(world.registry), world.chain)
    assert report.status == "verified"
    assert f"claimed again (conflict) by {rival.address} at leaf 2" in report.summary()


def test_bundles_are_built_alike_on_every_database(
    engine: Engine,
    clock: Clock,
    chain: Chain,
    devchain: DevChain,
    operator: LocalAccount,
    make_creator: CreatorFactory,
) -> None:
    """The head and anchor lookup is SQL of its own: run it on SQLite and on PostgreSQL."""
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    world = World(registry, chain, devchain, make_creator(), clock, lambda: None)
    worker = AnchorWorker(registry, chain, operator, POLICY)
    fingerprint = world.register_file()
    codes = world.register_codes(CODES[:3])
    worker.run_until_idle()  # head 6 mined (each head ends with its state commitment)
    world.revoke_codes(CODES[:1])  # head 8, not anchored
    bundles = [build_bundle(registry, GoodType.FILE, fingerprint)]
    bundles += [build_bundle(registry, GoodType.CODE, code) for code in codes]
    assert [(b.tree_head.tree_size, b.pending_entries) for b in bundles] == [
        (6, 0),
        (6, 1),
        (6, 0),
        (6, 0),
    ]
    trust = policy_of(registry)  # one confirmation: a mined anchor is final
    for bundle in bundles:
        assert bundle.anchor is not None and bundle.anchor.state == "mined"
        report = check_bundle(Bundle.parse(bundle.to_json()), trust, chain)
        assert report.status == "verified"


# -- the format -------------------------------------------------------------------------------


def test_the_format_is_strict(story: Story) -> None:
    text = build_bundle(story.world.registry, GoodType.FILE, story.plain_file).to_json()
    document = json.loads(text)
    assert document["format"] == "tracemark-bundle/v4" and document["creator_identity"] is None
    assert document["checkpoint"].startswith("127.0.0.1:8000/tlog\n23\n")
    assert document["state"]["commitment"]["kind"] == "STATE_COMMITMENT"
    assert document["entry"]["kind"] == "REGISTER" and document["good"]["good_type"] == "file"
    assert document["entry"]["actor"] == story.world.creator.address  # EIP-55 at the edge
    assert Bundle.parse(text).to_json() == text  # round trip

    def refused(mutate: Callable[[Document], object], match: str) -> None:
        changed = copy.deepcopy(document)
        mutate(changed)
        with pytest.raises(MalformedBundle, match=match):
            Bundle.parse(json.dumps(changed))

    refused(lambda d: d.update(format="tracemark-bundle/v5"), "unknown bundle format")
    # Each version has exactly its own fields: v4 adds checkpoint, v3 state (null when none).
    refused(lambda d: d.pop("checkpoint"), "v4 names checkpoint")
    refused(lambda d: d.update(format="tracemark-bundle/v3"), "v3 has no checkpoint")
    refused(lambda d: (d.pop("checkpoint"), d.pop("state")), "v4 names state")
    refused(
        lambda d: (d.pop("checkpoint"), d.update(format="tracemark-bundle/v2")), "v2 has no state"
    )
    refused(
        lambda d: (d.pop("checkpoint"), d.pop("state"), d.update(format="tracemark-bundle/v1")),
        "v1 has no creator",
    )
    refused(lambda d: d.update(checkpoint=7), "checkpoint")
    refused(lambda d: d["state"].update(extra=1), "state.extra")
    refused(lambda d: d.update(extra=1), "extra")
    refused(lambda d: d["entry"].update(version=2), "unknown leaf version")
    refused(lambda d: d["entry"].update(leaf_index="3"), "leaf_index")
    refused(lambda d: d["entry"].update(leaf_index=True), "leaf_index")
    refused(lambda d: d["entry"].update(fingerprint="0x1234"), "64 hex digits")
    refused(lambda d: d["entry"].update(kind="MINT"), "REGISTER, REVOKE")
    refused(lambda d: d["entry"].update(inclusion_proof=["0x" + "00" * 32] * 65), "65")
    refused(lambda d: d["tree_head"]["domain"].update(chainId=0), "chainId")
    refused(lambda d: d["entry"].pop("batch_proof"), "batch_proof")
    with pytest.raises(MalformedBundle, match="duplicate key"):
        Bundle.parse(text.replace('"format":', '"pending_entries": 0, "format":', 1))
    with pytest.raises(MalformedBundle, match="one JSON document"):
        Bundle.parse(text + "{}")
    with pytest.raises(MalformedBundle, match="at most"):
        Bundle.parse(b" " * (MAX_BUNDLE_BYTES + 1))
    with pytest.raises(MalformedBundle, match="NaN is not JSON"):
        Bundle.parse(text.replace('"pending_entries": 0', '"pending_entries": NaN'))


def test_the_format_and_the_check_import_no_web3_or_orm() -> None:
    program = (
        "import json, sys\n"
        "import verifier.bundle, verifier.offline\n"
        "print(json.dumps(sorted(m for m in ('web3', 'sqlmodel', 'sqlalchemy', 'fastapi')"
        " if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], check=True, capture_output=True, text=True
    )
    assert json.loads(result.stdout) == []


# -- mutation probes --------------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[Document], None]:
    """Set (or transform, given a callable) the value at a dotted path such as
    ``entry.inclusion_proof.2``."""
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]

    def mutate(document: Document) -> None:
        target: Any = document
        for part in parents:
            target = target[part]
        target[last] = value(target[last]) if callable(value) else value

    return mutate


def _rehash(document: Document) -> None:
    """Recompute the entry's payload hash after its payload changed, so the probe reaches the
    checks after the leaf's (the leaf then no longer matches the log, which comes later)."""
    entry = document["entry"]
    entry["payload_hash"] = "0x" + payload_hash(entry["payload"]).hex()


def _rehashed_signed(field: str, value: Any) -> Callable[[Document], None]:
    def mutate(document: Document) -> None:
        document["entry"]["payload"]["signed"][field] = value(
            document["entry"]["payload"]["signed"][field]
        )
        _rehash(document)

    return mutate


def _payload_domain_chain(document: Document) -> None:
    document["entry"]["payload"]["domain"]["chainId"] = 1
    _rehash(document)


def _payload_metadata(document: Document) -> None:
    document["entry"]["payload"]["metadata"]["title"] = "another work"
    _rehash(document)


def _other_good(document: Document) -> None:
    other = "0x" + "ab" * 32
    document["good"]["fingerprint"] = other
    for entry in [document["entry"], *document["later_entries"]]:
        entry["fingerprint"] = other


Probe = tuple[str, Callable[[Document], None], str, str]

#: (probe, mutation of the revoked file's bundle, the step that fails, words of the reason)
FILE_PROBES: list[Probe] = [
    *[
        (
            f"modified-proof-node-{i}",
            _set(f"entry.inclusion_proof.{i}", _flip),
            "inclusion",
            "leaf 6 is not in head 23",
        )
        for i in range(5)
    ],
    (
        "later-entry-proof-node",
        _set("later_entries.0.inclusion_proof.0", _flip),
        "inclusion",
        "leaf 12 is not in head 23",
    ),
    ("leaf-index-plus-1", _set("entry.leaf_index", lambda i: i + 1), "inclusion", "head 23"),
    ("leaf-index-minus-1", _set("entry.leaf_index", lambda i: i - 1), "inclusion", "head 23"),
    ("later-leaf-index", _set("later_entries.0.leaf_index", 5), "inclusion", "leaf 5 is not"),
    ("later-same-leaf", _set("later_entries.0.leaf_index", 6), "entry", "not in log order"),
    ("leaf-timestamp", _set("entry.timestamp", lambda t: t + 1), "inclusion", "leads to root"),
    ("entry-fingerprint", _set("entry.fingerprint", _flip), "entry", "not the bundle's good"),
    ("good-fingerprint", _other_good, "signature", "Registration is for another fingerprint"),
    ("good-type", _set("good.good_type", "item"), "entry", "not the bundle's good"),
    (
        "modified-payload",
        _set("entry.payload.metadata", {"title": "another"}),
        "leaf",
        "leaf 6: the leaf's payload_hash is not the SHA-256 of the payload",
    ),
    ("payload-hash", _set("entry.payload_hash", _flip), "leaf", "not the SHA-256 of the payload"),
    (
        "rehashed-payload-metadata",
        _payload_metadata,
        "signature",
        "the payload's metadata is not the one the Registration signed",
    ),
    (
        "creator-signature",
        _rehashed_signed("signature", lambda s: _flip(s, 10)),
        "signature",
        "the Registration signature",
    ),
    (
        "creator-signature-high-s",
        _rehashed_signed("signature", lambda s: s[:66] + "f" + s[67:]),
        "signature",
        "above n/2",
    ),
    (
        "creator-signer",
        _rehashed_signed("signer", lambda _: "0x" + "22" * 20),
        "signature",
        "not made by the claimed signer",
    ),
    (
        "payload-domain",
        _payload_domain_chain,
        "domain",
        "leaf 6: the Registration was signed for chain 1 and contract",
    ),
    ("leaf-actor", _set("entry.actor", "0x" + "22" * 20), "signature", "not the leaf's actor"),
    ("entry-kind", _set("entry.kind", "CONFLICT"), "entry", "is a CONFLICT, not the REGISTER"),
    ("tree-head-root", _set("tree_head.root", _flip), "inclusion", "leads to root"),
    # NOTE: leaves 6 and 12 have the same audit path in trees of 22, 23 and 24 leaves (RFC
    # 9162 binds the size only through the path's shape): the head's signature refuses these.
    (
        "tree-head-size-plus-1",
        _set("tree_head.tree_size", lambda n: n + 1),
        "tree-head",
        "head 24: its signature",
    ),
    (
        "tree-head-size-minus-1",
        _set("tree_head.tree_size", lambda n: n - 1),
        "tree-head",
        "head 22: its signature",
    ),
    (
        "tree-head-size-halved",
        _set("tree_head.tree_size", 11),
        "inclusion",
        "leaf 6 is not in head 11",
    ),
    (
        "tree-head-timestamp",
        _set("tree_head.timestamp", lambda t: t + 1),
        "tree-head",
        "head 23: its signature: the signature was not made by the claimed signer",
    ),
    (
        "tree-head-signature",
        _set("tree_head.signature", lambda s: _flip(s, 10)),
        "tree-head",
        "head 23: its signature",
    ),
    (
        "tree-head-signature-v",
        _set("tree_head.signature", lambda s: s[:-2] + "1d"),
        "tree-head",
        "v must be 27 or 28",
    ),
    (
        "tree-head-signer",
        _set("tree_head.signer", "0x" + "33" * 20),
        "tree-head",
        "head 23 is signed by 0x" + "33" * 20 + ", but trust root",
    ),
    ("anchor-size", _set("anchor.tree_size", 10), "anchor", "the anchor names head 10"),
    ("anchor-chain", _set("anchor.chain_id", 1), "anchor", "on chain 1 in"),
    (
        "anchor-tx-hash-unknown",
        _set("anchor.tx_hash", "0x" + "77" * 32),
        "chain",
        "is not mined on chain 31337",
    ),
    # The state map (issue 14): the REVOKE left out, and the state's own fields broken.
    (
        "later-entry-dropped",
        _set("later_entries", []),
        "state",
        "incomplete: the map says this good has 2 entries, the last at leaf 12; the bundle "
        "shows 1, the last at leaf 6: the entry at leaf 12 is missing",
    ),
    (
        "state-map-root",
        _set("state.commitment.fingerprint", _flip),
        "state",
        "its fingerprint word is not the map root it names",
    ),
    (
        "state-covers",
        _set("state.commitment.payload.covers", 21),
        "state",
        "payload_hash is not the payload's SHA-256",
    ),
    (
        "state-commitment-leaf-index",
        _set("state.commitment.leaf_index", 21),
        "state",
        "the state commitment at leaf 21 is not the last leaf of head 23",
    ),
    ("state-value-count", _set("state.value.entry_count", 1), "state", "does not lead to the root"),
    (
        "state-value-last-leaf",
        _set("state.value.last_leaf_index", 6),
        "state",
        "does not lead to the root",
    ),
    ("state-value-history", _set("state.value.history", _flip), "state", "does not lead to"),
    ("state-proof-sibling", _set("state.map_proof.siblings.0", _flip), "state", "does not lead"),
]


def _refusals(
    original: Document, probes: list[Probe], trust: TrustPolicy, chain: Chain | None
) -> list[str]:
    """Apply each probe to a copy of a good bundle; return what did not fail as expected."""
    _check(original, trust, chain)  # the original verifies (raises otherwise)
    wrong = []
    for probe, mutate, step, reason in probes:
        document = copy.deepcopy(original)
        mutate(document)
        try:
            _check(document, trust, chain)
        except BundleInvalid as exc:
            if exc.step != step or reason not in exc.detail:
                wrong.append(f"{probe}: expected {step} ({reason}), got {exc.step}: {exc.detail}")
        else:
            wrong.append(f"{probe}: expected {step} ({reason}), but it verified")
    return wrong


def test_every_mutation_of_a_file_bundle_is_refused_with_its_reason(story: Story) -> None:
    bundle = build_bundle(story.world.registry, GoodType.FILE, story.revoked_file)
    document = json.loads(bundle.to_json())
    assert len(document["entry"]["inclusion_proof"]) == 5  # leaf 6 of 23: five siblings
    trust = policy_of(story.world.registry)
    assert _refusals(document, FILE_PROBES, trust, story.world.chain) == []


def test_the_anchor_pointing_at_another_transaction_is_refused(story: Story) -> None:
    """The pointer must name the transaction that anchored this head: the first anchor's
    transaction (head 10) or the contract's deployment are real, but are not it."""
    world = story.world
    document = json.loads(build_bundle(world.registry, GoodType.FILE, story.revoked_file).to_json())
    block: Any = world.devchain.rpc("eth_getBlockByNumber", "0x1", False)
    deployment = block["transactions"][0]
    with world.registry.engine.connect() as conn:
        head_10 = conn.execute(
            text("SELECT tx_hash FROM anchors WHERE tree_size = 10")
        ).scalar_one()
    trust = policy_of(world.registry)
    for tx_hash in (deployment, "0x" + bytes(head_10).hex()):
        document["anchor"]["tx_hash"] = tx_hash
        with pytest.raises(BundleInvalid) as caught:
            _check(document, trust, world.chain)
        assert caught.value.step == "chain", caught.value.detail
        assert "does not anchor head 23" in caught.value.detail


#: (probe, mutation of the bundle of a code registered and revoked in batches, step, reason)
BATCH_PROBES: list[Probe] = [
    (
        "batch-position-plus-1",
        _set("entry.batch_proof.position", lambda p: p + 1),
        "leaf",
        "not the SHA-256 of the batch payload at this position",
    ),
    (
        "batch-proof-node",
        _set("entry.batch_proof.inclusion_proof.0", _flip),
        "batch",
        "leaf 16: the fingerprint is not under the signed items root",
    ),
    (
        "batch-items-root",
        _set("entry.batch_proof.items_root", _flip),
        "batch",
        "items root and count are not the ones the BatchRegistration signed",
    ),
    (
        "batch-count",
        _set("entry.batch_proof.count", 6),
        "batch",
        "items root and count are not the ones the BatchRegistration signed",
    ),
    ("batch-proof-dropped", _set("entry.batch_proof", None), "leaf", "SHA-256 of the payload"),
    (
        "batch-revocation-position",
        _set("later_entries.0.batch_proof.position", 0),
        "leaf",
        "leaf 21: the leaf's payload_hash",
    ),
]


def test_every_mutation_of_a_batch_proof_is_refused_with_its_reason(story: Story) -> None:
    bundle = build_bundle(story.world.registry, GoodType.CODE, story.codes[2])
    trust = policy_of(story.world.registry)
    assert _refusals(json.loads(bundle.to_json()), BATCH_PROBES, trust, None) == []


# -- heads the contract never anchored ----------------------------------------------------------


def test_a_forged_log_under_a_real_anchor_pointer_is_refused_by_the_contract(
    story: Story, tmp_path: Path, clock: Clock
) -> None:
    """Another key signs a log of the same size holding the same registration, and the real
    anchor pointer is grafted on: every signature and proof checks out, but the root the
    contract holds for that size is not this head's (THREATS 8)."""
    world = story.world
    genuine = build_bundle(world.registry, GoodType.FILE, story.plain_file)
    forger = _registry(tmp_path, clock, DEV_DOMAIN, "forged.db")
    # As many good entries as the genuine head has leaves but its last, then the forger's own
    # state commitment: a head of the same size.
    for leaf_index in range(genuine.tree_head.tree_size - 1):
        fingerprint = story.plain_file if leaf_index == genuine.entry.leaf_index else None
        forger.register(registration(world.creator, clock(), fingerprint=fingerprint))
    forger.sequence_all()
    forged = build_bundle(forger, GoodType.FILE, story.plain_file)
    assert forged.tree_head.tree_size == 23 and forged.tree_head.root != genuine.tree_head.root
    # A verifier that pinned the forger's key (same chain, same contract) finds the bundle
    # self-consistent without the chain; the contract refuses it.
    forger_trust = policy_of(forger)
    report = check_bundle(forged, forger_trust, None)
    assert report.status == "chain-not-checked"
    grafted = forged.model_copy(update={"anchor": genuine.anchor})
    for candidate in (forged, grafted):
        with pytest.raises(BundleInvalid) as caught:
            check_bundle(Bundle.parse(candidate.to_json()), forger_trust, world.chain)
        assert caught.value.step == "chain", caught.value.detail
        assert "never anchored this head" in caught.value.detail
    # Pinning the genuine registry's trust root refuses it before any chain is asked.
    genuine_root = trust_root_of(world.registry)
    with pytest.raises(BundleInvalid) as caught:
        check_bundle(grafted, TrustPolicy.of(genuine_root), None)
    assert caught.value.step == "tree-head"
    assert caught.value.detail == (
        f"head 23 is signed by {forger.address}, but trust root {genuine_root.label()} names "
        f"{world.registry.address} to sign heads of that size"
    )


def test_a_bundle_from_a_registry_on_another_chain_fails_against_anvil(
    world: World, tmp_path: Path, clock: Clock
) -> None:
    mainnet = Domain(1, DEV_DOMAIN.verifying_contract)
    elsewhere = _registry(tmp_path, clock, mainnet, "mainnet.db")
    fingerprint = os.urandom(32)
    elsewhere.register(
        registration(world.creator, clock(), fingerprint=fingerprint, domain=mainnet)
    )
    elsewhere.sequence_all()
    bundle = build_bundle(elsewhere, GoodType.FILE, fingerprint)
    mainnet_root = trust_root_of(elsewhere)
    assert check_bundle(bundle, TrustPolicy.of(mainnet_root), None).status == "chain-not-checked"
    with pytest.raises(BundleInvalid) as caught:
        check_bundle(bundle, TrustPolicy.of(mainnet_root), world.chain)
    assert caught.value.step == "chain"
    assert caught.value.detail == (
        f"the node serves chain 31337, but trust root {mainnet_root.label()} is for chain 1"
    )
    # A verifier that pinned only the anvil registry does not trust it at all.
    with pytest.raises(UntrustedRegistry, match="no pinned trust root names chain 1"):
        check_bundle(bundle, policy_of(world.registry), None)
    # The right chain, but an address where nothing was deployed.
    empty = Domain(31337, "0x" + "66" * 20)
    nowhere = _registry(tmp_path, clock, empty, "nowhere.db")
    nowhere.register(registration(world.creator, clock(), fingerprint=fingerprint, domain=empty))
    nowhere.sequence_all()
    with pytest.raises(BundleInvalid) as caught:
        check_bundle(
            build_bundle(nowhere, GoodType.FILE, fingerprint),
            policy_of(nowhere),
            Chain.connect(world.devchain.rpc_url, empty.verifying_contract),
        )
    assert caught.value.step == "chain"
    assert caught.value.detail == (
        f"{empty.verifying_contract} on chain 31337 does not hold the TracemarkAnchor contract"
    )


def test_a_contract_pinned_by_the_caller_must_be_the_heads(story: Story) -> None:
    bundle = build_bundle(story.world.registry, GoodType.FILE, story.plain_file)
    other = "0x" + "44" * 20
    root = trust_root_of(story.world.registry)
    # A trust root naming another contract does not name this head's registry.
    elsewhere_root = TrustRoot.model_validate({**root.document(), "contract": other})
    with pytest.raises(UntrustedRegistry) as untrusted:
        check_bundle(bundle, TrustPolicy.of(elsewhere_root), None)
    assert (
        f"no pinned trust root names chain 31337 and contract {DEV_DOMAIN.verifying_contract}"
        in untrusted.value.detail
    )
    elsewhere = Chain.connect(story.world.devchain.rpc_url, other)
    with pytest.raises(BundleInvalid) as caught:
        check_bundle(bundle, TrustPolicy.of(root), elsewhere)
    assert caught.value.step == "chain"
    assert caught.value.detail.startswith(
        f"asked to check against contract {elsewhere.address}, but trust root {root.label()} "
        f"names {DEV_DOMAIN.verifying_contract}"
    )
