"""Hand-over authorizations: a holding platform's one-time consent that another platform may
move a good it holds.

DESIGN "Holders, transfers, royalties": a good held on a platform moves only with that
platform's consent. Either the holding platform reports the sale itself, or it issues an
authorization here (the good, its own reference to the holder, the one buying platform, a short
expiry) and hands the opaque token to the buyer, whose transfer report presents it. The token
is single-use: it is consumed by a conditional UPDATE (``used_at IS NULL``) in the transfer's
own transaction, so of racing buyers exactly one moves the good, and a refused or rolled-back
transfer leaves it unused.

Only the token's SHA-256 is stored (a database read gives no usable token); the token itself
is never logged.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Table, select, update

from registry.errors import Conflict, InvalidInput
from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.models import Holding, TransferAuthorization
from registry.parties import MAX_REFERENCE_LENGTH, ReferenceKeys, check_platform_id

# NOTE: a token's bound and hash, and the two refusals of a hand-over, are defined with the
# transfer request that carries the token (pure, so that the fraud rules can name the codes);
# they are this module's names too.
from registry.transferrequests import (
    MAX_TOKEN_LENGTH,
    AuthorizationRefused,
    NotTheHolder,
    token_hash,
)

authorizations_t: Table = TransferAuthorization.__table__  # type: ignore[attr-defined]
_holdings_t: Table = Holding.__table__  # type: ignore[attr-defined]

#: Prefix of a token, so that one found in a log or a paste is recognisable (and revocable).
TOKEN_PREFIX: Final = "tmho_"  # noqa: S105 (a prefix, not a secret)
#: Longest life of an authorization. A token is a bearer capability for one good: a short life
#: bounds how long a leaked one is worth anything (the buyer presents it within the sale).
MAX_AUTHORIZATION_SECONDS: Final = 3600
#: Its life when the holding platform does not say.
DEFAULT_AUTHORIZATION_SECONDS: Final = 600


@dataclass(frozen=True)
class HandoverRequest:
    """The holding platform asks for a one-time authorization for ``buyer_platform``."""

    platform: str
    good_type: GoodType
    fingerprint: bytes
    reference: str
    buyer_platform: str
    seconds: int = DEFAULT_AUTHORIZATION_SECONDS

    def __post_init__(self) -> None:
        check_platform_id(self.platform)
        check_platform_id(self.buyer_platform)
        if self.buyer_platform == self.platform:
            raise InvalidInput("a hand-over authorization is for another platform (the buyer)")
        if not 1 <= len(self.reference) <= MAX_REFERENCE_LENGTH:
            raise InvalidInput(f"a party's reference has 1 to {MAX_REFERENCE_LENGTH} characters")
        if not 1 <= self.seconds <= MAX_AUTHORIZATION_SECONDS:
            raise InvalidInput(f"an authorization lives 1 to {MAX_AUTHORIZATION_SECONDS} seconds")


@dataclass(frozen=True)
class IssuedAuthorization:
    """The token (shown once, to the holding platform) and what it allows."""

    authorization_id: int
    token: str
    good_type: GoodType
    fingerprint: bytes
    buyer_platform: str
    expires_at: int

    def __repr__(self) -> str:  # never the token
        return (
            f"IssuedAuthorization(id={self.authorization_id}, buyer={self.buyer_platform!r}, "
            f"expires_at={self.expires_at})"
        )


def issue_authorization(
    conn: Connection, request: HandoverRequest, *, keys: ReferenceKeys, now: int
) -> IssuedAuthorization:
    """Check that the caller holds the good under ``reference``; store and return a token."""
    good = f"{request.good_type.name.lower()} {fingerprint_hex(request.fingerprint)}"
    good_type = int(request.good_type)
    holding = conn.execute(
        select(_holdings_t).where(
            _holdings_t.c.good_type == good_type,
            _holdings_t.c.fingerprint == request.fingerprint,
        )
    ).first()
    # One answer for "unknown", "its creator holds it", "another platform holds it" and "you
    # hold it under another reference": an authorization is no oracle for who holds what.
    if (
        holding is None
        or holding.consumed
        or holding.holder_platform != request.platform
        or not keys.matches(
            bytes(holding.holder_ref),
            holding.holder_ref_scheme,
            request.platform,
            request.reference,
        )
    ):
        raise NotTheHolder(f"your platform does not hold {good} under that reference")
    revoked = conn.execute(
        select(entries_t.c.id).where(
            entries_t.c.kind == int(EntryKind.REVOKE),
            entries_t.c.good_type == good_type,
            entries_t.c.fingerprint == request.fingerprint,
        )
    ).first()
    if revoked is not None:
        raise Conflict(f"{good} was revoked by its creator; it may not change hands")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + request.seconds
    authorization_id = conn.execute(
        authorizations_t.insert()
        .values(
            token_hash=token_hash(token),
            good_type=good_type,
            fingerprint=request.fingerprint,
            holder_platform=request.platform,
            holder_ref=keys.reference_hash(request.platform, request.reference),
            holding_transfer_id=int(holding.last_transfer_id),
            buyer_platform=request.buyer_platform,
            created_at=now,
            expires_at=expires_at,
        )
        .returning(authorizations_t.c.id)
    ).scalar_one()
    return IssuedAuthorization(
        authorization_id=int(authorization_id),
        token=token,
        good_type=request.good_type,
        fingerprint=request.fingerprint,
        buyer_platform=request.buyer_platform,
        expires_at=expires_at,
    )


def find_authorization(
    conn: Connection,
    token: str,
    *,
    buyer_platform: str,
    good_type: GoodType,
    fingerprint: bytes,
    now: int,
) -> Any:
    """The unused, unexpired authorization ``token`` names for this buyer and good; else
    ``AuthorizationRefused``. Nothing is consumed yet (``consume_authorization``)."""
    if not 1 <= len(token) <= MAX_TOKEN_LENGTH:
        raise AuthorizationRefused("no such hand-over authorization")
    row = conn.execute(
        select(authorizations_t).where(authorizations_t.c.token_hash == token_hash(token))
    ).first()
    if row is None:
        raise AuthorizationRefused("no such hand-over authorization")
    if row.buyer_platform != buyer_platform:
        raise AuthorizationRefused("this authorization was issued to another platform")
    if int(row.good_type) != int(good_type) or bytes(row.fingerprint) != fingerprint:
        raise AuthorizationRefused("this authorization is for another good")
    if row.used_at is not None:
        raise AuthorizationRefused("this authorization was already used")
    if int(row.expires_at) <= now:
        raise AuthorizationRefused("this authorization expired; ask the holder for a new one")
    return row


def consume_authorization(conn: Connection, authorization_id: int, *, now: int) -> None:
    """Mark it used, in the transfer's transaction: of two racing uses one wins the UPDATE."""
    a = authorizations_t.c
    used = conn.execute(
        update(authorizations_t)
        .where(a.id == authorization_id, a.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if used != 1:
        raise AuthorizationRefused("this authorization was already used")


def link_transfer(conn: Connection, authorization_id: int, transfer_id: int) -> None:
    """Name the transfer that consumed it (same transaction)."""
    conn.execute(
        update(authorizations_t)
        .where(authorizations_t.c.id == authorization_id)
        .values(transfer_id=transfer_id)
    )


__all__ = [
    "DEFAULT_AUTHORIZATION_SECONDS",
    "MAX_AUTHORIZATION_SECONDS",
    "MAX_TOKEN_LENGTH",
    "TOKEN_PREFIX",
    "AuthorizationRefused",
    "HandoverRequest",
    "IssuedAuthorization",
    "NotTheHolder",
    "consume_authorization",
    "find_authorization",
    "issue_authorization",
    "link_transfer",
    "token_hash",
]
