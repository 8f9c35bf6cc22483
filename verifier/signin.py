"""Sign-In with Ethereum (EIP-4361): the message text a creator signs to read its own data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

SIGN_IN_STATEMENT: Final = "Sign in to the tracemark registry to read your goods and statements."


def siwe_time(unix_seconds: int) -> str:
    """An RFC 3339 UTC date-time with a Z, as EIP-4361 messages carry it."""
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def siwe_message(
    *,
    domain: str,
    address: str,
    uri: str,
    chain_id: int,
    nonce: str,
    issued_at: int,
    statement: str | None = None,
) -> str:
    """The EIP-4361 message text a creator signs, laid out as the EIP's ABNF (and the
    server's parser, which accepts exactly one text per message) requires: header, address,
    a blank line, the optional statement and a blank line, then the fields in order, LF line
    ends and no trailing newline."""
    lines = [f"{domain} wants you to sign in with your Ethereum account:", address, ""]
    if statement is not None:
        lines.append(statement)
    lines += [
        "",
        f"URI: {uri}",
        "Version: 1",
        f"Chain ID: {chain_id}",
        f"Nonce: {nonce}",
        f"Issued At: {siwe_time(issued_at)}",
    ]
    return "\n".join(lines)
