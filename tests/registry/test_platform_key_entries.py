"""Platform attestation keys in the log (issue 18 item 4): every enrollment is a PLATFORM_KEY
entry (kind 10); a platform's own rotation needs its old key's consent; an attestation's
offline proof (``tracemark-attestation-proof/v2``) carries its key's enrollment, and refuses
one that is missing, of another key or platform, later than the attestation, not included, or
edited. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account

from readmodels.attestationproofs import build_attestation_proof
from registry import log
from registry.attestations import (
    ATTESTATION_RECORD,
    PLATFORM_KEY_ENROLLMENT,
    PLATFORM_KEY_ROTATION,
    AttestationPayload,
    Level,
    enroll_message,
    platform_key_subject,
    rotation_message,
)
from registry.attestationstore import Attestation, attest
from registry.db import write_transaction
from registry.eip712 import address_bytes
from registry.errors import InvalidInput, RotationUnconsented, WrongSigner
from registry.leaf import NO_GOOD, EntryKind, LeafData
from registry.merkle import hash_leaf, verify_inclusion
from registry.platformkeypayload import PlatformKeyPayload
from registry.platformkeys import (
    enroll_own_key,
    enroll_platform_key,
    logged_enrollment,
    platform_keys_t,
)
from registry.records import checksum, log_registry_record_at_once
from registry.service import Registry
from registry.signatures import sign
from tests.conftest import Clock
from tests.platformkeys import PLATFORM_KEYS, platform_address, sign_attestation
from tests.trust import trust_root_of
from verifier.attestationproof import (
    PROOF_FORMAT,
    PROOF_FORMAT_V2,
    AttestationProof,
    check_attestation_proof,
)
from verifier.errors import BundleInvalid

CARDHUB, KEYSHOP = PLATFORM_KEYS["cardhub"], PLATFORM_KEYS["keyshop"]
NEW_KEY = bytes.fromhex("ab" * 32)


def _own(
    registry: Registry,
    key: bytes,
    *,
    platform: str = "cardhub",
    consent_by: bytes | None = None,
    nonce: int = 1,
) -> Any:
    """``enroll_own_key`` as a platform calls it: ``key`` proves possession; ``consent_by``
    (the key in force) signs the rotation."""
    address = Account.from_key(key).address
    deadline = registry.clock() + 600
    signature = sign(
        PLATFORM_KEY_ENROLLMENT,
        enroll_message(platform, address, nonce, deadline),
        registry.domain,
        key,
    )
    consent = None
    if consent_by is not None:
        old = Account.from_key(consent_by).address
        message = rotation_message(platform, old, address, nonce, deadline)
        consent = sign(PLATFORM_KEY_ROTATION, message, registry.domain, consent_by)
    return enroll_own_key(
        registry,
        platform=platform,
        address=address,
        nonce=nonce,
        deadline=deadline,
        signature=signature,
        consent_signature=consent,
    )


_nonces = iter(range(1, 2**40))


def _attest(
    registry: Registry, key: bytes, platform: str = "cardhub", reference: str = "s-1"
) -> Attestation:
    nonce, deadline = next(_nonces), registry.clock() + 600
    return attest(
        registry,
        platform=platform,
        reference=reference,
        level=Level.ID_CARD,
        nonce=nonce,
        deadline=deadline,
        signature=sign_attestation(
            registry, platform, reference, Level.ID_CARD, nonce, deadline, key
        ),
    )


def _entry_payload(registry: Registry, address: str, platform: str = "cardhub") -> Any:
    enrolled = logged_enrollment(registry.engine, platform, address)
    assert enrolled is not None
    return enrolled


def test_an_enrollment_is_a_platform_key_entry_in_the_head(registry: Registry) -> None:
    """The operator's enrollment: kind 10, good type 0, the platform's subject word, actor the
    registry, payload hash of its RFC 8785 JSON; in the published head by an inclusion proof;
    ``enrolled_by: operator`` and no signature of the platform's."""
    address = platform_address("cardhub")
    key = enroll_platform_key(registry, "cardhub", address)
    assert key.enrolled_by == "operator"
    enrolled = _entry_payload(registry, address)
    entry = registry.entry_at(enrolled.leaf_index)
    assert (entry.kind, entry.good_type) == (EntryKind.PLATFORM_KEY, None)
    assert entry.fingerprint == platform_key_subject("cardhub")
    assert entry.actor == address_bytes(registry.address)
    assert entry.payload_hash == enrolled.payload.payload_hash()
    leaf = entry.leaf_data()
    assert leaf[32:64] == bytes(31) + b"\x0a" and leaf[64:96] == bytes(32)
    assert LeafData.decode(leaf).kind is EntryKind.PLATFORM_KEY
    payload = enrolled.payload
    assert (payload.platform, payload.key, payload.enrolled_by, payload.supersedes) == (
        "cardhub",
        address,
        "operator",
        None,
    )
    assert payload.possession is None and payload.consent is None
    head = registry.latest_tree_head()
    assert head is not None and head.tree_size > enrolled.leaf_index
    verify_inclusion(
        hash_leaf(leaf),
        enrolled.leaf_index,
        head.tree_size,
        registry.inclusion_proof(enrolled.leaf_index, head.tree_size),
        head.root,
    )
    # The payload reads back only in its canonical form; another platform is another subject.
    assert PlatformKeyPayload.from_json(payload.to_json()) == payload
    assert platform_key_subject("keyshop") != platform_key_subject("cardhub")
    # The operator's next enrollment names the key it supersedes.
    enroll_platform_key(registry, "cardhub", platform_address("keyshop"))
    second = _entry_payload(registry, platform_address("keyshop")).payload
    assert second.supersedes == address and second.enrolled_by == "operator"
    assert registry.check_log().problems == []


def test_a_platforms_rotation_needs_its_old_keys_consent(registry: Registry) -> None:
    """The first key: the platform's proof of possession, no consent. A rotation without the
    old key's consent, or consented by another key, is refused and logs nothing; with it, the
    entry carries both signatures, which check under the domain. The operator may still
    enroll a key (a lost key's way back), and its entry says so."""
    first = _own(registry, CARDHUB)
    assert first.enrolled_by == "platform"
    logged = _entry_payload(registry, first.address).payload
    assert logged.enrolled_by == "platform" and logged.consent is None
    assert logged.possession is not None and logged.possession.signer == first.address
    logged.check_signatures()
    size = registry.latest_tree_head().tree_size  # type: ignore[union-attr]

    with pytest.raises(RotationUnconsented):
        _own(registry, NEW_KEY, nonce=2)
    with pytest.raises(WrongSigner):
        _own(registry, NEW_KEY, consent_by=KEYSHOP, nonce=2)  # not the key in force
    with pytest.raises(WrongSigner):
        _own(registry, NEW_KEY, consent_by=NEW_KEY, nonce=2)  # the new key cannot consent
    assert registry.latest_tree_head().tree_size == size  # type: ignore[union-attr]
    assert logged_enrollment(registry.engine, "cardhub", Account.from_key(NEW_KEY).address) is None

    rotated = _own(registry, NEW_KEY, consent_by=CARDHUB, nonce=2)
    entry = _entry_payload(registry, rotated.address).payload
    assert entry.supersedes == first.address and entry.enrolled_by == "platform"
    assert entry.consent is not None and entry.consent.signer == first.address
    entry.check_signatures()
    # A first key's enrollment has no key in force to consent.
    with pytest.raises(InvalidInput):
        _own(registry, KEYSHOP, platform="keyshop", consent_by=CARDHUB)

    # The operator's way back: no consent asked, and the log says the operator did it.
    enroll_platform_key(registry, "cardhub", platform_address("keyshop"))
    back = _entry_payload(registry, platform_address("keyshop")).payload
    assert (back.enrolled_by, back.supersedes) == ("operator", rotated.address)
    assert registry.check_log().problems == []


def test_the_proof_carries_the_keys_enrollment_and_says_who_enrolled_it(
    registry: Registry,
) -> None:
    """A platform-enrolled key's attestation proves with ``enrolled_by: platform``; an
    operator-enrolled key's verifies too, and says the operator enrolled it."""
    _own(registry, CARDHUB)
    done = _attest(registry, CARDHUB)
    enroll_platform_key(registry, "keyshop", platform_address("keyshop"))
    theirs = _attest(registry, KEYSHOP, platform="keyshop")
    root = trust_root_of(registry)

    proof = build_attestation_proof(registry, done.id)
    assert proof.format == PROOF_FORMAT_V2 and proof.key_enrollment is not None
    proved = check_attestation_proof(AttestationProof.parse(json.dumps(proof.to_json())), root)
    assert (proved.platform_key, proved.enrolled_by) == (platform_address("cardhub"), "platform")
    assert proved.key_leaf_index == proof.key_enrollment.leaf_index < done.leaf_index
    assert "enrolled by the platform itself" in proved.summary()

    by_operator = check_attestation_proof(build_attestation_proof(registry, theirs.id), root)
    assert by_operator.enrolled_by == "operator"
    assert by_operator.as_dict()["enrolled_by"] == "operator"
    assert "OPERATOR enrolled" in by_operator.summary()
    assert registry.check_log().problems == []


def _refused(document: dict[str, Any], registry: Registry, step: str, words: str) -> None:
    with pytest.raises(BundleInvalid) as caught:
        check_attestation_proof(AttestationProof.model_validate(document), trust_root_of(registry))
    assert caught.value.step == step, caught.value.detail
    assert words in caught.value.detail, caught.value.detail


def _enrollment_member(registry: Registry, address: str, platform: str, size: int) -> Any:
    """The ``key_enrollment`` member of ``address``'s genuine entry, proved to ``size``."""
    enrolled = _entry_payload(registry, address, platform)
    return {
        "payload": enrolled.payload.document(),
        "leaf_index": enrolled.leaf_index,
        "timestamp": enrolled.timestamp,
        "inclusion_proof": [
            "0x" + h.hex() for h in registry.inclusion_proof(enrolled.leaf_index, size)
        ],
    }


def test_each_tampering_of_the_enrollment_is_refused(registry: Registry) -> None:
    """Mutation probes: the enrollment of another key of the platform (key swapped), of the
    same key for another platform, dropped (a /v1 proof of a signed attestation), its
    inclusion proof broken, its payload or timestamp edited, its consent re-signed by
    another key: each refused with its reason."""
    old = platform_address("cardhub")
    # The same key enrolled for keyshop too: a genuine entry of another platform.
    enroll_platform_key(registry, "keyshop", Account.from_key(NEW_KEY).address)
    _own(registry, CARDHUB)
    _own(registry, NEW_KEY, consent_by=CARDHUB, nonce=2)
    done = _attest(registry, NEW_KEY)
    good = build_attestation_proof(registry, done.id).to_json()
    size = good["tree_head"]["tree_size"]
    assert check_attestation_proof(AttestationProof.model_validate(good), trust_root_of(registry))

    def changed(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        document = json.loads(json.dumps(good))
        change(document)
        return document

    def swap_key(d: dict[str, Any]) -> None:
        d["key_enrollment"] = _enrollment_member(registry, old, "cardhub", size)

    def other_platform(d: dict[str, Any]) -> None:
        address = Account.from_key(NEW_KEY).address
        d["key_enrollment"] = _enrollment_member(registry, address, "keyshop", size)

    def dropped(d: dict[str, Any]) -> None:
        d["format"] = PROOF_FORMAT
        del d["key_enrollment"]

    def broken_inclusion(d: dict[str, Any]) -> None:
        hashes = d["key_enrollment"]["inclusion_proof"]
        hashes[0] = hashes[0][:-1] + ("0" if hashes[0][-1] != "0" else "1")

    def other_time(d: dict[str, Any]) -> None:
        d["key_enrollment"]["timestamp"] += 1

    def edited_at(d: dict[str, Any]) -> None:
        d["key_enrollment"]["payload"]["enrollment"]["enrolled_at"] += 1

    def consent_by_another(d: dict[str, Any]) -> None:
        consent = d["key_enrollment"]["payload"]["consent"]
        message = rotation_message(
            "cardhub", old, Account.from_key(NEW_KEY).address, consent["nonce"], consent["deadline"]
        )
        forged = sign(PLATFORM_KEY_ROTATION, message, registry.domain, KEYSHOP)
        consent["signature"] = "0x" + forged.hex()

    def not_the_platform(d: dict[str, Any]) -> None:
        # The log's word cannot be upgraded: an operator's enrollment made to read "platform"
        # needs the new key's signature, and the leaf commits to the payload anyway.
        d["key_enrollment"]["payload"]["enrollment"]["enrolled_by"] = "operator"

    _refused(changed(swap_key), registry, "key-enrollment", "not the signing key")
    _refused(changed(other_platform), registry, "key-enrollment", "is for platform keyshop")
    _refused(changed(dropped), registry, "key-enrollment", "carries no key_enrollment")
    _refused(changed(broken_inclusion), registry, "inclusion", "its key's enrollment")
    _refused(changed(other_time), registry, "inclusion", "its key's enrollment")
    _refused(changed(edited_at), registry, "inclusion", "its key's enrollment")
    _refused(changed(consent_by_another), registry, "key-enrollment", "")
    _refused(changed(not_the_platform), registry, "key-enrollment", "its payload")
    # The attestation's own payload edited: its signature and leaf no longer hold.
    flipped = changed(lambda d: d["payload"]["attestation"].update(level="face"))
    _refused(flipped, registry, "platform-signature", "")


def test_an_enrollment_logged_after_the_attestation_is_refused(
    registry: Registry, clock: Clock
) -> None:
    """A registry that let a key sign before its enrollment was logged (simulated: the row
    written by hand, the entry later): the proof's enrollment is genuine and included, but
    later than the attestation, so it does not show the key was the platform's then."""
    address = platform_address("cardhub")
    with write_transaction(registry.engine) as conn:
        conn.execute(
            platform_keys_t.insert().values(
                platform="cardhub",
                address=address_bytes(address),
                enrolled_at=clock(),
                enrolled_by="operator",
            )
        )
    done = _attest(registry, CARDHUB)
    with write_transaction(registry.engine) as conn:
        conn.execute(platform_keys_t.delete())
    # Before its entry, there is no proof of the key to build.
    with pytest.raises(Exception, match="no logged enrollment"):
        build_attestation_proof(registry, done.id)
    enroll_platform_key(registry, "cardhub", address)
    late = build_attestation_proof(registry, done.id).to_json()
    assert late["key_enrollment"]["leaf_index"] > done.leaf_index
    _refused(late, registry, "key-enrollment", "not before the attestation")


def test_a_v1_attestation_keeps_proving_as_before(registry: Registry) -> None:
    """An attestation logged before platform keys (payload /v1, no key) is proved by a /v1
    proof as before: the registry's word only, no enrollment asked; a /v2 proof of it is
    refused (a /v1 payload names no key)."""
    with write_transaction(registry.engine) as conn:
        log.lock_log(conn)
        account = registry._signing_account(conn)
        payload = AttestationPayload(
            "cardhub",
            registry.reference_hash("cardhub", "old"),
            Level.PHONE,
            registry.clock(),
            checksum(address_bytes(account.address)),
            registry.domain,
        )
        logged = log_registry_record_at_once(
            conn,
            payload,
            primary_type=ATTESTATION_RECORD,
            kind=EntryKind.ATTESTATION,
            good_type=NO_GOOD,
            fingerprint=payload.subject,
            account=account,
            domain=registry.domain,
            now=registry.clock(),
            state_map=registry._committing,
            checkpoint_signer=registry.checkpoint_signer,
        )
    head = registry.latest_tree_head()
    assert head is not None
    document = AttestationProof(
        format=PROOF_FORMAT,
        payload=payload.document(),
        leaf_index=logged.leaf_index,
        timestamp=logged.timestamp,
        inclusion_proof=tuple(registry.inclusion_proof(logged.leaf_index, head.tree_size)),
        tree_head=head,
        anchor=None,
    ).to_json()
    assert "key_enrollment" not in document  # a /v1 document, as /v1 readers know it
    proved = check_attestation_proof(
        AttestationProof.model_validate(document), trust_root_of(registry)
    )
    assert (proved.platform_key, proved.enrolled_by, proved.key_leaf_index) == (None, None, None)
    assert "the registry's word only" in proved.summary()
    # A /v2 document must carry an enrollment, and a /v1 payload has none to carry.
    with pytest.raises(ValueError):
        AttestationProof.model_validate({**document, "format": PROOF_FORMAT_V2})
    enroll_platform_key(registry, "cardhub", platform_address("cardhub"))
    head = registry.latest_tree_head()
    assert head is not None
    stray = AttestationProof.model_validate(
        {
            **document,
            "format": PROOF_FORMAT_V2,
            "inclusion_proof": [
                "0x" + h.hex() for h in registry.inclusion_proof(logged.leaf_index, head.tree_size)
            ],
            "tree_head": json.loads(head.model_dump_json()),
            "key_enrollment": _enrollment_member(
                registry, platform_address("cardhub"), "cardhub", head.tree_size
            ),
        }
    ).to_json()
    _refused(stray, registry, "key-enrollment", "names no key")
