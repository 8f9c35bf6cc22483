"""Who made a request (``Principal``), and the two refusals: no acceptable credentials
(``Unauthorized``, 401) and not allowed (``Forbidden``, 403)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from api.ratelimit import ANONYMOUS, API_KEY, AUDITOR, CREATOR
from registry.errors import TracemarkError

#: The scopes a platform key can hold; creators hold ``creator`` only.
PLATFORM_SCOPES: Final = frozenset({"verify", "transfer", "audit"})
CREATOR_SCOPE: Final = "creator"

#: The one detail of every refused credential: it says what to send, never what was sent.
BAD_CREDENTIALS = (
    "missing, malformed, unknown, revoked or expired credentials; "
    "send 'Authorization: Bearer <API key or session token>'"
)

Kind = Literal["platform", "creator", "anonymous"]


class Unauthorized(TracemarkError):
    """No acceptable credentials (401, ``WWW-Authenticate: Bearer``).

    ``error`` is the RFC 6750 §3.1 code for the challenge: ``invalid_token`` when a
    credential was presented and refused, None when there was none to refuse.
    """

    code = "unauthorized"
    http_status = 401
    diagnostics = "Send a valid API key (Authorization: Bearer tm_live_...) or sign in again."

    def __init__(self, detail: str = BAD_CREDENTIALS, *, error: str | None = "invalid_token"):
        super().__init__(detail)
        self.error = error


class Forbidden(TracemarkError):
    """Authenticated, but this principal's role or scopes do not allow the call (403)."""

    code = "forbidden"
    http_status = 403
    diagnostics = "Use a credential with the role or scope the detail names."


@dataclass(frozen=True)
class Principal:
    """Who made a request, as far as the API is concerned."""

    kind: Kind
    platform: str | None = None
    scopes: frozenset[str] = frozenset()
    #: The creator's EIP-55 checksummed address.
    creator: str | None = None
    key_id: int | None = None
    client_ip: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "platform":
            if self.platform is None or self.key_id is None or not self.scopes <= PLATFORM_SCOPES:
                raise ValueError("a platform principal needs a platform, a key id, its scopes")
        elif self.kind == "creator":
            if self.creator is None or self.scopes != frozenset({CREATOR_SCOPE}):
                raise ValueError("a creator principal needs an address and the creator scope")
        elif self.kind == "anonymous":
            if self.platform or self.creator or self.key_id is not None or self.scopes:
                raise ValueError("an anonymous principal has no identity and no scopes")
        else:
            raise ValueError(f"unknown principal kind {self.kind!r}")

    @classmethod
    def anonymous(cls, client_ip: str | None) -> Principal:
        return cls(kind="anonymous", client_ip=client_ip)

    @property
    def rate_key(self) -> str:
        """The rate limiter's key: ``key:<id>``, ``creator:<address>`` or ``ip:<addr>``."""
        if self.kind == "platform":
            return f"key:{self.key_id}"
        if self.kind == "creator":
            return f"creator:{self.creator}"
        return f"ip:{self.client_ip or 'unknown'}"

    @property
    def address_key(self) -> str:
        """The client address's key (``ip:<addr>``), whoever the principal is: what the public
        tier charges, so that fresh wallets from one address share one budget."""
        return f"ip:{self.client_ip or 'unknown'}"

    @property
    def owner(self) -> str:
        """Who owns what this principal creates (idempotency keys, jobs): ``platform:<id>``
        (every key of one platform alike), ``creator:<address>`` or ``ip:<addr>``."""
        if self.kind == "platform":
            return f"platform:{self.platform}"
        return self.rate_key

    @property
    def request_bucket(self) -> str:
        """The rate limit every request of this principal is charged to.

        Keys with the ``audit`` scope get the auditors' higher limit: they must keep up with
        the log's growth (THREATS 38).
        """
        if self.kind == "platform":
            return AUDITOR if "audit" in self.scopes else API_KEY
        if self.kind == "creator":
            return CREATOR
        return ANONYMOUS


__all__ = [
    "BAD_CREDENTIALS",
    "CREATOR_SCOPE",
    "PLATFORM_SCOPES",
    "Forbidden",
    "Kind",
    "Principal",
    "Unauthorized",
]
