"""Registering goods through the service, on SQLite and PostgreSQL.

THREATS 5 (one REGISTER per good, CONFLICT never overwrites), 12-17 (signature rules, as a
registry applies them), and "bad input changes nothing".
"""

from __future__ import annotations

import dataclasses
import os

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from sqlalchemy import Engine, text

from registry.codesfile import PreparedBatch, codes_source, prepare_code_batch
from registry.creator import CreatorKeys, sign_batch_registration
from registry.eip712 import DEV_DOMAIN, Domain, typed_data
from registry.errors import (
    ExpiredDeadline,
    InvalidInput,
    MalformedSignature,
    NonceReused,
    UnknownProduct,
    WrongSigner,
)
from registry.fingerprints import GoodType, Use, code_fingerprint
from registry.leaf import EntryKind
from registry.requests import RegistrationRequest
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
from registry.signatures import sign
from registry.signed import SignedMessage
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import NO_ROYALTY, counts, registration

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _with_signature(request: RegistrationRequest, signature: bytes) -> RegistrationRequest:
    return dataclasses.replace(
        request, signed=dataclasses.replace(request.signed, signature=signature)
    )


def _refused(registry: Registry, engine: Engine, request: RegistrationRequest, error: type) -> None:
    before = counts(engine)
    with pytest.raises(error):
        registry.register(request)
    assert counts(engine) == before, "a refused request must change nothing"


# -- one registration per good ------------------------------------------------------------------


def test_register_queues_then_sequences(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    fingerprint = os.urandom(32)
    entry = registry.register(registration(creator, clock(), fingerprint=fingerprint))
    assert (entry.kind, entry.status, entry.leaf_index) == (EntryKind.REGISTER, "queued", None)
    registry.sequence_all()
    [logged] = registry.history(GoodType.FILE, fingerprint)
    assert logged.leaf_index == 0 and logged.actor.hex() == creator.address[2:].lower()


def test_same_creator_again_is_idempotent_and_writes_nothing(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    fingerprint = os.urandom(32)
    first = registry.register(registration(creator, clock(), fingerprint=fingerprint))
    before = counts(engine)
    again = registry.register(registration(creator, clock(), fingerprint=fingerprint))
    assert again.status == "already-registered"
    assert again.entry_id == first.entry_id
    assert counts(engine) == before


def test_another_creators_claim_is_a_conflict_never_an_overwrite(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    """THREATS 5: the second claim is logged as CONFLICT; log order proves who was first."""
    first, pirate = make_creator(), make_creator()
    fingerprint = os.urandom(32)
    registry.register(registration(first, clock(), fingerprint=fingerprint))
    registry.sequence_all()
    claim = registry.register(registration(pirate, clock(), fingerprint=fingerprint))
    assert (claim.kind, claim.status) == (EntryKind.CONFLICT, "conflict")
    registry.sequence_all()
    history = registry.history(GoodType.FILE, fingerprint)
    assert [e.kind for e in history] == [EntryKind.REGISTER, EntryKind.CONFLICT]
    assert history[0].actor.hex() == first.address[2:].lower()
    assert history[1].actor.hex() == pirate.address[2:].lower()
    assert history[0].leaf_index is not None and history[1].leaf_index is not None
    assert history[0].leaf_index < history[1].leaf_index


def test_codes_need_a_product_and_a_product_keeps_its_use(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    _refused(
        registry, engine, registration(creator, clock(), good_type=GoodType.CODE), InvalidInput
    )
    registry.register(
        registration(creator, clock(), good_type=GoodType.CODE, product="card", use=Use.SINGLE)
    )
    _refused(
        registry,
        engine,
        registration(
            creator, clock(), good_type=GoodType.CODE, product="card", use=Use.TRANSFERABLE
        ),
        InvalidInput,
    )
    _refused(registry, engine, registration(creator, clock(), product="Not A Slug"), InvalidInput)


def test_a_mistyped_product_is_unknown_unless_it_is_meant_to_be_new(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    """A typo in a slug must not silently start a second product line."""
    registry.register(registration(creator, clock(), product="30-day-card"))
    _refused(
        registry,
        engine,
        registration(creator, clock(), product="30-day-crad", new_product=False),
        UnknownProduct,
    )
    existing = registry.register(
        registration(creator, clock(), product="30-day-card", new_product=False)
    )
    assert existing.status == "queued"
    batch = _batch(creator, _codes(10))
    unknown = dataclasses.replace(
        _batch_request(creator, batch, clock(), product="other"), new_product=False
    )
    before = counts(engine)
    with pytest.raises(UnknownProduct):
        registry.register_batch(unknown, batch.fingerprints())
    assert counts(engine) == before


def test_documents_must_match_their_signed_hashes(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    request = registration(creator, clock(), metadata={"title": "Sword"})
    tampered_metadata = dataclasses.replace(request, metadata={"title": "Shield"})
    _refused(registry, engine, tampered_metadata, InvalidInput)
    other_policy = RoyaltyPolicy.parse({"recipients": [{"address": "0x" + "11" * 20, "bps": 500}]})
    _refused(
        registry, engine, dataclasses.replace(request, royalty_policy=other_policy), InvalidInput
    )


# -- signatures (THREATS 12-17) -------------------------------------------------------------------


def test_cross_chain_and_cross_contract_replay_is_refused(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    """THREATS 12/13: the server's domain, never the client's, decides what was signed."""
    for foreign in (
        Domain(1, DEV_DOMAIN.verifying_contract),
        Domain(DEV_DOMAIN.chain_id, "0x" + "42" * 20),
        dataclasses.replace(DEV_DOMAIN, version="2"),
    ):
        _refused(registry, engine, registration(creator, clock(), domain=foreign), WrongSigner)


def test_malleable_and_malformed_signatures_are_refused(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    """THREATS 14/15/16: each probe is refused for its own reason, and changes nothing."""
    request = registration(creator, clock())
    sig = request.signed.signature
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    high_s_twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    # The twin is a real one: eth-account recovers the creator from it (THREATS.md's facts).
    signable = encode_typed_data(
        full_message=typed_data("Registration", request.signed.message, DEV_DOMAIN)
    )
    assert Account.recover_message(signable, signature=high_s_twin) == creator.address
    assert Account.recover_message(signable, signature=sig[:64] + bytes([v - 27])) == (
        creator.address
    )
    probes: list[tuple[bytes, type[Exception], str]] = [
        (high_s_twin, MalformedSignature, "high-s twin"),
        (sig[:64] + bytes([v - 27]), MalformedSignature, "v must be 27 or 28; re-encode"),
        (sig[:64], MalformedSignature, "65 bytes"),  # EIP-2098 compact
        (sig + b"\x00", MalformedSignature, "65 bytes"),
        (b"", MalformedSignature, "65 bytes"),
        (bytes(65), MalformedSignature, "v must be 27 or 28"),
        (bytes(64) + b"\x1b", MalformedSignature, "r is zero"),
        (b"\x01" * 64 + b"\x1b", WrongSigner, "not made by the claimed signer"),
    ]
    for bad, error, reason in probes:
        before = counts(engine)
        with pytest.raises(error, match=reason) as refused:
            registry.register(_with_signature(request, bad))
        assert type(refused.value) is error, (bad.hex(), refused.value)
        assert counts(engine) == before, "a refused request must change nothing"
    # The genuine signature still registers: the probes were refused for their flaw alone.
    assert registry.register(request).status == "queued"


def test_zero_address_and_other_signers_are_refused(
    registry: Registry, engine: Engine, make_creator: CreatorFactory, clock: Clock
) -> None:
    alice, mallory = make_creator(), make_creator()
    request = registration(alice, clock())
    as_zero = dataclasses.replace(request.signed, signer="0x" + "00" * 20)
    _refused(registry, engine, dataclasses.replace(request, signed=as_zero), WrongSigner)
    as_mallory = dataclasses.replace(request.signed, signer=mallory.address)
    _refused(registry, engine, dataclasses.replace(request, signed=as_mallory), WrongSigner)


def test_reused_nonce_and_expired_deadline_are_refused(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    """THREATS 17: replay is keyed on (signer, nonce), never on signature bytes."""
    first = registration(creator, clock())
    registry.register(first)
    message = {**first.signed.message, "fingerprint": os.urandom(32)}
    signature = sign("Registration", message, DEV_DOMAIN, bytes(creator.account.key))
    replay = dataclasses.replace(
        first, signed=SignedMessage("Registration", message, signature, creator.address)
    )
    _refused(registry, engine, replay, NonceReused)
    late = registration(creator, clock())
    clock.advance(3_601)
    _refused(registry, engine, late, ExpiredDeadline)


# -- bulk batches -------------------------------------------------------------------------------


def _codes(n: int, prefix: str = "CARD") -> list[str]:
    return [f"{prefix}-{i:06d}-X" for i in range(n)]


def _batch(creator: CreatorKeys, codes: list[str]) -> PreparedBatch:
    assert creator.code_key is not None
    return prepare_code_batch(codes_source("\n".join(codes) + "\n"), creator.code_key)


def _batch_request(
    creator: CreatorKeys, batch: PreparedBatch, now: int, product: str = "card"
) -> RegistrationRequest:
    return sign_batch_registration(
        creator,
        DEV_DOMAIN,
        batch,
        good_type=GoodType.CODE,
        product=product,
        use=Use.SINGLE,
        royalty_policy=NO_ROYALTY,
        metadata={},
        now=now,
        new_product=True,
    )


def test_bulk_batch_registers_every_code_in_one_head(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    codes = _codes(9_000)  # crosses chunk and tile boundaries
    batch = _batch(creator, codes)
    result = registry.register_batch(_batch_request(creator, batch, clock()), batch.fingerprints())
    assert (result.registered, result.already_registered, result.conflicts) == (9_000, 0, 0)
    head = registry.latest_tree_head()
    # The batch and the head's state commitment (issue 14).
    assert head is not None and head.tree_size == 9_001 == result.tree_size
    assert creator.code_key is not None
    # Entry 1234 is the fingerprint of line 1235, at batch position 1234.
    entry = registry.entry_at(1234)
    assert entry.fingerprint == code_fingerprint(creator.code_key, codes[1234])
    assert entry.position == 1234


def test_bulk_batch_rechecks_items_root_and_count(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    batch = _batch(creator, _codes(100))
    request = _batch_request(creator, batch, clock())
    prints = list(batch.fingerprints())
    before = counts(engine)
    for stream in (
        prints[:-1],
        [*prints, os.urandom(32)],
        [*prints[:-1], os.urandom(32)],
        [prints[1], prints[0], *prints[2:]],
    ):
        with pytest.raises(InvalidInput):
            registry.register_batch(request, iter(stream))
        assert counts(engine) == before, "no half-written batch"
    registry.register_batch(request, iter(prints))  # the nonce was not consumed by failures


def test_bulk_batch_with_a_repeated_good_is_rejected_whole(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    codes = _codes(5_000)
    batch = _batch(creator, codes)
    prints = list(batch.fingerprints())
    prints[4_500] = prints[10]  # a repeat across chunks
    from registry.merkle import RootBuilder, hash_leaf

    builder = RootBuilder()
    builder.extend(hash_leaf(fp) for fp in prints)
    root, count = builder.root(), builder.size
    forged = dataclasses.replace(batch, items_root=root, count=count)
    before = counts(engine)
    with pytest.raises(InvalidInput, match="item 4501 repeats item 11"):
        registry.register_batch(_batch_request(creator, forged, clock()), iter(prints))
    assert counts(engine) == before


def test_bulk_reupload_is_idempotent_and_overlap_with_others_conflicts(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    owner, other = make_creator(), make_creator()
    codes = _codes(300)
    batch = _batch(owner, codes)
    registry.register_batch(_batch_request(owner, batch, clock()), batch.fingerprints())
    again = registry.register_batch(_batch_request(owner, batch, clock()), batch.fingerprints())
    assert (again.registered, again.already_registered) == (0, 300)
    # The same fingerprints claimed by another creator (forced: same bytes, other signer).
    stolen = dataclasses.replace(batch)
    result = registry.register_batch(
        _batch_request(other, stolen, clock(), product="knockoff"), batch.fingerprints()
    )
    assert (result.registered, result.conflicts) == (0, 300)
    with registry.engine.connect() as conn:
        kinds = dict(conn.execute(text("SELECT kind, count(*) FROM entries GROUP BY kind")).all())
    # Two heads, each ending with a state commitment (issue 14); the re-upload appended
    # nothing, so its head is the first one.
    assert kinds == {
        int(EntryKind.REGISTER): 300,
        int(EntryKind.CONFLICT): 300,
        int(EntryKind.STATE_COMMITMENT): 2,
    }


def test_bulk_batch_leaves_match_the_leaf_encoding(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    """The inline leaf packing of the bulk path equals registry.leaf.encode_leaf, leaf by leaf."""
    from registry.leaf import batch_entry_payload_hash, payload_hash
    from registry.merkle import hash_leaf
    from tests.registry.merkle_reference import mth

    batch = _batch(creator, _codes(700))
    request = _batch_request(creator, batch, clock())
    registry.register_batch(request, batch.fingerprints())
    with registry.engine.connect() as conn:
        payload = conn.execute(
            text("SELECT payload FROM signed_records WHERE primary_type = 'BatchRegistration'")
        ).scalar_one()
    import json

    batch_hash = payload_hash(json.loads(payload))
    leaves = []
    for i in range(700):
        entry = registry.entry_at(i)
        assert entry.payload_hash == batch_entry_payload_hash(batch_hash, i)
        leaves.append(entry.leaf_data())
    head = registry.latest_tree_head()
    # The head's last leaf is its state commitment (issue 14).
    assert head is not None and head.tree_size == 701
    leaves.append(registry.entry_at(700).leaf_data())
    assert head.root == mth([hash_leaf(leaf) for leaf in leaves])


def test_batch_proof_shows_the_one_signature_covers_each_good(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    """The bundle's batch_proof: fingerprint -> items root the creator signed, at its position."""
    from registry.eip712 import digest
    from registry.errors import InvalidProof, NotFound
    from registry.merkle import hash_leaf, verify_inclusion
    from registry.signatures import Signature, recover_signer

    batch = _batch(creator, _codes(1_000))
    request = _batch_request(creator, batch, clock())
    registry.register_batch(request, batch.fingerprints())
    signer = recover_signer(
        digest("BatchRegistration", request.signed.message, DEV_DOMAIN),
        Signature.parse(request.signed.signature),
    )
    for index in (0, 1, 255, 256, 511, 999):
        entry = registry.entry_at(index)
        proof = registry.batch_proof(entry)
        assert (proof.position, proof.count) == (index, 1_000)
        assert proof.items_root == request.signed.message["itemsRoot"] and signer == creator.address
        verify_inclusion(
            hash_leaf(entry.fingerprint), index, 1_000, proof.inclusion_proof, proof.items_root
        )
        with pytest.raises(InvalidProof):  # and not for another good of the batch
            verify_inclusion(
                hash_leaf(registry.entry_at((index + 1) % 1_000).fingerprint),
                index,
                1_000,
                proof.inclusion_proof,
                proof.items_root,
            )
    registry.register(registration(creator, clock()))  # a single registration: no batch
    registry.sequence_all()
    with pytest.raises(NotFound):
        registry.batch_proof(registry.entry_at(1_000))


def test_every_entry_of_a_multi_chunk_batch_keeps_its_position(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    """A batch of two chunks: the first with goods another creator holds (the rule's loop),
    the second all new (the rule's fast path, from position CHUNK_SIZE on). Each entry's
    position is its place in the stream, and its payload hash the batch's at that position."""
    import json

    from registry.batches import CHUNK_SIZE
    from registry.leaf import batch_entry_payload_hash, payload_hash

    owner, pirate = make_creator(), make_creator()
    codes = _codes(CHUNK_SIZE + 300)
    # The pirate registers, first, the owner's fingerprints of 100 goods of the first chunk.
    stolen = _batch(owner, codes[100:200])
    registry.register_batch(_batch_request(pirate, stolen, clock()), stolen.fingerprints())
    batch = _batch(owner, codes)
    result = registry.register_batch(_batch_request(owner, batch, clock()), batch.fingerprints())
    assert (result.registered, result.conflicts) == (len(codes) - 100, 100)
    with registry.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT payload FROM signed_records WHERE id = :id"), {"id": result.record_id}
        ).scalar_one()
        rows = conn.execute(
            text(
                "SELECT kind, fingerprint, position, payload_hash FROM entries "
                "WHERE record_id = :id ORDER BY leaf_index"
            ),
            {"id": result.record_id},
        ).all()
    batch_hash = payload_hash(json.loads(stored))
    fingerprints = list(batch.fingerprints())
    assert [row.position for row in rows] == list(range(len(codes)))
    for row in rows:
        assert bytes(row.fingerprint) == fingerprints[row.position]
        assert bytes(row.payload_hash) == batch_entry_payload_hash(batch_hash, row.position)
        held_here = 100 <= row.position < 200
        assert row.kind == int(EntryKind.CONFLICT if held_here else EntryKind.REGISTER)


def test_a_batch_pauses_the_cyclic_collector_and_restores_it(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    """The collector is off while a batch's chunks run (its full passes would scan the whole
    state map again and again) and on again after, also when the batch is refused."""
    import gc

    seen: list[bool] = []
    batch = _batch(creator, _codes(50))
    assert gc.isenabled()
    registry.register_batch(
        _batch_request(creator, batch, clock()),
        batch.fingerprints(),
        progress=lambda _: seen.append(gc.isenabled()),
    )
    assert seen == [False] and gc.isenabled()
    other = _batch(creator, _codes(50, prefix="GONE"))
    stream = [*list(other.fingerprints())[:-1], os.urandom(32)]  # not what was signed
    with pytest.raises(InvalidInput, match="itemsRoot"):
        registry.register_batch(_batch_request(creator, other, clock()), iter(stream))
    assert gc.isenabled()
