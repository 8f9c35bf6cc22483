"""Sign-In with Ethereum (EIP-4361): nonces, and a signed message exchanged for a creator token.

The message's grammar is ``api.siwemessage``. ``sign_in`` checks the message against the
server's expectations and the EIP-191 signature, consumes the nonce atomically, then issues
a ``tm_siwe_`` token (``api.creatortokens``).

Only externally owned accounts sign in (EIP-191); contract wallets (EIP-1271) are not
supported: the registry's creators are EOAs, as their EIP-712 signatures already are.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from eth_account import Account
from eth_account.messages import encode_defunct
from sqlalchemy import Engine, delete, select, update

from api.apikeys import base58_encode
from api.creatortokens import TOKEN_TTL, issue_creator_token
from api.models import SiweNonce
from api.siwemessage import SiweRejected, parse_message
from registry.db import read_transaction, write_transaction
from registry.eip712 import ZERO_ADDRESS
from registry.errors import MalformedSignature
from registry.signatures import Signature

if TYPE_CHECKING:
    from registry.service import Registry
    from registry.settings import Settings

logger = logging.getLogger("tracemark.api.siwe")

#: How long an issued nonce may be signed and presented (seconds).
NONCE_TTL: Final = 600
#: How far in the future a message's Issued At may be (client clocks drift), in seconds.
ISSUED_AT_SKEW: Final = 60
#: Random bytes in a nonce (22 base58 characters; EIP-4361 asks for at least 8).
NONCE_BYTES: Final = 16


def expected_domain(settings: Settings) -> str:
    """The domain a sign-in message must name: the authority (host[:port], RFC 3986, no user
    info) of the URL clients reach the registry at, ``Settings.resolved_public_url``.

    Behind a load balancer every replica expects the public address, which the wallet shows
    and signs, not its own ``api_host:api_port``; without a public URL that is still the
    server's own address, as before."""
    parts = urlsplit(settings.resolved_public_url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    return host if parts.port is None else f"{host}:{parts.port}"


# -- nonces ----------------------------------------------------------------------------------

_nonces_t = SiweNonce.__table__  # type: ignore[attr-defined]


def issue_nonce(engine: Engine, now: int, *, ttl: int = NONCE_TTL) -> str:
    """A fresh random nonce, stored, valid ``ttl`` seconds; expired nonces are swept."""
    nonce = base58_encode(secrets.token_bytes(NONCE_BYTES)).rjust(22, "1")
    with write_transaction(engine) as conn:
        # Housekeeping on the index: the table holds about ttl x issuance rate rows. A
        # deleted nonce is "unknown", which refuses a late sign-in exactly as "expired" does.
        conn.execute(delete(_nonces_t).where(_nonces_t.c.expires_at <= now))
        conn.execute(
            _nonces_t.insert().values(
                nonce=nonce, issued_at=now, expires_at=now + ttl, used_at=None
            )
        )
    return nonce


def _consume_nonce(engine: Engine, nonce: str, now: int) -> None:
    """Mark the nonce used, exactly once: of two concurrent sign-ins only one updates it."""
    with write_transaction(engine) as conn:
        consumed = conn.execute(
            update(_nonces_t)
            .where(
                _nonces_t.c.nonce == nonce,
                _nonces_t.c.used_at.is_(None),
                _nonces_t.c.expires_at > now,
            )
            .values(used_at=now)
        ).rowcount
    if consumed == 1:
        return
    with read_transaction(engine) as conn:
        row = conn.execute(select(_nonces_t).where(_nonces_t.c.nonce == nonce)).first()
    if row is None:
        raise SiweRejected("unknown nonce: ask the registry for a nonce and sign a new message")
    if row.used_at is not None:
        raise SiweRejected("this nonce was already used: sign a new message with a new nonce")
    raise SiweRejected("the nonce has expired: ask for a new one and sign a new message")


# -- sign-in ---------------------------------------------------------------------------------


def _recover(message_text: str, signature_hex: str) -> str:
    try:
        # Low s, v in {27, 28}, 65 bytes: the malleable twin is refused (THREATS 14-16).
        signature = Signature.parse(signature_hex)
    except MalformedSignature as exc:
        raise SiweRejected(exc.detail) from None
    try:
        recovered = Account.recover_message(
            encode_defunct(text=message_text), signature=signature.to_bytes()
        )
    except Exception:  # eth-account/eth-keys raise several kinds; none may escape as a 500
        raise SiweRejected("the signature does not recover to any address") from None
    return str(recovered)


def sign_in(
    engine: Engine,
    message_text: str,
    signature_hex: str,
    *,
    expected_domain: str,
    expected_chain_id: int,
    now: int,
    token_key: bytes,
    token_ttl: int = TOKEN_TTL,
) -> tuple[str, int]:
    """Check a signed EIP-4361 message and consume its nonce: a creator token and its expiry.

    Every refusal is ``SiweRejected`` (401) with the failed check in its detail.
    """
    # 1. The message follows the ABNF.
    message = parse_message(message_text)
    # 2. It is for us: our domain, our chain.
    if message.domain != expected_domain:
        raise SiweRejected(f"the message is for another domain; sign one for {expected_domain}")
    if message.chain_id != expected_chain_id:
        raise SiweRejected(
            f"the message is for another chain; this registry is on chain id {expected_chain_id}"
        )
    # 3. Its times: issued (allowing for clock skew), not expired, already valid.
    if message.issued_at_unix > now + ISSUED_AT_SKEW:
        raise SiweRejected("the message's Issued At is in the future; check the clock")
    expiration = message.expiration_unix
    if expiration is not None and now >= expiration:
        raise SiweRejected("the message has expired (Expiration Time)")
    not_before = message.not_before_unix
    if not_before is not None and now < not_before:
        raise SiweRejected("the message is not valid yet (Not Before)")
    # 4. The EIP-191 signature recovers the message's address (and never the zero address).
    recovered = _recover(message_text, signature_hex)
    if recovered == ZERO_ADDRESS or recovered.lower() != message.address.lower():
        raise SiweRejected("the signature was not made by the message's address")
    # 5. The nonce is ours, unexpired and unused, and is used up now (last: a message that
    #    fails any check above leaves its nonce usable).
    _consume_nonce(engine, message.nonce, now)
    expires_at = now + token_ttl if expiration is None else min(now + token_ttl, expiration)
    token = issue_creator_token(
        token_key, message.address, chain_id=expected_chain_id, now=now, expires_at=expires_at
    )
    logger.info("creator %s signed in until %d", message.address, expires_at)
    return token, expires_at


def sign_in_creator(
    registry: Registry,
    message_text: str,
    signature_hex: str,
    *,
    expected_domain: str,
    token_ttl: int = TOKEN_TTL,
) -> tuple[str, int, str]:
    """``sign_in`` with the registry's database, chain id, clock and token key: the token,
    its expiry and the creator's checksummed address."""
    token, expires_at = sign_in(
        registry.engine,
        message_text,
        signature_hex,
        expected_domain=expected_domain,
        expected_chain_id=registry.domain.chain_id,
        now=registry.clock(),
        token_key=registry.derived_key("siwe-token"),
        token_ttl=token_ttl,
    )
    # The message parsed once already; its address is the token's subject.
    return token, expires_at, parse_message(message_text).address


__all__ = ["NONCE_TTL", "expected_domain", "issue_nonce", "sign_in", "sign_in_creator"]
