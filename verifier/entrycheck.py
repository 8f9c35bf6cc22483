"""One bundle entry checked on its own: its leaf re-encoded, and whoever it names as actor.

Steps 2 and 3 of ``verifier.offline.check_bundle``, shared with the tlog-proof check
(``verifier.tlogproofcheck``): the leaf rebuilt from its fields and its payload re-hashed
(a batch's payload once, each good's hash from its position); a REGISTER, CONFLICT or REVOKE
signed by the creator under the trust root's domain (a batch's items root covering this
fingerprint); a TRANSFER attested by the registry key the trust root names for its place; a
DELIVERY as ``verifier.deliverycheck`` says. Payloads are read through their types, in their
canonical form. Pure: no web3, no ORM.
"""

from __future__ import annotations

from typing import Final, TypeVar

from registry.eip712 import checksum_address
from registry.errors import InvalidInput, InvalidProof, SignatureError
from registry.leaf import EntryKind, batch_entry_payload_hash, encode_leaf
from registry.merkle import hash_leaf, verify_inclusion
from registry.payloads import (
    Payload,
    RegistrationPayload,
    RevocationPayload,
    SignedPayload,
)
from registry.requests import metadata_hash
from registry.royalty import policy_hash
from registry.signatures import verify_signature
from registry.transferpayload import TransferPayload
from verifier.bundle import BundleEntry
from verifier.bundlereport import ProvedEntry
from verifier.deliverycheck import check_delivery
from verifier.errors import BundleInvalid
from verifier.trust import TrustRoot

#: The signed struct each kind of entry carries, without and with a batch proof.
SIGNED_TYPES: Final[dict[EntryKind, tuple[str, str]]] = {
    EntryKind.REGISTER: ("Registration", "BatchRegistration"),
    EntryKind.CONFLICT: ("Registration", "BatchRegistration"),
    EntryKind.REVOKE: ("Revocation", "BatchRevocation"),
}

P = TypeVar("P", bound=Payload)

#: The payload type each kind of signed entry is read through (``registry.payloads``).
PAYLOAD_TYPES: Final[dict[EntryKind, type[RegistrationPayload] | type[RevocationPayload]]] = {
    EntryKind.REGISTER: RegistrationPayload,
    EntryKind.CONFLICT: RegistrationPayload,
    EntryKind.REVOKE: RevocationPayload,
}


class CheckCache:
    """Work that many bundles of one export share, done once: the creator's signature over a
    bulk batch's one payload (read through its type), and a head's signer and signature. Keys
    are the full values checked (a payload by its SHA-256), never a claim about them, so a hit
    is the same check's same answer. (An entry's payload digest is kept with the entry:
    ``BundleEntry.payload_sha256``.)"""

    def __init__(self) -> None:
        self._messages: dict[tuple[str, bytes, str], SignedPayload] = {}
        self._heads: set[tuple[int, bytes, bytes, bytes]] = set()


def entry_leaf_hash(entry: BundleEntry, where: str, cache: CheckCache) -> bytes:
    try:
        document_hash = entry.payload_sha256
        batch = entry.batch_proof
        if batch is not None:
            # A batch's payload is hashed once; each good's is SHA-256(that || uint32 position).
            document_hash = batch_entry_payload_hash(document_hash, batch.position)
        # The fields were validated as the entry was read, and ``encode_leaf`` checks them
        # again with ``LeafData``'s errors (a good's entry always has a good type): no
        # ``LeafData`` is built for a third check (4 us an entry).
        leaf_hash = hash_leaf(
            encode_leaf(
                entry.kind,
                entry.good_type,
                entry.fingerprint,
                entry.actor,
                entry.payload_hash,
                entry.timestamp,
            )
        )
    except InvalidInput as exc:
        raise BundleInvalid("leaf", f"{where}: {exc.detail}") from None
    if document_hash != entry.payload_hash:
        what = "the batch payload at this position" if entry.batch_proof else "the payload"
        raise BundleInvalid(
            "leaf", f"{where}: the leaf's payload_hash is not the SHA-256 of {what}"
        )
    return leaf_hash


def check_actor(
    entry: BundleEntry, root: TrustRoot, creator: bytes, where: str, cache: CheckCache
) -> ProvedEntry:
    actor = checksum_address(entry.actor)
    if entry.kind is EntryKind.TRANSFER:
        return _check_transfer(entry, root, creator, where)
    if entry.kind is EntryKind.DELIVERY:
        return check_delivery(entry, root, where)
    if entry.kind is EntryKind.REVOKE and entry.actor != creator:
        raise BundleInvalid(
            "signature",
            f"{where}: a revocation by {actor}, not by the good's creator "
            f"{checksum_address(creator)}",
        )
    try:
        return _check_signed_payload(entry, actor, root, where, cache)
    except (InvalidInput, InvalidProof) as exc:  # SignatureError is an InvalidInput
        step = "batch" if isinstance(exc, InvalidProof) else "signature"
        raise BundleInvalid(step, f"{where}: {exc.detail}") from None


def _check_transfer(entry: BundleEntry, root: TrustRoot, creator: bytes, where: str) -> ProvedEntry:
    """A TRANSFER is the registry's attestation of what a platform reported: the actor is the
    registry key the trust root names for the entry's place in the log, and the payload
    names this good, its creator and the registry."""
    actor = checksum_address(entry.actor)
    expected = root.key_for_entry(entry.leaf_index)
    if entry.actor != expected:
        raise BundleInvalid(
            "signature",
            f"{where}: a TRANSFER's actor {actor} is not the registry key trust root "
            f"{root.label()} names there ({checksum_address(expected)})",
        )
    try:
        transfer = _typed_payload(entry, TransferPayload)
    except InvalidInput as exc:
        raise BundleInvalid(
            "signature", f"{where}: the TRANSFER payload does not parse: {exc.detail}"
        ) from None
    named = (transfer.good_type, transfer.fingerprint, transfer.creator, transfer.registry)
    if named != (entry.good_type, entry.fingerprint, checksum_address(creator), actor):
        raise BundleInvalid(
            "signature",
            f"{where}: the TRANSFER payload does not name this good, its creator and the registry",
        )
    return ProvedEntry(
        EntryKind.TRANSFER,
        entry.leaf_index,
        actor,
        None,
        None,
        None,
        None,
        final=transfer.final,
        platform=transfer.platform,
    )


def _check_signed_payload(
    entry: BundleEntry, actor: str, root: TrustRoot, where: str, cache: CheckCache
) -> ProvedEntry:
    """The creator's signed message in the payload covers this entry's good, was made for
    this registry's domain (the trust root's, never only the one stored with it), and
    recovers to the entry's actor under it."""
    single, batched = SIGNED_TYPES[entry.kind]
    batch = entry.batch_proof
    expected = single if batch is None else batched
    key = (expected, entry.payload_sha256, actor)
    payload = cache._messages.get(key)
    if payload is None:
        payload = _verified_payload(entry, expected, actor, root, where)
        cache._messages[key] = payload
    message = payload.signed.message
    # What was signed is this good.
    if message["goodType"] != int(entry.good_type):
        raise InvalidInput(f"the {expected} is for good type {message['goodType']}")
    if batch is None:
        if message["fingerprint"] != entry.fingerprint:
            raise InvalidInput(f"the {expected} is for another fingerprint")
    else:
        if (message["itemsRoot"], message["count"]) != (batch.items_root, batch.count):
            raise InvalidProof(
                f"the batch proof's items root and count are not the ones the {expected} signed"
            )
        try:
            verify_inclusion(
                hash_leaf(entry.fingerprint),
                batch.position,
                batch.count,
                batch.inclusion_proof,
                batch.items_root,
            )
        except InvalidProof as exc:
            raise InvalidProof(
                f"the fingerprint is not under the signed items root: {exc.detail}"
            ) from None
    reason = message.get("reason")
    return ProvedEntry(
        entry.kind,
        entry.leaf_index,
        actor,
        expected,
        None if batch is None else batch.position,
        None if batch is None else batch.count,
        reason if isinstance(reason, str) else None,
    )


def _verified_payload(
    entry: BundleEntry, expected: str, actor: str, root: TrustRoot, where: str
) -> SignedPayload:
    """The entry's payload through its type, once its domain, signature, signer and attached
    documents are checked (what every good of one bulk batch shares).

    NOTE: the payload must be in its type's canonical form (the parsed value writes the very
    bytes shipped, proved by its hash), so the policy and metadata hashes below, computed from
    the parsed values, are those of the shipped documents. Payloads the registry logs are
    always in that form; a bundle whose payload is not is refused here, with the reason.
    """
    try:
        payload = _typed_payload(entry, PAYLOAD_TYPES[entry.kind])
    except InvalidInput as exc:
        raise InvalidInput(
            f"the payload is not a {entry.kind.name} payload: {exc.detail}"
        ) from None
    signed = payload.signed
    if signed.primary_type != expected:
        raise InvalidInput(f"a {entry.kind.name} entry here must carry a signed {expected}")
    # A signature is valid only under the domain it was made for; a creator's signed message
    # copied from another registry's log names that registry's domain: refused here, before
    # its signature is even recovered.
    root.check_domain(payload.domain, f"{where}: the {expected}")
    # The creator's signature: 65 bytes, low s, v in {27, 28}, recovering the claimed signer
    # under the trusted domain (THREATS 12-16); and that signer is the leaf's actor.
    try:
        verify_signature(expected, signed.message, root.domain(), signed.signature, signed.signer)
    except SignatureError as exc:
        raise SignatureError(f"the {expected} signature: {exc.detail}") from None
    if signed.signer != actor:
        raise SignatureError(f"the {expected} was signed by {signed.signer}, not the leaf's actor")
    if isinstance(payload, RegistrationPayload):
        # The policy and metadata shown are the ones the creator signed the hashes of.
        policy, metadata = payload.royalty_policy, payload.metadata
        for name, signed_hash, shown in (
            ("royalty_policy", "royaltyPolicy", None if policy is None else policy_hash(policy)),
            ("metadata", "metadata", None if metadata is None else metadata_hash(metadata)),
        ):
            if shown != signed.message[signed_hash]:
                raise InvalidInput(f"the payload's {name} is not the one the {expected} signed")
    return payload


def _typed_payload(entry: BundleEntry, payload_type: type[P]) -> P:
    """The entry's payload through its type, in its canonical form: the parsed value writes
    the very bytes shipped (checked by the digest already taken of them, not a second
    encoding of the document), so nothing read from it differs from what the leaf commits."""
    payload = payload_type.from_document(entry.payload, canonical=False)
    if payload.payload_hash() != entry.payload_sha256:
        raise InvalidInput("it is not in its canonical form")
    return payload


__all__ = ["PAYLOAD_TYPES", "SIGNED_TYPES", "CheckCache", "check_actor", "entry_leaf_hash"]
