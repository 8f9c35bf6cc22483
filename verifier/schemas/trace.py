"""Wire schemas of a good's trace (``tracemark-trace/v1``, issue 5)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from registry.edges import AddressText, GoodTypeName, Hex32
from verifier.schemas.fields import (
    Amount,
    HexBytes,
    Strict,
)
from verifier.schemas.platforms import CreatorIdentityOut, RoyaltyShareOut, VerificationsOut

TraceEventKind = Literal[
    "registered", "conflict", "anchored", "verified", "transferred", "revoked", "omitted"
]


class TracePartyOut(Strict):
    """A holder: the good's creator, or a party on a platform, named by the platform and a
    short prefix of the hash of the platform's reference (never the reference itself)."""

    creator: bool
    platform: str | None
    #: 0x and the first 8 hex digits of SHA-256("tracemark/party/v1\0" || platform || 0 || ref).
    reference: str | None
    label: str


class TraceBatchOut(Strict):
    """The good's place in the bulk batch that one creator's signature covers."""

    items_root: Hex32
    position: int
    count: int


class TraceRecipientOut(Strict):
    address: AddressText
    bps: int
    label: str | None = None


class TraceRegisteredOut(Strict):
    kind: Literal["registered"] = "registered"
    #: The sequencer's time (null while still queued, as is ``leaf_index``).
    at: int | None
    leaf_index: int | None
    creator: AddressText
    signed_type: str
    signature: HexBytes
    product: str | None
    use: Literal["single", "transferable"] | None
    batch: TraceBatchOut | None
    royalty_policy: list[TraceRecipientOut]
    summary: str


class TraceConflictOut(Strict):
    """Another creator's claim on the same good: logged, never applied. Who was first is
    decided by log order (the lower leaf index), which anchored heads make immutable."""

    kind: Literal["conflict"] = "conflict"
    at: int | None
    leaf_index: int | None
    claimant: AddressText
    signed_type: str
    signature: HexBytes
    first_creator: AddressText
    first_leaf_index: int | None
    #: Null while either entry is still queued (no log order yet).
    first_by_log_order: AddressText | None
    summary: str


class TraceAnchoredOut(Strict):
    """The anchor that first covered some of the good's entries."""

    kind: Literal["anchored"] = "anchored"
    #: When the anchor reached its current state (the worker's clock).
    at: int
    tree_size: int
    chain_id: int
    contract: AddressText
    tx_hash: Hex32 | None
    block_number: int | None
    #: mined or final; sealed, signed or broadcast while on its way.
    state: str
    #: From the newest block the server saw (null when it saw none).
    confirmations: int | None
    #: Leaf indices of the good's entries this anchor is the first to cover.
    covers: list[int]
    summary: str


class TraceVerifiedOut(Strict):
    kind: Literal["verified"] = "verified"
    at: int
    platform: str
    verdict: str
    #: How the good was named: fingerprint, code or file.
    via: str
    summary: str


class TraceTransferredOut(Strict):
    kind: Literal["transferred"] = "transferred"
    at: int | None
    leaf_index: int | None
    transfer_id: int | None
    #: The platform that reported it.
    platform: str
    seller: TracePartyOut
    buyer: TracePartyOut
    #: Integer amounts in the currency's minor units, as decimal strings.
    price: Amount | None
    currency: str | None
    final: bool
    royalties: list[RoyaltyShareOut]
    seller_amount: Amount | None
    #: The TRANSFER entry's payload hash, which the receipt signs as ``transferHash``.
    transfer_hash: Hex32
    #: The registry's EIP-712 ``TransferReceipt`` signature.
    receipt_signature: HexBytes | None
    summary: str


class TraceRevokedOut(Strict):
    kind: Literal["revoked"] = "revoked"
    at: int | None
    leaf_index: int | None
    by: AddressText
    reason: str
    signed_type: str
    signature: HexBytes
    batch: TraceBatchOut | None
    summary: str


class TraceRefusedOut(Strict):
    """A transfer the registry refused (double sale, revoked, consumed, not a distributor):
    nothing of it is in the log, but it is evidence (``transfer_attempts``)."""

    kind: Literal["refused"] = "refused"
    at: int
    #: The platform that reported it.
    platform: str
    seller: TracePartyOut
    buyer: TracePartyOut
    #: ``registry.transfers`` error code: double-sale, revoked, consumed, not-a-distributor.
    reason: str
    #: The transfer that made the real holder (a double sale) or consumed the good.
    earlier_transfer_id: int | None
    summary: str


class TraceOmittedOut(Strict):
    """A cut in a long history: how many entries or verifications were left out here."""

    kind: Literal["omitted"] = "omitted"
    what: Literal["entries", "verifications", "refused transfers"]
    count: int
    summary: str


TraceEventOut = Annotated[
    TraceRegisteredOut
    | TraceConflictOut
    | TraceAnchoredOut
    | TraceVerifiedOut
    | TraceTransferredOut
    | TraceRevokedOut
    | TraceRefusedOut
    | TraceOmittedOut,
    Field(discriminator="kind"),
]


class TraceNodeOut(Strict):
    id: str
    label: str
    kind: Literal["creator", "holder", "end_user", "revoked", "claimant"]


class TraceEdgeOut(Strict):
    source: str
    target: str
    label: str
    kind: Literal["transfer", "final", "revocation", "conflict", "omitted"]
    leaf_index: int | None


class TraceGraphOut(Strict):
    """Who held the good, as data: what the Mermaid text draws, for drawing without parsing it."""

    nodes: list[TraceNodeOut]
    edges: list[TraceEdgeOut]


class TracePlatformOut(Strict):
    platform: str
    times: int
    first_at: int
    last_at: int


class TraceCountsOut(Strict):
    """How much history there is, and how much of it this answer shows."""

    entries: int
    entries_shown: int
    transfers: int
    conflicts: int
    verifications: int
    verifications_shown: int
    #: Transfers the registry refused (not in the log; evidence), and how many are shown.
    refused: int = 0
    refused_shown: int = 0


class TraceOut(Strict):
    """A good's whole history in order (``tracemark-trace/v1``)."""

    format: Literal["tracemark-trace/v1"] = "tracemark-trace/v1"
    good_type: GoodTypeName
    fingerprint: Hex32
    creator: AddressText
    product: str | None
    use: Literal["single", "transferable"] | None
    status: Literal["queued", "active", "revoked", "consumed"]
    holder: TracePartyOut
    verifications: VerificationsOut
    #: The platforms that verified it most (at most 100).
    verified_by: list[TracePlatformOut]
    counts: TraceCountsOut
    events: list[TraceEventOut]
    graph: TraceGraphOut
    #: The newest chain block the server saw, which confirmations are counted from.
    chain_block: int | None
    #: The creator's proven web domain and name, or null (``CreatorIdentityOut``).
    creator_identity: CreatorIdentityOut | None = None
