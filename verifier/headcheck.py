"""Checking a signed tree head: its signer under the trust root, and its root on the chain."""

from __future__ import annotations

from typing import Protocol

from anchoring.errors import ChainMismatch, ReceiptMismatch
from registry.eip712 import checksum_address
from registry.errors import InvalidInput, SignatureError
from registry.signatures import verify_signature
from registry.treehead import PRIMARY_TYPE, TreeHead
from verifier.bundle import (
    AnchorPointer,
)
from verifier.bundlereport import ChainFinding
from verifier.errors import BundleInvalid
from verifier.trust import TrustRoot


class AnchorView(Protocol):
    """The reads a check makes of the trusted anchor contract; ``ChainReader`` (plain
    JSON-RPC, what ``tracemark verify`` uses) and ``Chain`` (web3) both provide them, and one
    behavioural test suite runs both."""

    address: str

    def chain_id(self) -> int: ...
    def check(self, expected_chain_id: int) -> None: ...
    def root_at(self, size: int) -> bytes | None: ...
    def root_at_block(self, size: int, block: int) -> bytes | None: ...
    def confirmed_root(self, size: int, confirmations: int) -> bytes | None: ...
    def finalized_block(self) -> int: ...
    def block_number(self) -> int: ...
    def anchor_block(self, tx_hash: bytes, size: int, root: bytes) -> int | None: ...


def check_head(head: TreeHead, root: TrustRoot) -> None:
    """The head was signed for the trusted domain, by the key the trust root names for its
    size. Shared by bundles and exports."""
    root.check_domain(head.domain, f"head {head.tree_size:,}")
    root.check_head_signer(head.tree_size, head.signer)
    try:
        verify_signature(
            PRIMARY_TYPE,
            head.message(),
            root.domain(),
            head.signature,
            checksum_address(head.signer),
        )
    except (SignatureError, InvalidInput) as exc:
        raise BundleInvalid(
            "tree-head", f"head {head.tree_size:,}: its signature: {exc.detail}"
        ) from None


class AnchoredHead(Protocol):
    """What the chain check reads of a head: its size and root. A signed ``TreeHead`` (bundles,
    exports) or a checkpoint (a tlog-proof, ``verifier.tlogproofcheck``) whose log signature
    the caller checked."""

    @property
    def tree_size(self) -> int: ...
    @property
    def root(self) -> bytes: ...


def check_head_on_chain(
    head: AnchoredHead, anchor: AnchorPointer | None, root: TrustRoot, chain: AnchorView
) -> ChainFinding:
    """Steps: (1) the node serves the trusted chain, (2) the contract asked is the trusted
    one and holds the TracemarkAnchor code, (3) its root for the head's size is the head's
    root, (4) it was already at the depth the trust root asks (``confirmations`` blocks, or
    the ``finalized`` block), (5) the pointed transaction anchored it, and how deep its block is.

    Returns the finding (anchored? final?); raises ``BundleInvalid`` where the chain
    contradicts the evidence. Shared by bundles and exports, which hold many heads."""
    # 1.
    chain_id = chain.chain_id()
    if chain_id != root.chain_id:
        raise BundleInvalid(
            "chain",
            f"the node serves chain {chain_id}, but trust root {root.label()} is for chain "
            f"{root.chain_id}",
        )
    # 2. The contract is the trusted one, whatever the bundle points at.
    if chain.address != root.contract_address:
        raise BundleInvalid(
            "chain",
            f"asked to check against contract {chain.address}, but trust root {root.label()} "
            f"names {root.contract_address}",
        )
    try:
        chain.check(chain_id)
    except ChainMismatch as exc:
        raise BundleInvalid("chain", exc.detail) from None
    rule = root.finality.describe()
    # 3. The root comes from the contract, never from the bundle (THREATS 8).
    latest = chain.root_at(head.tree_size)
    if latest is None:
        if anchor is not None:
            raise BundleInvalid(
                "chain",
                f"the evidence says head {head.tree_size:,} is anchored, but contract "
                f"{chain.address} on chain {chain_id} holds no root for that size (removed "
                "by a reorganisation, or never anchored)",
            )
        return ChainFinding(chain_id, chain.address, False, False, rule, None, None)
    if latest != head.root:
        raise BundleInvalid(
            "chain",
            f"contract {chain.address} on chain {chain_id} anchored root 0x{latest.hex()} for "
            f"size {head.tree_size:,}, not the head's root 0x{head.root.hex()}: the contract "
            "never anchored this head",
        )
    # 4. ... and held it as deep as the trust root asks: a shallower root can still be
    #    removed by a reorganisation.
    if root.finality.finalized:
        deep = chain.root_at_block(head.tree_size, chain.finalized_block())
    else:
        assert root.finality.confirmations is not None
        deep = chain.confirmed_root(head.tree_size, root.finality.confirmations)
    final = deep == head.root
    # 5. The block, from the pointed transaction's receipt (a pointer the chain confirms).
    if anchor is None or anchor.tx_hash is None:
        return ChainFinding(chain_id, chain.address, True, final, rule, None, None)
    try:
        block = chain.anchor_block(anchor.tx_hash, head.tree_size, head.root)
    except ReceiptMismatch as exc:
        raise BundleInvalid(
            "chain",
            f"transaction 0x{anchor.tx_hash.hex()} does not anchor head {head.tree_size:,}: "
            f"{exc.detail}",
        ) from None
    if block is None:
        raise BundleInvalid(
            "chain", f"transaction 0x{anchor.tx_hash.hex()} is not mined on chain {chain_id}"
        )
    confirmations = chain.block_number() - block + 1
    return ChainFinding(chain_id, chain.address, True, final, rule, block, confirmations)


def check_anchor_pointer(head: TreeHead, anchor: AnchorPointer | None, root: TrustRoot) -> None:
    """The evidence's anchor pointer, if any, names this head on the trusted chain and
    contract (only a pointer: the root itself is read from the contract)."""
    if anchor is None:
        return
    pointed = (anchor.tree_size, anchor.chain_id, checksum_address(anchor.contract))
    if pointed != (head.tree_size, root.chain_id, root.contract_address):
        raise BundleInvalid(
            "anchor",
            f"the anchor names head {anchor.tree_size:,} on chain {anchor.chain_id} in "
            f"{checksum_address(anchor.contract)}, not head {head.tree_size:,} on chain "
            f"{root.chain_id} in {root.contract_address}",
        )


def describe_pointer(anchor: AnchorPointer | None) -> str | None:
    """What the evidence's anchor pointer claims, in words (unverified), or None."""
    if anchor is None:
        return None
    block = "" if anchor.block_number is None else f" at block {anchor.block_number:,}"
    return (
        f"head {anchor.tree_size:,} is {anchor.state} on chain {anchor.chain_id} in "
        f"contract {checksum_address(anchor.contract)}{block}"
    )
