"""Wire schemas of the platforms' routes: verify, transfers and their signed receipts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from registry.edges import AddressText, GoodTypeName, Hex32
from registry.receipts import TransferReceipt
from verifier.schemas.credit import HolderCreditOut
from verifier.schemas.fields import (
    Amount,
    Currency,
    HexBytes,
    PlatformId,
    Reference,
    Slug,
    Strict,
    Verdict,
)


class VerifyIn(Strict):
    """Name the good by its fingerprint, or by its code and the creator it claims to be from
    (one code key per creator; ``product`` narrows the claim to one product line)."""

    good_type: GoodTypeName
    fingerprint: Hex32 | None = None
    code: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    creator: AddressText | None = None
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
    contract: AddressText
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
    #: Reserved for an open guaranteed-trade order (issue 17): no platform may sell it now.
    reserved: bool = False


class VerificationsOut(Strict):
    """ "Verified N times, by M platforms, first at T" (telemetry: may lag about a second)."""

    times: int
    platforms: int
    first_at: int | None


class SignalMessageOut(Strict):
    """A signal's detail as a catalogue template (``key``, e.g. ``verdict.revoked.detail``) and
    the values of its ``{name}`` placeholders, for a page in the reader's language."""

    key: str
    params: dict[str, str | int | None]


class SignalOut(Strict):
    code: str
    #: One English sentence (kept for clients that show it as it is).
    detail: str
    #: The detail as a template and its parameters; null for a market signal (the risk
    #: index's rules: see ``parts``).
    message: SignalMessageOut | None = None
    #: A market signal's detail as its rule's templates (``signal.<code>.detail[.<variant>]``)
    #: and their parameters, in order: a page says each and joins them with its language's
    #: separator. Absent for a verdict signal, or a signal written before there were parts.
    parts: list[SignalMessageOut] | None = None


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

    creator: AddressText
    url: str
    entry_id: int | None


class VerifyOut(Strict):
    verdict: Verdict
    good_type: GoodTypeName
    #: Omitted for an anonymous code lookup (coarse answers only).
    fingerprint: Hex32 | None = None
    creator: AddressText | None = None
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
    #: The current holder's credit (issue 18 item 1); null while the creator holds the good,
    #: for an unknown good and until the holder's platform was first scored.
    credit: HolderCreditOut | None = None
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
    recipient: AddressText
    bps: int
    amount: Amount


class ReceiptOut(Strict):
    """A ``TransferReceipt``: verify it with the registry's address alone (EIP-712)."""

    # NOTE: ``log_index`` is the published JSON key (OpenAPI); the attribute is ``leaf_index``.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    transfer_id: int
    good_type: GoodTypeName
    fingerprint: Hex32
    #: The TRANSFER entry's leaf index.
    leaf_index: int = Field(validation_alias="log_index", serialization_alias="log_index")
    transfer_hash: Hex32
    timestamp: int
    signature: HexBytes
    signer: AddressText
    domain: dict[str, Any]
    typed_data: dict[str, Any]
    platform: str
    seller: dict[str, Any]
    buyer: dict[str, Any]
    price: Amount | None
    currency: str | None
    final: bool
    creator: AddressText
    royalties: list[RoyaltyShareOut]
    seller_amount: Amount | None
    replayed: bool

    # NOTE: this is the receipt as text, kept as the server sent it (the client's answers and
    # their tests read it so); the format itself, with its one signed message, is
    # ``registry.receipts.TransferReceipt``.
    def receipt(self) -> TransferReceipt:
        """The receipt as its one format type; raises ``ValidationError`` if malformed."""
        return TransferReceipt.from_json(self.model_dump())
