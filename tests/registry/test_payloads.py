"""Payload documents (registry.payloads): the typed documents give back, byte for byte, what the
registry stores and hashes into each leaf, and refuse anything that would hash otherwise."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import Engine, text

from registry.canonicaljson import canonical_json
from registry.creator import CreatorKeys, sign_revocation
from registry.eip712 import DEV_DOMAIN
from registry.errors import InvalidInput
from registry.fingerprints import GoodType
from registry.leaf import EntryKind
from registry.payloads import (
    MAX_PAYLOAD_BYTES,
    KeyHandoverPayload,
    RegistrationPayload,
    RevocationPayload,
    StateCommitmentPayload,
    signed_payload_from_json,
)
from registry.royalty import RoyaltyPolicy, policy_document
from registry.service import Registry
from registry.transferpayload import TransferPayload
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration
from tests.registry.test_transfers import CREATOR, party, sale

POLICY = RoyaltyPolicy.parse(
    {"recipients": [{"address": "0x" + "ab" * 20, "bps": 750, "label": "studio"}]}
)
TYPES: dict[EntryKind, Any] = {
    EntryKind.REGISTER: RegistrationPayload,
    EntryKind.CONFLICT: RegistrationPayload,
    EntryKind.REVOKE: RevocationPayload,
    EntryKind.KEY_HANDOVER: KeyHandoverPayload,
    EntryKind.TRANSFER: TransferPayload,
    EntryKind.STATE_COMMITMENT: StateCommitmentPayload,
}


def _stored(engine: Engine) -> list[tuple[EntryKind, str, bytes]]:
    """(kind, stored payload JSON, leaf payload hash) of every entry."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT e.kind, r.payload, e.payload_hash FROM entries e "
                "JOIN signed_records r ON r.id = e.record_id ORDER BY e.id"
            )
        ).all()
    return [(EntryKind(int(kind)), str(payload), bytes(digest)) for kind, payload, digest in rows]


def test_each_kind_gives_back_the_stored_bytes_and_the_leaf_hash(
    registry: Registry, engine: Engine, clock: Clock, make_creator: CreatorFactory
) -> None:
    alice, bob = make_creator(), make_creator()
    first = bytes([1]) * 32
    registry.register(
        registration(alice, clock(), fingerprint=first, policy=POLICY, metadata={"t": "é ✓"})
    )
    registry.register(
        registration(alice, clock(), fingerprint=bytes([2]) * 32, policy=POLICY, product="art")
    )
    registry.register(registration(bob, clock(), fingerprint=first))  # a CONFLICT
    registry.revoke(
        sign_revocation(
            alice,
            DEV_DOMAIN,
            good_type=GoodType.FILE,
            fingerprint=first,
            reason="leaked",
            now=clock(),
        )
    )
    # A first sale, then a priced resale between platforms (royalty shares), then a final one.
    agent, buyer = party("cardhub", "agent-7"), party("keyshop", "buyer-1")
    registry.transfer(sale(bytes([2]) * 32, CREATOR, agent, price=10_000, good_type=GoodType.FILE))
    registry.transfer(
        sale(bytes([2]) * 32, agent, buyer, price=12_345, good_type=GoodType.FILE, key="k-1")
    )
    registry.sequence_all()
    registry.rotate_key(Account.create())

    stored = _stored(engine)
    assert {kind for kind, _, _ in stored} == set(TYPES)
    for kind, payload_json, leaf_payload_hash in stored:
        payload = TYPES[kind].from_json(payload_json)
        assert payload.to_json() == payload_json.encode("utf-8")
        assert payload.payload_hash() == leaf_payload_hash
        assert type(payload).from_document(payload.document()) == payload
        if kind in (EntryKind.REGISTER, EntryKind.CONFLICT, EntryKind.REVOKE):
            assert signed_payload_from_json(payload_json) == payload


def _registration_document(creator: CreatorKeys, clock: Clock) -> dict[str, Any]:
    request = registration(creator, clock(), policy=POLICY, metadata={"title": "x"})
    return request.payload(DEV_DOMAIN).document()


def test_the_builder_is_the_bytes_the_registry_always_wrote(
    make_creator: CreatorFactory, clock: Clock
) -> None:
    # The document as RegistrationRequest.payload built it (a dict) before the type existed.
    request = registration(make_creator(), clock(), policy=POLICY, metadata={"title": "x"})
    legacy = {
        "signed": request.signed.document(),
        "domain": DEV_DOMAIN.as_dict(),
        "royalty_policy": policy_document(POLICY),
        "metadata": {"title": "x"},
    }
    payload = request.payload(DEV_DOMAIN)
    assert payload.to_json() == canonical_json(legacy)
    assert payload.payload_hash() == hashlib.sha256(canonical_json(legacy)).digest()


@pytest.mark.parametrize(
    "mutation",
    [
        "unknown-key",
        "missing-domain",
        "signer-lower-case",
        "nonce-as-number",
        "revocation-inside",
    ],
)
def test_a_document_that_would_hash_otherwise_is_refused(
    mutation: str, make_creator: CreatorFactory, clock: Clock
) -> None:
    document = _registration_document(make_creator(), clock)
    if mutation == "unknown-key":
        document["note"] = "x"
    elif mutation == "missing-domain":
        del document["domain"]
    elif mutation == "signer-lower-case":
        document["signed"]["signer"] = document["signed"]["signer"].lower()
    elif mutation == "nonce-as-number":
        document["signed"]["message"]["nonce"] = int(document["signed"]["message"]["nonce"])
    elif mutation == "revocation-inside":
        document["signed"]["type"] = "Revocation"
    with pytest.raises(InvalidInput):
        RegistrationPayload.from_json(json.dumps(document))


def test_a_payload_is_bounded_and_json() -> None:
    with pytest.raises(InvalidInput, match="limit"):
        RegistrationPayload.from_json(b" " * (MAX_PAYLOAD_BYTES + 1))
    with pytest.raises(InvalidInput, match="not JSON"):
        RevocationPayload.from_json(b"{")
    with pytest.raises(InvalidInput):
        KeyHandoverPayload.from_json(b"[]")


def test_a_handover_payload_is_validated_when_built() -> None:
    old, new = Account.create().address, Account.create().address
    with pytest.raises(InvalidInput):
        KeyHandoverPayload(old, new, 0, bytes(65), DEV_DOMAIN)
    with pytest.raises(InvalidInput):
        KeyHandoverPayload(old, new, 5, bytes(64), DEV_DOMAIN)
    with pytest.raises(InvalidInput):
        KeyHandoverPayload("0x1234", new, 5, bytes(65), DEV_DOMAIN)
    payload = KeyHandoverPayload(old.lower(), new, 5, bytes(65), DEV_DOMAIN)
    assert payload.old_key == old


@pytest.mark.parametrize("signed_type", [[], {}, 1, None])
def test_a_signed_type_that_is_not_text_is_refused_never_a_crash(
    signed_type: object, make_creator: CreatorFactory, clock: Clock
) -> None:
    document = _registration_document(make_creator(), clock)
    document["signed"]["type"] = signed_type
    for canonical in (True, False):
        with pytest.raises(InvalidInput):
            RegistrationPayload.from_document(document, canonical=canonical)
    with pytest.raises(InvalidInput):
        signed_payload_from_json(json.dumps(document))


def test_a_canonical_false_parse_is_the_same_value_as_the_strict_one(
    make_creator: CreatorFactory, clock: Clock
) -> None:
    document = _registration_document(make_creator(), clock)
    strict = RegistrationPayload.from_document(document)
    assert RegistrationPayload.from_document(document, canonical=False) == strict
    document["signed"]["signer"] = document["signed"]["signer"].lower()
    lenient = RegistrationPayload.from_document(document, canonical=False)
    # Read leniently, it writes the canonical bytes: a caller compares hashes to refuse it.
    assert (
        lenient.payload_hash()
        == strict.payload_hash()
        != hashlib.sha256(canonical_json(document)).digest()
    )
