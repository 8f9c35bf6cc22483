"""Sign-In with Ethereum (EIP-4361): the message text a creator signs to read its own data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

SIGN_IN_STATEMENT: Final = "Sign in to the tracemark registry to read your goods and statements."

#: The end of an EIP-4361 message's first line, after the (optional scheme and) domain.
HEADER_SUFFIX: Final = " wants you to sign in with your Ethereum account:"


def siwe_time(unix_seconds: int) -> str:
    """An RFC 3339 UTC date-time with a Z, as EIP-4361 messages carry it."""
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SiweText:
    """An EIP-4361 message's fields as written (times as text, kept byte-exact), unchecked:
    the server's ``api.siwemessage.SiweMessage`` adds the grammar's checks."""

    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    version: str = "1"
    scheme: str | None = None
    statement: str | None = None
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = ()

    def to_text(self) -> str:
        """The message exactly as the EIP's ABNF lays it out (what the wallet signs): header,
        address, a blank line, the optional statement and a blank line, then the fields in
        order, LF line ends and no trailing newline."""
        scheme = f"{self.scheme}://" if self.scheme is not None else ""
        lines = [f"{scheme}{self.domain}{HEADER_SUFFIX}", self.address, ""]
        if self.statement is not None:
            lines.append(self.statement)
        lines += [
            "",
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {self.issued_at}",
        ]
        if self.expiration_time is not None:
            lines.append(f"Expiration Time: {self.expiration_time}")
        if self.not_before is not None:
            lines.append(f"Not Before: {self.not_before}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources:
            lines.append("Resources:")
            lines += [f"- {resource}" for resource in self.resources]
        return "\n".join(lines)


def siwe_message(
    *,
    domain: str,
    address: str,
    uri: str,
    chain_id: int,
    nonce: str,
    issued_at: int,
    statement: str | None = None,
    expiration_time: int | None = None,
    not_before: int | None = None,
    request_id: str | None = None,
    resources: tuple[str, ...] = (),
    scheme: str | None = None,
) -> str:
    """The EIP-4361 message text a creator signs (times as Unix seconds), in the one layout
    the server's parser accepts (it takes exactly one text per message)."""
    return SiweText(
        domain=domain,
        scheme=scheme,
        address=address,
        statement=statement,
        uri=uri,
        chain_id=chain_id,
        nonce=nonce,
        issued_at=siwe_time(issued_at),
        expiration_time=None if expiration_time is None else siwe_time(expiration_time),
        not_before=None if not_before is None else siwe_time(not_before),
        request_id=request_id,
        resources=tuple(resources),
    ).to_text()
