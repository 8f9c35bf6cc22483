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
from registry.errors import InvalidInput, NotFound
from registry.leaf import NO_GOOD, EntryKind, LeafData
from registry.service import Registry
from tests.conftest import Clock
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
    first = attest(registry, platform="cardhub", reference="seller-42", level=Level.ID_CARD)
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
    withdrawn = attest(registry, platform="cardhub", reference="seller-42", level=Level.NONE)
    assert read_current(registry, "cardhub", seller_ref) == withdrawn
    assert withdrawn.leaf_index > first.leaf_index
    assert read_attestation(registry, first.id) == first  # kept: the log forgets nothing
    with pytest.raises(NotFound):
        read_attestation(registry, 10_000)


def test_a_logged_attestation_verifies_offline_and_a_flipped_byte_fails(
    registry: Registry,
) -> None:
    done = attest(registry, platform="cardhub", reference="seller-42", level=Level.FACE)
    attest(registry, platform="keyshop", reference="x", level=Level.PHONE)  # a later leaf
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

    fails(flip_level, "inclusion")
    fails(flip_ref_byte, "inclusion")
    fails(other_time, "inclusion")
    fails(other_index, "inclusion")
    fails(flip_root_byte, "inclusion")


def test_the_leaf_is_a_subjects(registry: Registry) -> None:
    done = attest(registry, platform="cardhub", reference="a", level=Level.PHONE)
    leaf = registry.entry_at(done.leaf_index).leaf_data()
    # Kind word 9, good-type word NO_GOOD: kinds 1-8 keep their numbers and encodings.
    assert leaf[32:64] == bytes(31) + b"\x09" and leaf[64:96] == bytes(32)
    assert LeafData.decode(leaf).kind is EntryKind.ATTESTATION and NO_GOOD == 0
