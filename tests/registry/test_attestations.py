"""Real-name attestations (issue 18 item 4): logged as ATTESTATION entries, superseded by the
newest, proved offline from a ``tracemark-attestation-proof/v1`` alone; SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from readmodels.attestationproofs import build_attestation_proof
from registry.attestations import (
    ATTESTATION_FORMAT,
    AttestationPayload,
    Level,
    attestation_subject,
)
from registry.attestationstore import attest, read_attestation, read_current
from registry.eip712 import DEV_DOMAIN
from registry.errors import (
    ExpiredDeadline,
    InvalidInput,
    NonceReused,
    NoPlatformKey,
    NotFound,
    WrongSigner,
)
from registry.leaf import NO_GOOD, EntryKind, LeafData
from registry.service import Registry
from tests.conftest import Clock
from tests.platformkeys import PLATFORM_KEYS, enroll, sign_attestation, signed_attest
from tests.trust import trust_root_of
from verifier.attestationproof import AttestationProof, check_attestation_proof
from verifier.errors import BundleInvalid

REGISTRY = "0x" + "11" * 20


def test_levels_are_ordered_and_named() -> None:
    assert [level.label for level in Level] == ["none", "phone", "id-card", "face"]
    assert Level.parse("id-card") is Level.ID_CARD and Level.FACE > Level.ID_CARD > Level.PHONE
    with pytest.raises(InvalidInput):
        Level.parse("passport")


def test_payload_round_trips_only_in_canonical_form() -> None:
    payload = AttestationPayload(
        "cardhub", b"\x07" * 32, Level.PHONE, 1_790_000_000, REGISTRY, DEV_DOMAIN
    )
    document = payload.document()
    assert document["format"] == ATTESTATION_FORMAT
    assert AttestationPayload.from_json(payload.to_json()) == payload
    for key, value in (("level", "PHONE"), ("seller_ref", "0x" + "07" * 31), ("platform", "Card")):
        changed = json.loads(payload.to_json())
        changed["attestation"][key] = value
        with pytest.raises(InvalidInput):
            AttestationPayload.from_document(changed)
    # The subject word names platform and seller: another platform's seller is another subject.
    assert attestation_subject("cardhub", b"\x07" * 32) != attestation_subject(
        "keyshop", b"\x07" * 32
    )


def test_an_attestation_is_logged_and_the_newest_supersedes(
    registry: Registry, clock: Clock
) -> None:
    first = signed_attest(registry, platform="cardhub", reference="seller-42", level=Level.ID_CARD)
    seller_ref = registry.reference_hash("cardhub", "seller-42")
    assert first.seller_ref == seller_ref and first.level is Level.ID_CARD
    entry = registry.entry_at(first.leaf_index)
    assert entry.kind is EntryKind.ATTESTATION and entry.good_type is None
    assert entry.fingerprint == attestation_subject("cardhub", seller_ref)
    assert read_current(registry, "cardhub", seller_ref) == first
    # Another platform's account of the same reference is another seller.
    assert (
        read_current(registry, "keyshop", registry.reference_hash("keyshop", "seller-42")) is None
    )
    clock.advance(60)
    withdrawn = signed_attest(registry, platform="cardhub", reference="seller-42", level=Level.NONE)
    assert read_current(registry, "cardhub", seller_ref) == withdrawn
    assert withdrawn.leaf_index > first.leaf_index
    assert read_attestation(registry, first.id) == first  # kept: the log forgets nothing
    with pytest.raises(NotFound):
        read_attestation(registry, 10_000)


def test_a_logged_attestation_verifies_offline_and_a_flipped_byte_fails(
    registry: Registry,
) -> None:
    done = signed_attest(registry, platform="cardhub", reference="seller-42", level=Level.FACE)
    signed_attest(registry, platform="keyshop", reference="x", level=Level.PHONE)  # a later leaf
    document = build_attestation_proof(registry, done.id).to_json()
    text = json.dumps(document)
    assert "seller-42" not in text  # the reference never leaves the registry
    root = trust_root_of(registry)
    proved = check_attestation_proof(AttestationProof.parse(text), root)
    assert (proved.platform, proved.level, proved.leaf_index) == (
        "cardhub",
        Level.FACE,
        done.leaf_index,
    )
    assert proved.seller_ref == registry.reference_hash("cardhub", "seller-42")

    # Mutation probes: each changed field makes the proof fail at its step.
    def fails(change: object, step: str) -> None:
        mutated = json.loads(text)
        change(mutated)  # type: ignore[operator]
        with pytest.raises(BundleInvalid) as caught:
            check_attestation_proof(AttestationProof.model_validate(mutated), root)
        assert caught.value.step == step

    def flip_level(d: dict) -> None:  # type: ignore[type-arg]
        d["payload"]["attestation"]["level"] = "id-card"

    def flip_ref_byte(d: dict) -> None:  # type: ignore[type-arg]
        ref = d["payload"]["attestation"]["seller_ref"]
        d["payload"]["attestation"]["seller_ref"] = ref[:-1] + ("0" if ref[-1] != "0" else "1")

    def flip_root_byte(d: dict) -> None:  # type: ignore[type-arg]
        root_hex = d["tree_head"]["root"]
        d["tree_head"]["root"] = root_hex[:-1] + ("0" if root_hex[-1] != "0" else "1")

    def other_time(d: dict) -> None:  # type: ignore[type-arg]
        d["timestamp"] += 1

    def other_index(d: dict) -> None:  # type: ignore[type-arg]
        d["leaf_index"] += 1

    # The platform signed level face of its seller: a payload saying id-card, or naming
    # another seller, fails the platform's signature first.
    fails(flip_level, "platform-signature")
    fails(flip_ref_byte, "platform-signature")
    fails(other_time, "inclusion")
    fails(other_index, "inclusion")
    fails(flip_root_byte, "inclusion")


def test_the_leaf_is_a_subjects(registry: Registry) -> None:
    done = signed_attest(registry, platform="cardhub", reference="a", level=Level.PHONE)
    leaf = registry.entry_at(done.leaf_index).leaf_data()
    # Kind word 9, good-type word NO_GOOD: kinds 1-8 keep their numbers and encodings.
    assert leaf[32:64] == bytes(31) + b"\x09" and leaf[64:96] == bytes(32)
    assert LeafData.decode(leaf).kind is EntryKind.ATTESTATION and NO_GOOD == 0


def _signed(
    registry: Registry, level: Level, nonce: int, deadline: int, key: bytes | None = None
) -> dict[str, object]:
    signature = sign_attestation(registry, "cardhub", "s-1", level, nonce, deadline, key)
    return {
        "platform": "cardhub",
        "reference": "s-1",
        "level": level,
        "nonce": nonce,
        "deadline": deadline,
        "signature": signature,
    }


def test_only_the_platforms_key_in_force_signs_its_attestations(
    registry: Registry, clock: Clock
) -> None:
    """Refused: no key enrolled, another key's signature, a signature over another level, an
    expired deadline, a replayed nonce; a rotated key supersedes, the old proof stays valid."""
    deadline = clock() + 600
    with pytest.raises(NoPlatformKey):
        attest(registry, **_signed(registry, Level.PHONE, 1, deadline))  # type: ignore[arg-type]
    old_address = enroll(registry, "cardhub")
    other_key = PLATFORM_KEYS["keyshop"]
    with pytest.raises(WrongSigner):
        attest(registry, **_signed(registry, Level.PHONE, 1, deadline, other_key))  # type: ignore[arg-type]
    over_face = _signed(registry, Level.FACE, 1, deadline)
    with pytest.raises(WrongSigner):
        attest(registry, **{**over_face, "level": Level.PHONE})  # type: ignore[arg-type]
    clock.advance(601)
    with pytest.raises(ExpiredDeadline):
        attest(registry, **_signed(registry, Level.PHONE, 1, deadline))  # type: ignore[arg-type]
    deadline = clock() + 600
    first = attest(registry, **_signed(registry, Level.PHONE, 1, deadline))  # type: ignore[arg-type]
    assert first.signer == old_address
    with pytest.raises(NonceReused):
        attest(registry, **_signed(registry, Level.FACE, 1, deadline))  # type: ignore[arg-type]

    # Rotation: the new key signs from now on, the old one no longer does; the attestation the
    # old key signed still proves offline (its payload carries the key in force then).
    new_key = bytes.fromhex("ab" * 32)
    new_address = enroll(registry, "cardhub", new_key)
    with pytest.raises(WrongSigner):
        attest(registry, **_signed(registry, Level.FACE, 2, deadline))  # type: ignore[arg-type]
    second = attest(registry, **_signed(registry, Level.FACE, 2, deadline, new_key))  # type: ignore[arg-type]
    assert second.signer == new_address != old_address
    root = trust_root_of(registry)
    for done, key in ((first, old_address), (second, new_address)):
        proved = check_attestation_proof(build_attestation_proof(registry, done.id), root)
        assert proved.platform_key == key and proved.level is done.level


def test_the_platforms_signature_is_checked_offline(registry: Registry) -> None:
    """Mutation probes of the platform's signature in a proof: a flipped byte, another key's
    signature, a signature over another level each fail at ``platform-signature``."""
    done = signed_attest(registry, platform="cardhub", reference="s-2", level=Level.ID_CARD)
    document = build_attestation_proof(registry, done.id).to_json()
    assert document["payload"]["format"] == "tracemark-attestation/v2"
    root = trust_root_of(registry)
    assert check_attestation_proof(AttestationProof.model_validate(document), root).platform_key
    signed = document["payload"]["platform_signature"]
    nonce, deadline = signed["nonce"], signed["deadline"]

    def fails_with(signature: bytes) -> None:
        mutated = json.loads(json.dumps(document))
        mutated["payload"]["platform_signature"]["signature"] = "0x" + signature.hex()
        with pytest.raises(BundleInvalid) as caught:
            check_attestation_proof(AttestationProof.model_validate(mutated), root)
        assert caught.value.step == "platform-signature"

    original = bytes.fromhex(signed["signature"][2:])
    flipped = bytearray(original)
    flipped[10] ^= 0x01
    fails_with(bytes(flipped))
    args = (registry, "cardhub", "s-2")
    fails_with(sign_attestation(*args, Level.ID_CARD, nonce, deadline, PLATFORM_KEYS["keyshop"]))
    fails_with(sign_attestation(*args, Level.FACE, nonce, deadline))
    # The original still passes: the probes changed only what they name.
    fails_with_original = sign_attestation(*args, Level.ID_CARD, nonce, deadline)
    assert fails_with_original == original


def test_a_v1_payload_still_reads_but_proves_no_platform_signature() -> None:
    """Attestations logged before platform keys (``tracemark-attestation/v1``) stay readable;
    they carry no platform signature, and asking for one says so."""
    payload = AttestationPayload(
        "cardhub", b"\x07" * 32, Level.PHONE, 1_790_000_000, REGISTRY, DEV_DOMAIN
    )
    assert payload.document()["format"] == ATTESTATION_FORMAT
    assert AttestationPayload.from_json(payload.to_json()).platform_signature is None
    with pytest.raises(WrongSigner):
        payload.check_platform_signature()
