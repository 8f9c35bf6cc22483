"""Offline checks of the registry's signed answers (receipts, tree heads) under pinned trust."""

from __future__ import annotations

from pydantic import ValidationError

from registry.eip712 import Domain, checksum_address, parse_address
from registry.errors import (
    InvalidInput,
    SignatureError,
)
from registry.receipts import PRIMARY_TYPE
from registry.signatures import verify_signature
from registry.treehead import TreeHead
from verifier.errors import BundleInvalid, VerificationError
from verifier.schemas import (
    ReceiptOut,
)
from verifier.trust import TrustPolicy, TrustRoot


def verify_receipt(receipt: ReceiptOut, trust: TrustPolicy) -> TrustRoot:
    """Check a ``TransferReceipt`` offline under the caller's pinned trust; return the trust
    root it verified under, or raise ``VerificationError`` (``UntrustedRegistry`` when no
    pinned root names the registry it claims to be from).

    The receipt must be signed under a domain a pinned trust root names, by the registry key
    that root names for the receipt's place in the log (a key hand-over keeps old receipts
    valid under the old key). The other fields of the answer (price, royalties) are bound
    through ``transfer_hash``, the TRANSFER entry's payload hash, which the log proves.
    """
    try:
        signed_under = Domain.from_dict(receipt.domain)
        # 1. A registry the caller trusts (its chain and contract), and the key it names.
        root = trust.root_for(signed_under)
        expected = checksum_address(root.key_for_entry(receipt.leaf_index))
        # 2. The receipt names that key as its signer.
        if parse_address(receipt.signer, what="signer") != expected:
            raise VerificationError(
                f"the receipt is signed by {receipt.signer}, but trust root {root.label()} "
                f"names {expected} for leaf {receipt.leaf_index:,}"
            )
        # 3. The signed message is rebuilt from the receipt's fields ...
        signed = receipt.receipt()
        # 4. ... and the typed data shown beside them is that very message, nothing else.
        if receipt.typed_data != signed.typed_data():
            raise VerificationError("the receipt's typed_data is not the message of its fields")
        # 5. The EIP-712 signature (65 bytes, low s) recovers that key under the domain.
        verify_signature(PRIMARY_TYPE, signed.message(), root.domain(), receipt.signature, expected)
    except (SignatureError, InvalidInput) as exc:
        raise VerificationError(f"the receipt does not verify: {exc.detail}") from None
    except ValidationError as exc:
        raise VerificationError(f"the receipt does not verify: {_first_error(exc)}") from None
    except BundleInvalid as exc:
        raise VerificationError(f"the receipt does not verify: {exc.detail}") from None
    return root


def _first_error(error: ValidationError) -> str:
    """Pydantic's first error as "where: what", without echoing the (untrusted) value."""
    item = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in item["loc"])
    return f"{where}: {item['msg'].removeprefix('Value error, ')}"


def verify_tree_head(head: TreeHead, trust: TrustPolicy) -> TrustRoot:
    """Check a signed tree head under the caller's pinned trust: the domain a pinned root
    names, the key it names for the head's size, the EIP-712 signature. Returns the trust
    root used; raises ``VerificationError`` otherwise."""
    from verifier.headcheck import check_head

    root = trust.root_for(head.domain)
    try:
        check_head(head, root)
    except BundleInvalid as exc:
        raise VerificationError(f"the tree head does not verify: {exc.detail}") from None
    return root
