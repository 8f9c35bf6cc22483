"""Wire schemas of the creators' routes: signed writes, bulk jobs, sign-in, statements."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from registry.edges import AddressText, GoodTypeName, Hex32
from verifier.schemas.fields import (
    Amount,
    HexBytes,
    Strict,
)

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
    signer: AddressText
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
    actor: AddressText
    leaf_index: int | None
    status: str


Kid = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]


class CodeKeyOut(Strict):
    creator: AddressText
    key_commitment: Hex32
    status: str
    #: The key id: the commitment's first 8 bytes, 16 hex digits.
    kid: Kid | None = None


class CodeKeyRetireIn(Strict):
    """A signed ``CodeKeyRetirement``: the key's sealed copy is destroyed, codes are no longer
    looked up under it; goods registered under it keep every entry."""

    signed: SignedCodeKeyRetirement


class CodeKeyRetireOut(Strict):
    creator: AddressText
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

    creator: AddressText
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
    recipient: AddressText
    currency: str
    amount: Amount
    transfers: int


class StatementTotalOut(Strict):
    recipient: AddressText
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
    creator: AddressText
    since: int
    until: int
    period: Literal["day", "month", "all"]
    lines: list[StatementLineOut]
    totals: list[StatementTotalOut]
    #: Royalties of guaranteed-trade orders not settled yet (in escrow): owed once the sale
    #: stands, never if refunded; in neither ``lines`` nor ``totals``.
    held: list[StatementTotalOut] = Field(default_factory=list)


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
    creator: AddressText
