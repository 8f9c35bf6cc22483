"""A DELIVERY entry (issue 17 item 2) in a bundle: what the offline check proves of it.

Moved out of ``verifier.offline`` so that an order's evidence (``verifier.orderevidence``) and
a good's bundle check a delivery with the one function. A DELIVERY is the registry's
attestation of a checked delivery for an order: attested by the registry key the trust root
names at the entry's place in the log, its payload in its canonical form (the parsed value
writes back the very bytes the leaf commits to) naming this good and that registry. Its place
in the good's history is proved with the others by the state map's history chain.
"""

from __future__ import annotations

from registry.deliverypayload import DeliveryPayload
from registry.eip712 import checksum_address
from registry.errors import InvalidInput
from registry.leaf import EntryKind
from verifier.bundle import BundleEntry
from verifier.bundlereport import ProvedEntry
from verifier.errors import BundleInvalid
from verifier.trust import TrustRoot


def delivery_payload(entry: BundleEntry) -> DeliveryPayload:
    """The entry's payload as a ``DeliveryPayload``, only in its canonical form (its hash is
    the one already taken of the shipped document); ``InvalidInput`` otherwise."""
    payload = DeliveryPayload.from_document(entry.payload, canonical=False)
    if payload.payload_hash() != entry.payload_sha256:
        raise InvalidInput("it is not in its canonical form")
    return payload


def check_delivery(entry: BundleEntry, root: TrustRoot, where: str) -> ProvedEntry:
    """Prove a DELIVERY entry's attester and payload; ``BundleInvalid`` (step ``signature``)
    for one the trust root's registry did not attest, or whose payload names another good
    or registry."""
    actor = checksum_address(entry.actor)
    expected = root.key_for_entry(entry.leaf_index)
    if entry.actor != expected:
        raise BundleInvalid(
            "signature",
            f"{where}: a DELIVERY's actor {actor} is not the registry key trust root "
            f"{root.label()} names there ({checksum_address(expected)})",
        )
    try:
        delivery = delivery_payload(entry)
    except InvalidInput as exc:
        raise BundleInvalid(
            "signature", f"{where}: the DELIVERY payload does not parse: {exc.detail}"
        ) from None
    if (delivery.good_type, delivery.fingerprint, delivery.registry) != (
        entry.good_type,
        entry.fingerprint,
        actor,
    ):
        raise BundleInvalid(
            "signature", f"{where}: the DELIVERY payload does not name this good and the registry"
        )
    return ProvedEntry(
        EntryKind.DELIVERY,
        entry.leaf_index,
        actor,
        None,
        None,
        None,
        None,
        platform=delivery.platform,
        order_id=delivery.order_id,
    )


__all__ = ["check_delivery", "delivery_payload"]
