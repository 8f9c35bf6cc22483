"""The wire schemas of the HTTP API, shared by the server (``api/``) and the typed client.

Every request model refuses unknown fields (THREATS 39: no mass assignment) and bounds every
string and list (THREATS 40); every response model names exactly what is shown. Hex travels
``0x``-prefixed; amounts that may exceed 2^53 travel as decimal strings, because JSON numbers
that large lose digits in JavaScript.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

GoodTypeName = Literal["file", "code", "item"]
Verdict = Literal[
    "authentic", "unknown", "revoked", "pending_anchor", "conflict", "consumed", "not_authentic"
]
Hex32 = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{64}$")]
Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
HexBytes = Annotated[str, StringConstraints(pattern=r"^0x([0-9a-fA-F]{2}){0,1024}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
#: A platform id (``registry.parties.PLATFORM_ID_PATTERN``, the grammar of API keys' platforms):
#: no NUL, control, bidi or other format character reaches the signed log.
PlatformId = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$", max_length=64)
]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Amount = Annotated[str, StringConstraints(pattern=r"^(0|[1-9][0-9]{0,77})$")]
#: An upper-case currency code of 1 to 16 characters with at least one letter (EUR, USDC):
#: what ``registry.transfers`` accepts; a code of digits only is not a currency.
Currency = Annotated[str, StringConstraints(pattern=r"^[0-9]*[A-Z][A-Z0-9]*$", max_length=16)]

#: Most items one page of any list holds (THREATS 40); the default is smaller.
MAX_PAGE = 200
DEFAULT_PAGE = 50


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- creators -------------------------------------------------------------------------------------


#: The EIP-712 primary types a creator signs (``registry.eip712.STRUCT_TYPES``); each write
#: route takes exactly one of them, and its schema says which.
SignedType = Literal[
    "Registration",
    "BatchRegistration",
    "Revocation",
    "BatchRevocation",
    "CodeKeyEnrollment",
    "CodeKeyRetirement",
]


class SignedDocument(Strict):
    """An EIP-712 message as the creator's CLI signed it (``registry.records.SignedMessage``)."""

    type: SignedType
    signer: Address
    message: dict[str, Any]
    signature: HexBytes


class SignedRegistration(SignedDocument):
    type: Literal["Registration"]


class SignedBatchRegistration(SignedDocument):
    type: Literal["BatchRegistration"]


class SignedRevocation(SignedDocument):
    type: Literal["Revocation"]


class SignedBatchRevocation(SignedDocument):
    type: Literal["BatchRevocation"]


class SignedCodeKeyEnrollment(SignedDocument):
    type: Literal["CodeKeyEnrollment"]


class SignedCodeKeyRetirement(SignedDocument):
    type: Literal["CodeKeyRetirement"]


class RegistrationFields(Strict):
    """What travels with a signed registration: the documents its message hashes."""

    royalty_policy: dict[str, Any] = Field(default_factory=lambda: {"recipients": []})
    metadata: dict[str, Any] = Field(default_factory=dict)
    new_product: bool = False


class RegistrationIn(RegistrationFields):
    signed: SignedRegistration


class BatchRegistrationIn(RegistrationFields):
    """A bulk registration's first NDJSON line (or its ``Tracemark-Request`` header)."""

    signed: SignedBatchRegistration


class RevocationIn(Strict):
    signed: SignedRevocation


class BatchRevocationIn(Strict):
    """A bulk revocation's first NDJSON line (or its ``Tracemark-Request`` header)."""

    signed: SignedBatchRevocation


class CodeKeyIn(Strict):
    signed: SignedCodeKeyEnrollment
    #: The 32-byte code key: sent once over TLS, kept sealed (AES-GCM) at rest.
    code_key: Hex32


class EntryOut(Strict):
    entry_id: int
    kind: str
    good_type: GoodTypeName
    fingerprint: Hex32
    actor: Address
    leaf_index: int | None
    status: str


Kid = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]


class CodeKeyOut(Strict):
    creator: Address
    key_commitment: Hex32
    status: str
    #: The key id: the commitment's first 8 bytes, 16 hex digits.
    kid: Kid | None = None


class CodeKeyRetireIn(Strict):
    """A signed ``CodeKeyRetirement``: the key's sealed copy is destroyed, codes are no longer
    looked up under it; goods registered under it keep every entry."""

    signed: SignedCodeKeyRetirement


class CodeKeyRetireOut(Strict):
    creator: Address
    key_commitment: Hex32
    kid: Kid
    #: "retired", or "already-retired"
    status: str


class CodeKeyItemOut(Strict):
    kid: Kid
    key_commitment: Hex32
    created_at: int
    #: When it was retired (null: live).
    retired_at: int | None
    #: The creator's current key: its newest live one.
    current: bool


class CodeKeysOut(Strict):
    """A creator's code keys, newest first (never a key itself)."""

    creator: Address
    keys: list[CodeKeyItemOut]


class JobOut(Strict):
    """A bulk upload being ingested: poll it until ``state`` is done or failed."""

    job_id: str
    kind: str
    state: Literal["receiving", "queued", "running", "done", "failed"]
    total: int | None
    processed: int
    result: dict[str, Any] | None = None
    error: str | None = None
    #: The failure's problem code, as the request would have answered it at once.
    error_code: str | None = None


class GoodOut(Strict):
    good_type: GoodTypeName
    fingerprint: Hex32
    product: str | None
    leaf_index: int | None
    registered_at: int | None
    batch_position: int | None


class StatementLineOut(Strict):
    period: str
    good_type: GoodTypeName
    fingerprint: Hex32
    platform: str
    recipient: Address
    currency: str
    amount: Amount
    transfers: int


class StatementTotalOut(Strict):
    recipient: Address
    currency: str
    amount: Amount


PlatformName = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$", max_length=64)
]


class DistributionIn(Strict):
    """Who may sell your goods first-hand: anyone (``restricted`` false, the default) or only
    the named platforms. Replaces the whole policy."""

    restricted: bool
    platforms: list[PlatformName] = Field(default_factory=list, max_length=200)


class DistributionOut(Strict):
    restricted: bool
    platforms: list[str]
    #: When the policy was last set (null: never set, open distribution).
    updated_at: int | None


class StatementOut(Strict):
    creator: Address
    since: int
    until: int
    period: Literal["day", "month", "all"]
    lines: list[StatementLineOut]
    totals: list[StatementTotalOut]


class SiweNonceOut(Strict):
    nonce: str
    expires_at: int
    domain: str
    chain_id: int
    uri: str


class SiweIn(Strict):
    message: Annotated[str, StringConstraints(max_length=4096)]
    signature: HexBytes


class TokenOut(Strict):
    token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (the scheme's name)
    expires_at: int
    creator: Address


# -- platforms ------------------------------------------------------------------------------------


class VerifyIn(Strict):
    """Name the good by its fingerprint, or by its code and the creator it claims to be from
    (one code key per creator; ``product`` narrows the claim to one product line)."""

    good_type: GoodTypeName
    fingerprint: Hex32 | None = None
    code: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    creator: Address | None = None
    product: Slug | None = None


class PowChallengeOut(Strict):
    """A proof-of-work challenge for one public code lookup (``api.pow`` has the format)."""

    challenge: str
    #: Leading zero bits the work must reach.
    difficulty: int
    #: Unix seconds: the challenge is refused from then on.
    expires_at: int


class AnchorOut(Strict):
    chain_id: int
    contract: Address
    tx_hash: Hex32
    block_number: int
    tree_size: int
    #: "final" after the confirmation rule; "unconfirmed" while mined but not yet final.
    state: Literal["final", "unconfirmed"]
    confirmations: int | None


class HolderOut(Strict):
    #: None while the creator still holds the good.
    platform: str | None
    since_transfer: int | None


class VerificationsOut(Strict):
    """ "Verified N times, by M platforms, first at T" (telemetry: may lag about a second)."""

    times: int
    platforms: int
    first_at: int | None


class SignalOut(Strict):
    code: str
    detail: str


class RiskOut(Strict):
    score: float
    signals: list[SignalOut]


class CreatorIdentityOut(Strict):
    """The creator's proven web domain and name (``verifier.identity``): "verified" at
    ``checked_at``, or "lapsed" (it was, and no longer is). Null when never proved: an
    unverified name is never shown."""

    name: str
    domain: str
    status: Literal["verified", "lapsed"]
    checked_at: int
    #: How it was verified, in words (the statement's URL, checked by the registry).
    method: str


class IdentityIn(Strict):
    """Prove a web domain: the registry fetches ``https://<domain>/.well-known/
    tracemark-creator.json`` and checks your signature on it."""

    domain: Annotated[str, StringConstraints(min_length=1, max_length=260)]


class IdentityOut(CreatorIdentityOut):
    """A proof or re-check as recorded; ``entry_id`` is the CREATOR_IDENTITY entry it logged
    (None when a passing re-check only moved ``checked_at``)."""

    creator: Address
    url: str
    entry_id: int | None


class VerifyOut(Strict):
    verdict: Verdict
    good_type: GoodTypeName
    #: Omitted for an anonymous code lookup (coarse answers only).
    fingerprint: Hex32 | None = None
    creator: Address | None = None
    product: str | None = None
    use: Literal["single", "transferable"] | None = None
    leaf_index: int | None = None
    holder: HolderOut | None = None
    anchor: AnchorOut | None = None
    #: The newest chain block this server saw, and when; while the chain is unreachable the
    #: answer still comes from the database and says how old its view of the chain is.
    chain_block: int | None = None
    chain_seen_at: int | None = None
    risk: RiskOut | None = None
    verifications: VerificationsOut | None = None
    creator_identity: CreatorIdentityOut | None = None
    coarse: bool = False


class PartyIn(Strict):
    """A seller or buyer: a reference on a platform (kept only as a hash), or the creator."""

    platform: PlatformId | None = None
    reference: Reference | None = None
    creator: bool = False


#: A hand-over authorization's token (``registry.handover``: ``tmho_`` and 43 base64url).
HandoverToken = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,128}$", min_length=1, max_length=128)
]


class TransferIn(Strict):
    good_type: GoodTypeName
    fingerprint: Hex32
    seller: PartyIn
    buyer: PartyIn
    price: Amount | None = None
    currency: Currency | None = None
    final: bool = False
    #: The seller's platform's one-time consent, when the seller is on another platform than
    #: yours (``POST /v1/transfers/authorizations``); the seller may then omit its reference.
    authorization: HandoverToken | None = None


class HandoverIn(Strict):
    """The holding platform consents, once, that ``buyer_platform`` may move a good it holds."""

    good_type: GoodTypeName
    fingerprint: Hex32
    #: Your own reference to the holder (the party the good is held by on your platform).
    reference: Reference
    buyer_platform: PlatformId
    #: Seconds until it expires (``registry.handover.MAX_AUTHORIZATION_SECONDS``).
    expires_in: Annotated[int, Field(ge=1, le=3600)] = 600


class HandoverOut(Strict):
    """The token, shown once: hand it to the buying platform, which presents it with its
    transfer report. Only its hash is kept."""

    authorization_id: int
    authorization: str
    good_type: GoodTypeName
    fingerprint: Hex32
    buyer_platform: str
    expires_at: int


class RoyaltyShareOut(Strict):
    recipient: Address
    bps: int
    amount: Amount


class ReceiptOut(Strict):
    """A ``TransferReceipt``: verify it with the registry's address alone (EIP-712)."""

    transfer_id: int
    good_type: GoodTypeName
    fingerprint: Hex32
    log_index: int
    transfer_hash: Hex32
    timestamp: int
    signature: HexBytes
    signer: Address
    domain: dict[str, Any]
    typed_data: dict[str, Any]
    platform: str
    seller: dict[str, Any]
    buyer: dict[str, Any]
    price: Amount | None
    currency: str | None
    final: bool
    creator: Address
    royalties: list[RoyaltyShareOut]
    seller_amount: Amount | None
    replayed: bool


class RegistryOut(Strict):
    """Who this registry is: the key that signs its heads and receipts, and the EIP-712 domain
    (the chain and anchor contract) that creators sign under."""

    address: Address
    domain: dict[str, Any]
    chain_id: int
    contract: Address
    #: Where the registry serves its trust root, and that root's fingerprint: compare it out
    #: of band before pinning it (``tracemark trust add``).
    trust_root_url: str
    trust_fingerprint: str


# -- lists ----------------------------------------------------------------------------------------

T = TypeVar("T")


class SignalSubjectOut(Strict):
    kind: Literal["good", "platform", "key", "batch", "creator"]
    id: str


class EvidenceOut(Strict):
    """One record that raised a signal: ``kind`` entry, transfer, attempt, verification or
    probe-flag; ``ref`` names it (``transfer 12``) for a trace or an export."""

    kind: str
    ref: str
    at: int | None
    detail: str


class SignalDetailOut(Strict):
    """A signal as auditors list it: the rule, what it is about, and its evidence."""

    signal_id: str
    code: str
    detail: str
    weight: float
    subject: SignalSubjectOut
    #: The goods it implicates (``code:0x...``), the first ``MAX_LISTED_GOODS`` of ``goods_total``.
    goods: list[str]
    goods_total: int
    platforms: list[str]
    evidence: list[EvidenceOut]


class SignalPage(Strict):
    #: When the risk index these signals come from was built (Unix seconds; 0: not yet).
    built_at: int
    items: list[SignalDetailOut]
    next_cursor: str | None


class Page(Strict, Generic[T]):
    items: list[T]
    #: Pass as ``cursor`` for the next page; null on the last page.
    next_cursor: str | None


__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "AnchorOut",
    "BatchRegistrationIn",
    "BatchRevocationIn",
    "CodeKeyIn",
    "CodeKeyItemOut",
    "CodeKeyOut",
    "CodeKeyRetireIn",
    "CodeKeyRetireOut",
    "CodeKeysOut",
    "DistributionIn",
    "DistributionOut",
    "EntryOut",
    "EvidenceOut",
    "GoodOut",
    "HandoverIn",
    "HandoverOut",
    "HolderOut",
    "JobOut",
    "Page",
    "PartyIn",
    "PowChallengeOut",
    "ReceiptOut",
    "RegistrationIn",
    "RegistryOut",
    "RevocationIn",
    "RiskOut",
    "RoyaltyShareOut",
    "SignalDetailOut",
    "SignalOut",
    "SignalPage",
    "SignalSubjectOut",
    "SignedBatchRegistration",
    "SignedBatchRevocation",
    "SignedCodeKeyEnrollment",
    "SignedCodeKeyRetirement",
    "SignedDocument",
    "SignedRegistration",
    "SignedRevocation",
    "SignedType",
    "SiweIn",
    "SiweNonceOut",
    "StatementLineOut",
    "StatementOut",
    "StatementTotalOut",
    "TokenOut",
    "TransferIn",
    "VerificationsOut",
    "VerifyIn",
    "VerifyOut",
]


# -- auditors: a good's trace (issue 5) -----------------------------------------------------------

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
    address: Address
    bps: int
    label: str | None = None


class TraceRegisteredOut(Strict):
    kind: Literal["registered"] = "registered"
    #: The sequencer's time (null while still queued, as is ``leaf_index``).
    at: int | None
    leaf_index: int | None
    creator: Address
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
    claimant: Address
    signed_type: str
    signature: HexBytes
    first_creator: Address
    first_leaf_index: int | None
    #: Null while either entry is still queued (no log order yet).
    first_by_log_order: Address | None
    summary: str


class TraceAnchoredOut(Strict):
    """The anchor that first covered some of the good's entries."""

    kind: Literal["anchored"] = "anchored"
    #: When the anchor reached its current state (the worker's clock).
    at: int
    tree_size: int
    chain_id: int
    contract: Address
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
    by: Address
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
    creator: Address
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


__all__ += [
    "CreatorIdentityOut",
    "IdentityIn",
    "IdentityOut",
    "TraceAnchoredOut",
    "TraceBatchOut",
    "TraceConflictOut",
    "TraceCountsOut",
    "TraceEdgeOut",
    "TraceEventOut",
    "TraceGraphOut",
    "TraceNodeOut",
    "TraceOmittedOut",
    "TraceOut",
    "TracePartyOut",
    "TracePlatformOut",
    "TraceRecipientOut",
    "TraceRefusedOut",
    "TraceRegisteredOut",
    "TraceRevokedOut",
    "TraceTransferredOut",
    "TraceVerifiedOut",
]


# -- webhooks (api/webhooks, verifier/webhooks) ---------------------------------------------------

WebhookEventType = Literal["anchor.final", "transfer.recorded", "signal.raised"]


class WebhookIn(Strict):
    """A subscription: an https URL (checked against THREATS 42) and the events to send."""

    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    event_types: Annotated[list[WebhookEventType], Field(min_length=1, max_length=3)]


class WebhookOut(Strict):
    id: int
    url: str
    event_types: list[WebhookEventType]
    created_at: int


class WebhookCreatedOut(WebhookOut):
    """The new subscription with its signing secret: shown this once, never again."""

    secret: str


class WebhookAttemptOut(Strict):
    attempt: int
    started_at: int
    duration_ms: int
    #: The receiver's status, or null if it never answered (``error`` says why).
    status_code: int | None
    error: str | None


class WebhookDeliveryOut(Strict):
    """One event for one subscription and every attempt to deliver it."""

    id: int
    #: The ``webhook-id`` header: the same on every attempt, for the receiver to dedupe on.
    msg_id: str
    event_type: WebhookEventType
    #: pending, delivered, failed (attempts exhausted) or cancelled (subscription deleted).
    state: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    last_status: int | None
    #: Unix milliseconds of the next attempt; null unless pending.
    next_attempt_ms: int | None
    created_at: int
    updated_at: int
    log: list[WebhookAttemptOut]


__all__ += [
    "WebhookAttemptOut",
    "WebhookCreatedOut",
    "WebhookDeliveryOut",
    "WebhookEventType",
    "WebhookIn",
    "WebhookOut",
]
