"""A CREATOR_IDENTITY entry (kind 6): a creator's verified name as logged, its payload
document, and its check."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Self

from registry.eip712 import Domain, checksum_address, parse_address
from registry.errors import InvalidInput, TracemarkError
from registry.payloads import Payload
from verifier.identity import (
    LAPSED,
    VERIFIED,
    CreatorStatement,
    IdentityStatus,
    method,
    parse_domain,
    parse_name,
    parse_uint64,
    statement_url,
)

_IDENTITY_KEYS: Final = frozenset({"creator", "domain", "name", "status", "checked_at", "url"})
_PAYLOAD_KEYS: Final = frozenset({"identity", "statement", "registry", "domain", "reason"})


class InvalidIdentityEntry(TracemarkError):
    """A CREATOR_IDENTITY entry's payload does not prove what it says."""

    code = "invalid-identity-entry"


@dataclass(frozen=True, slots=True)
class IdentityClaim:
    """What a CREATOR_IDENTITY entry says: a creator's name on a domain, verified or lapsed,
    as the registry checked it at ``checked_at``."""

    creator: str
    name: str
    domain: str
    status: IdentityStatus
    checked_at: int
    url: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "creator", parse_address(self.creator, what="creator"))
        parse_name(self.name)
        parse_domain(self.domain)
        if self.status not in (VERIFIED, LAPSED):
            raise InvalidInput("an identity's status is 'verified' or 'lapsed'")
        parse_uint64(self.checked_at, "checked_at")
        if self.url not in (
            statement_url(self.domain),
            statement_url(self.domain, scheme="http"),
        ):
            raise InvalidInput(f"an identity's url is {statement_url(self.domain)}")

    @property
    def method(self) -> str:
        return method(self.url)

    def document(self) -> dict[str, Any]:
        """The ``identity`` object of the entry's payload."""
        return {
            "creator": self.creator,
            "domain": self.domain,
            "name": self.name,
            "status": self.status,
            "checked_at": self.checked_at,
            "url": self.url,
        }

    def answer(self) -> dict[str, Any]:
        """As a verify answer, a trace and a bundle show it (``creator_identity``)."""
        return {
            "name": self.name,
            "domain": self.domain,
            "status": self.status,
            "checked_at": self.checked_at,
            "method": self.method,
        }


@dataclass(frozen=True, slots=True)
class CreatorIdentityPayload(Payload):
    """A CREATOR_IDENTITY entry's payload (its RFC 8785 SHA-256 is the leaf's
    ``payload_hash``): the claim, the creator's statement it was checked against, the
    registry that attests it and the EIP-712 domain it was logged under. A lapsed entry
    carries the statement that was verified before, and why it no longer verifies."""

    identity: IdentityClaim
    statement: CreatorStatement
    registry: str
    domain: Domain
    reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "registry", parse_address(self.registry, what="registry"))
        if self.reason is not None and not isinstance(self.reason, str):
            raise InvalidInput("an identity entry's reason is text or null")
        if (self.identity.status == LAPSED) != (self.reason is not None):
            raise InvalidInput("a lapsed identity entry says why; a verified one does not")

    def document(self) -> dict[str, Any]:
        return {
            "identity": self.identity.document(),
            "statement": self.statement.document(),
            "registry": self.registry,
            "domain": self.domain.as_dict(),
            "reason": self.reason,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, canonical: bool = True) -> Self:
        if not isinstance(document, Mapping) or set(document) != _PAYLOAD_KEYS:
            raise InvalidInput(
                f"an identity entry's payload has exactly the keys {sorted(_PAYLOAD_KEYS)}"
            )
        identity = document["identity"]
        if not isinstance(identity, Mapping) or set(identity) != _IDENTITY_KEYS:
            raise InvalidInput(f"identity has exactly the keys {sorted(_IDENTITY_KEYS)}")
        try:
            claim = IdentityClaim(**dict(identity))
        except TypeError as exc:
            raise InvalidInput(f"an identity's fields are mistyped: {exc}") from None
        parsed = cls(
            identity=claim,
            statement=CreatorStatement.from_document(document["statement"]),
            registry=document["registry"],
            domain=Domain.from_dict(document["domain"]),
            reason=document["reason"],
        )
        return cls._canonical(parsed, document, canonical)


def identity_payload(
    claim: IdentityClaim,
    statement: CreatorStatement,
    *,
    registry: str,
    eip712_domain: Domain,
    reason: str | None = None,
) -> CreatorIdentityPayload:
    """The payload of a CREATOR_IDENTITY entry the registry attests under ``eip712_domain``."""
    return CreatorIdentityPayload(claim, statement, registry, eip712_domain, reason)


def verify_identity_entry(
    payload: Mapping[str, Any],
    *,
    creator: bytes,
    eip712_domain: Domain,
    registry: str | Callable[[str], bool],
) -> IdentityClaim:
    """Check a CREATOR_IDENTITY entry's payload offline; return what it proves, or raise
    ``InvalidIdentityEntry``.

    ``creator`` is the 20-byte subject the leaf names (the caller checks the leaf's
    fingerprint is ``subject_fingerprint(CREATOR_IDENTITY, creator)`` and its payload hash);
    ``eip712_domain`` is the domain the caller trusts (the tree head's), never the one stored
    in the payload; ``registry`` is the registry address the caller expects as the entry's
    attester (the leaf's actor), or a predicate over it (e.g. "one of the pinned keys").

    1. The payload has the entry's shape, and the registry that attests it is accepted.
    2. Its identity names this creator, a valid name and domain, a status and the URL.
    3. Its statement names the same creator, domain and name.
    4. The statement's signature recovers the creator under ``eip712_domain``.

    A "lapsed" entry still carries a statement the creator signed: it says the name was once
    verified and no longer is; show it as such, never as verified.
    """
    try:
        # 1.
        if not isinstance(payload, Mapping) or set(payload) != _PAYLOAD_KEYS:
            raise InvalidIdentityEntry(
                f"an identity entry's payload has exactly the keys {sorted(_PAYLOAD_KEYS)}"
            )
        attester = parse_address(payload["registry"], what="registry")
        accepted = (
            registry(attester)
            if callable(registry)
            else attester == parse_address(registry, what="expected registry")
        )
        if not accepted:
            raise InvalidIdentityEntry(f"the entry is attested by {attester}, not a trusted key")
        # 2.
        identity = payload["identity"]
        if not isinstance(identity, Mapping) or set(identity) != _IDENTITY_KEYS:
            raise InvalidIdentityEntry(f"identity has exactly the keys {sorted(_IDENTITY_KEYS)}")
        # NOTE: not canonical: the caller hashed the payload as shipped (the leaf proves it).
        entry = CreatorIdentityPayload.from_document(payload, canonical=False)
        claim, statement = entry.identity, entry.statement
        subject = checksum_address(creator)
        if claim.creator != subject:
            raise InvalidIdentityEntry(f"the entry is about {claim.creator}, not {subject}")
        # 3. and 4.
        if statement.name != claim.name:
            raise InvalidIdentityEntry("the statement names another name than the entry")
        statement.check(creator=subject, domain=claim.domain, eip712_domain=eip712_domain)
    except InvalidIdentityEntry:
        raise
    except (InvalidInput, TypeError) as exc:
        detail = exc.detail if isinstance(exc, TracemarkError) else str(exc)
        raise InvalidIdentityEntry(f"the identity entry does not verify: {detail}") from None
    return claim


__all__ = [
    "CreatorIdentityPayload",
    "IdentityClaim",
    "InvalidIdentityEntry",
    "identity_payload",
    "verify_identity_entry",
]
