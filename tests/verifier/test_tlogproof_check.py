"""A real registry's goods and receipts as ``c2sp.org/tlog-proof@v1`` files, checked the way a
stranger checks them (``verifier.tlogproofcheck``): a trust root naming the log's checkpoint
keys and witness policy, and the anchor contract on a real EVM (py-evm, in process). Every
mutation a forger could make is refused at the step that catches it."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import EthereumTesterProvider, Web3

from anchoring.chain import Chain
from anchoring.worker import AnchorPolicy, AnchorWorker
from readmodels.tlogproofs import (
    build_good_tlog_proof,
    build_leaf_tlog_proof,
    build_receipt_tlog_proof,
)
from registry.canonicaljson import canonical_json
from registry.codesfile import codes_source, prepare_code_batch
from registry.cosignature import CosignerV1
from registry.creator import CreatorKeys, sign_batch_registration
from registry.db import create_db_engine
from registry.eip712 import Domain
from registry.errors import InvalidInput, NotFound
from registry.fingerprints import GoodType, Use
from registry.leaf import EntryKind
from registry.migrate import upgrade
from registry.note import Ed25519Signer, Note, NoteSignature, parse_note, vkey
from registry.service import Registry
from registry.transfers import Party, TransferRequest
from tests.conftest import Clock
from tests.registry.helpers import NO_ROYALTY, registration
from tests.trust import trust_root_of
from verifier.bundlereport import COMPLETENESS_NOT_PROVEN
from verifier.errors import BundleInvalid, NotAnchoredYet, UntrustedRegistry
from verifier.tlogproof import TlogProof
from verifier.tlogproofcheck import TlogProofReport, check_tlog_proof
from verifier.trust import TrustPolicy, TrustRoot


@dataclass
class Log:
    """One registry anchoring on an in-process py-evm chain: a file registered then
    transferred, a batch of codes; everything anchored."""

    registry: Registry
    chain: Chain
    anchor: Callable[[], None]
    creator: CreatorKeys
    clock: Clock
    file: bytes
    codes: list[bytes]
    transfer_id: int
    witnesses: dict[str, CosignerV1]

    def root(self, policy: str = "quorum none\n", *, origin: str | None = None) -> TrustRoot:
        """The registry's trust root with its log's checkpoint keys and ``policy``."""
        keys = self.registry.checkpoint_signer.keys
        transparency = {
            "log_origin": origin or keys.origin,
            "log_vkeys": list(keys.vkeys()) if origin is None else [_other_log_vkey(origin)],
            "witness_policy": policy,
        }
        base = trust_root_of(self.registry)
        return TrustRoot.model_validate({**base.document(), "transparency": transparency})

    def witnessed_root(self) -> TrustRoot:
        lines = [f"witness {name} {vkey(w.verifier())}" for name, w in self.witnesses.items()]
        return self.root("\n".join([*lines, "group both 2 w1 w2", "quorum both"]) + "\n")


def _other_log_vkey(origin: str) -> str:
    return vkey(Ed25519Signer(origin, ed25519.Ed25519PrivateKey.generate()).verifier())


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    provider = EthereumTesterProvider()
    w3 = Web3(provider)
    key = provider.ethereum_tester.backend.account_keys[0]  # type: ignore[attr-defined]
    operator: LocalAccount = Account.from_key(key.to_bytes())
    address = Chain(w3, "0x" + "00" * 20).deploy(operator)
    chain = Chain(w3, address)
    domain = Domain(chain_id=w3.eth.chain_id, verifying_contract=address)
    path: Path = tmp_path_factory.mktemp("tlogproof") / "registry.db"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    clock = Clock()
    registry = Registry(
        engine,
        domain=domain,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    file = os.urandom(32)
    registry.register(registration(creator, clock(), fingerprint=file, domain=domain))
    registry.sequence_all()
    batch = prepare_code_batch(
        codes_source("QRST-WXYZ-GHJK\nKLMN-PQRS-TUVW\nGHJK-LMNP-QRST"),
        creator.require_code_key(),
    )
    request = sign_batch_registration(
        creator,
        domain,
        batch,
        good_type=GoodType.CODE,
        product="card",
        use=Use.SINGLE,
        royalty_policy=NO_ROYALTY,
        metadata={"lot": 7},
        now=clock(),
        new_product=True,
    )
    registry.register_batch(request, batch.fingerprints())
    codes = list(batch.fingerprints())
    batch.close()
    receipt = registry.transfer(
        TransferRequest(
            platform="keyshop",
            good_type=GoodType.FILE,
            fingerprint=file,
            seller=Party(None, None),
            buyer=Party("keyshop", "buyer-1"),
            price=100,
            currency="EUR",
            final=False,
            idempotency_key=None,
        )
    )
    registry.sequence_all()
    worker = AnchorWorker(
        registry, chain, operator, AnchorPolicy(max_entries=1, max_age_seconds=0, confirmations=1)
    )

    def anchor() -> None:
        worker.run_until_idle()
        provider.ethereum_tester.mine_blocks(2)  # type: ignore[attr-defined]
        worker.run_until_idle()

    anchor()
    witnesses = {
        name: CosignerV1(f"witness.test/{name}", ed25519.Ed25519PrivateKey.generate())
        for name in ("w1", "w2")
    }
    return Log(
        registry,
        chain,
        anchor,
        creator,
        clock,
        file,
        codes,
        receipt.transfer_id,
        witnesses,
    )


def _check(log: Log, proof: TlogProof, root: TrustRoot | None = None) -> TlogProofReport:
    return check_tlog_proof(
        TlogProof.parse(proof.to_bytes()), TrustPolicy.of(root or log.root()), log.chain
    )


# -- what verifies ------------------------------------------------------------------------------


def test_a_registration_verifies_against_the_chain(log: Log) -> None:
    proof = build_good_tlog_proof(log.registry, GoodType.FILE, log.file)
    report = _check(log, proof)
    assert report.status == "verified"
    assert report.entry.kind is EntryKind.REGISTER
    assert report.entry.actor == log.creator.address
    assert report.entry.signed_type == "Registration"
    assert report.chain is not None and report.chain.final
    assert report.tree_size == log.chain.last_anchored()[0]
    assert report.checkpoint.log_signatures == ("Ed25519", "ML-DSA-44")
    # One entry, no state proof: never "complete", and it says why.
    summary = report.summary()
    assert summary.startswith("tlog-proof: file 0x" + log.file.hex() + " registered by ")
    assert summary.endswith(COMPLETENESS_NOT_PROVEN)
    document = report.as_dict()
    assert document["complete"] is False and document["evidence_format"] == "c2sp.org/tlog-proof@v1"


def test_a_code_of_a_bulk_batch_verifies_with_its_batch_proof(log: Log) -> None:
    proof = build_good_tlog_proof(log.registry, GoodType.CODE, log.codes[1])
    report = _check(log, proof)
    assert report.status == "verified"
    assert (report.entry.signed_type, report.entry.batch_position) == ("BatchRegistration", 1)
    assert report.entry.batch_count == 3


def test_a_receipt_verifies(log: Log) -> None:
    receipt = log.registry.receipt(log.transfer_id)
    proof = build_receipt_tlog_proof(log.registry, log.transfer_id)
    assert proof.index == receipt.leaf_index
    report = _check(log, proof)
    assert report.status == "verified"
    assert report.entry.kind is EntryKind.TRANSFER and report.entry.platform == "keyshop"
    assert report.creator == log.creator.address
    assert "transferred on keyshop (attested by the registry)" in report.summary()


def test_the_chain_not_asked_and_a_head_not_anchored_yet(log: Log) -> None:
    proof = build_good_tlog_proof(log.registry, GoodType.FILE, log.file)
    unchecked = check_tlog_proof(proof, TrustPolicy.of(log.root()), None)
    assert unchecked.status == "chain-not-checked" and unchecked.chain is None
    fingerprint = os.urandom(32)
    log.registry.register(
        registration(log.creator, log.clock(), fingerprint=fingerprint, domain=log.registry.domain)
    )
    log.registry.sequence_all()
    fresh = build_good_tlog_proof(log.registry, GoodType.FILE, fingerprint)
    with pytest.raises(NotAnchoredYet) as caught:
        _check(log, fresh)
    assert caught.value.report.status == "not-anchored"
    log.anchor()
    assert _check(log, build_good_tlog_proof(log.registry, GoodType.FILE, fingerprint)).status == (
        "verified"
    )


def test_witness_quorum_of_the_trust_roots_policy(log: Log) -> None:
    proof = build_good_tlog_proof(log.registry, GoodType.FILE, log.file)
    root = log.witnessed_root()
    with pytest.raises(BundleInvalid) as caught:
        _check(log, proof, root)
    assert caught.value.step == "witness"
    note = parse_note(proof.checkpoint)
    w1, w2 = log.witnesses["w1"], log.witnesses["w2"]
    one = _with_note(proof, note.with_signatures(w1.sign(note.text)))
    with pytest.raises(BundleInvalid) as caught:
        _check(log, one, root)
    assert caught.value.step == "witness"
    both = _with_note(proof, note.with_signatures(w1.sign(note.text), w2.sign(note.text)))
    report = _check(log, both, root)
    assert report.status == "verified"
    assert report.checkpoint.witnessed_by == ("w1", "w2")
    assert "witnessed by 2 of 2: w1, w2" in report.summary()
    # A known witness's line that does not verify refuses the note (signed-note).
    bad = note.with_signatures(w1.sign(note.text), _flipped(w2.sign(note.text)))
    with pytest.raises(BundleInvalid) as caught:
        _check(log, _with_note(proof, bad), root)
    assert caught.value.step == "witness"


def test_what_is_not_written_as_a_tlog_proof(log: Log) -> None:
    with pytest.raises(NotFound):
        build_good_tlog_proof(log.registry, GoodType.FILE, os.urandom(32))
    head = log.registry.latest_tree_head()
    assert head is not None
    with pytest.raises(InvalidInput, match="STATE_COMMITMENT"):
        build_leaf_tlog_proof(log.registry, head.tree_size - 1)


# -- mutation probes: each refused at the step that catches it ---------------------------------


def _with_note(proof: TlogProof, note: Note) -> TlogProof:
    return TlogProof(proof.index, proof.inclusion_proof, note.to_bytes(), proof.extra)


def _flipped(line: NoteSignature) -> NoteSignature:
    flipped = bytearray(line.signature)
    flipped[-1] ^= 1
    return NoteSignature(line.name, line.key_id, bytes(flipped))


def _text(proof: TlogProof) -> str:
    return proof.to_bytes().decode()


def _extra_with(proof: TlogProof, **changes: object) -> TlogProof:
    import json

    assert proof.extra is not None
    document = {**json.loads(proof.extra), **changes}
    return TlogProof(proof.index, proof.inclusion_proof, proof.checkpoint, canonical_json(document))


def _mutations(proof: TlogProof, witness: CosignerV1) -> dict[str, tuple[TlogProof | str, str]]:
    note = parse_note(proof.checkpoint)
    root_line = note.text.split("\n")[2]
    other_root = base64.b64encode(bytes(32)).decode()
    assert proof.extra is not None
    payload_changed = _extra_with(proof, payload={"changed": True})
    return {
        "index-plus-1": (
            TlogProof(proof.index + 1, proof.inclusion_proof, proof.checkpoint, proof.extra),
            "inclusion",
        ),
        "proof-line-changed": (
            TlogProof(
                proof.index,
                (bytes(32), *proof.inclusion_proof[1:]),
                proof.checkpoint,
                proof.extra,
            ),
            "inclusion",
        ),
        "proof-line-dropped": (
            TlogProof(proof.index, proof.inclusion_proof[:-1], proof.checkpoint, proof.extra),
            "inclusion",
        ),
        "extra-timestamp-changed": (_extra_with(proof, timestamp=1), "inclusion"),
        "extra-actor-changed": (_extra_with(proof, actor="0x" + "11" * 20), "inclusion"),
        "extra-payload-changed": (payload_changed, "leaf"),
        "extra-not-canonical": (
            TlogProof(proof.index, proof.inclusion_proof, proof.checkpoint, proof.extra + b" "),
            "leaf",
        ),
        "extra-missing": (
            TlogProof(proof.index, proof.inclusion_proof, proof.checkpoint, None),
            "leaf",
        ),
        "checkpoint-root-changed": (
            _text(proof).replace(root_line, other_root),
            "checkpoint",
        ),
        "checkpoint-size-changed": (
            _text(proof).replace(f"\n{note.text.split(chr(10))[1]}\n", "\n99\n", 1),
            "checkpoint",
        ),
        # Only a witness's line left: no log key signed it.
        "log-signatures-removed": (
            _with_note(proof, Note(note.text, (witness.sign(note.text),))),
            "checkpoint",
        ),
        "log-signature-flipped": (
            _with_note(
                proof, Note(note.text, (_flipped(note.signatures[0]), *note.signatures[1:]))
            ),
            "checkpoint",
        ),
    }


@pytest.mark.parametrize(
    "name",
    [
        "index-plus-1",
        "proof-line-changed",
        "proof-line-dropped",
        "extra-timestamp-changed",
        "extra-actor-changed",
        "extra-payload-changed",
        "extra-not-canonical",
        "extra-missing",
        "checkpoint-root-changed",
        "checkpoint-size-changed",
        "log-signatures-removed",
        "log-signature-flipped",
    ],
)
@pytest.mark.parametrize("what", ["registration", "receipt"])
def test_mutation_is_refused_at_its_step(log: Log, name: str, what: str) -> None:
    proof = (
        build_good_tlog_proof(log.registry, GoodType.FILE, log.file)
        if what == "registration"
        else build_receipt_tlog_proof(log.registry, log.transfer_id)
    )
    assert _check(log, proof).status == "verified"  # the unmutated proof passes
    mutated, step = _mutations(proof, log.witnesses["w1"])[name]
    data = mutated.encode() if isinstance(mutated, str) else mutated.to_bytes()
    with pytest.raises(BundleInvalid) as caught:
        check_tlog_proof(TlogProof.parse(data), TrustPolicy.of(log.root()), log.chain)
    assert caught.value.step == step, caught.value.detail


def test_an_origin_no_trust_root_names_is_untrusted(log: Log) -> None:
    proof = build_good_tlog_proof(log.registry, GoodType.FILE, log.file)
    origin = log.registry.checkpoint_signer.keys.origin
    renamed = _text(proof).replace(f"\n\n{origin}\n", "\n\nelsewhere.test/tlog\n", 1)
    with pytest.raises(UntrustedRegistry, match=r"elsewhere\.test/tlog"):
        check_tlog_proof(TlogProof.parse(renamed), TrustPolicy.of(log.root()), log.chain)
    # A root pinned before issue 15 names no log: it cannot vouch for a checkpoint.
    document = trust_root_of(log.registry).document()
    before = TrustRoot.model_validate({k: v for k, v in document.items() if k != "transparency"})
    with pytest.raises(UntrustedRegistry, match="pinned before issue 15"):
        check_tlog_proof(proof, TrustPolicy.of(before), log.chain)


def test_an_origin_another_pinned_log_has_is_refused_at_the_checkpoint(log: Log) -> None:
    """The origin only picks the root: a checkpoint naming another pinned log's origin must be
    signed by that log's keys, which it is not."""
    proof = build_good_tlog_proof(log.registry, GoodType.FILE, log.file)
    origin = log.registry.checkpoint_signer.keys.origin
    renamed = _text(proof).replace(f"\n\n{origin}\n", "\n\nelsewhere.test/tlog\n", 1)
    other = log.root(origin="elsewhere.test/tlog")
    with pytest.raises(BundleInvalid) as caught:
        check_tlog_proof(TlogProof.parse(renamed), TrustPolicy.of(other), log.chain)
    assert caught.value.step == "checkpoint"


# -- a witnessed log, end to end ------------------------------------------------------------------


def test_a_witnessed_registrys_tlog_proof_carries_the_quorum_and_verifies(
    tmp_path: Path,
) -> None:
    """A registry with a 2-of-2 witness policy, two real witnesses over loopback HTTP
    (``tracemark witness``'s app): only the cosigned checkpoint is anchored, its tlog-proof
    carries both cosignatures, and it verifies under the registry's own trust root (which names
    the policy); stripped of one cosignature it is refused at ``witness``."""
    import httpx2

    from anchoring.witnessing import Witnessing
    from api.trustroot import TrustRootConfig, registry_trust_root
    from registry.logkeys import LogNoteKeys
    from registry.witnessconfig import init_witness, load_witness_config
    from registry.witnesspolicy import parse_policy
    from tests.witness_server import running_witness

    provider = EthereumTesterProvider()
    w3 = Web3(provider)
    key = provider.ethereum_tester.backend.account_keys[0]  # type: ignore[attr-defined]
    operator: LocalAccount = Account.from_key(key.to_bytes())
    address = Chain(w3, "0x" + "00" * 20).deploy(operator)
    chain = Chain(w3, address)
    domain = Domain(chain_id=w3.eth.chain_id, verifying_contract=address)
    log_keys = LogNoteKeys.from_seeds("registry.test/tlog", os.urandom(32), os.urandom(32))
    configs = [
        load_witness_config(
            init_witness(tmp_path / name, f"witness.test/{name}", [log_keys.vkeys()])
        )
        for name in ("w1", "w2")
    ]
    with running_witness(configs[0]) as (url1, _), running_witness(configs[1]) as (url2, _):
        policy = parse_policy(
            f"witness w1 {configs[0].vkeys()[1]} {url1}\n"
            f"witness w2 {configs[1].vkeys()[0]} {url2}\n"
            "group both 2 w1 w2\nquorum both\n"
        )
        engine = create_db_engine(f"sqlite:///{tmp_path / 'registry.db'}")
        upgrade(engine)
        clock = Clock()
        registry = Registry(
            engine,
            domain=domain,
            account=Account.create(),
            master_key=secrets.token_bytes(32),
            clock=clock,
            note_keys=log_keys,
            witness_policy=policy,
        )
        creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
        fingerprint = os.urandom(32)
        registry.register(registration(creator, clock(), fingerprint=fingerprint, domain=domain))
        registry.sequence_all()
        worker = AnchorWorker(
            registry, chain, operator, AnchorPolicy(max_entries=1, max_age_seconds=0)
        )
        worker.run_until_idle()
        assert chain.root_at(2) is None  # not witnessed yet: not anchored
        with httpx2.Client(timeout=10.0) as http:
            round_ = Witnessing(registry, policy, http=http).step()
        assert round_ is not None and round_.published
        worker.run_until_idle()
        provider.ethereum_tester.mine_blocks(3)  # type: ignore[attr-defined]
        worker.run_until_idle()
    root = registry_trust_root(registry, TrustRootConfig(name="witnessed", confirmations=1))
    proof = build_good_tlog_proof(registry, GoodType.FILE, fingerprint)
    note = parse_note(proof.checkpoint)
    assert sorted(s.name for s in note.signatures[-2:]) == ["witness.test/w1", "witness.test/w2"]
    report = check_tlog_proof(TlogProof.parse(proof.to_bytes()), TrustPolicy.of(root), chain)
    assert report.status == "verified"
    assert report.checkpoint.witnessed_by == ("w1", "w2")
    stripped = _with_note(
        proof, Note(note.text, tuple(s for s in note.signatures if s.name != "witness.test/w2"))
    )
    with pytest.raises(BundleInvalid) as caught:
        check_tlog_proof(stripped, TrustPolicy.of(root), chain)
    assert caught.value.step == "witness"
