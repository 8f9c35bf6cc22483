"""The Sign-In with Ethereum (EIP-4361) message: its grammar, parsed and printed back exactly.

The ``siwe`` package pins web3 < 8 and eth-account < 0.14, so this module implements the
spec itself: ``parse_message`` follows the EIP's ABNF line by line, and a parsed message
must print back to exactly the text it came from, so no two readings of one text exist.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from api.principal import Unauthorized
from registry.edges import ADDRESS_PATTERN
from registry.eip712 import checksum_address
from verifier.signin import HEADER_SUFFIX, SiweText, siwe_message

#: Longest message accepted: bounds parsing and hashing for an unauthenticated caller.
MAX_MESSAGE_LENGTH: Final = 4096
#: Longest single field (URI, statement, request id, a resource).
MAX_FIELD_LENGTH: Final = 1024
#: Most resources listed in one message.
MAX_RESOURCES: Final = 32
#: Longest nonce accepted (ours are 22 characters).
MAX_NONCE_LENGTH: Final = 128

_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*"
# RFC 3986 authority, loosely: no whitespace, no path, query or fragment delimiters; the
# domain must then equal the server's exactly, which is the real check.
_HEADER_RE = re.compile(rf"(?:(?P<scheme>{_SCHEME})://)?(?P<domain>[^\s/?#]+)\Z")
_ADDRESS_RE = re.compile(ADDRESS_PATTERN)
# ABNF statement: *( reserved / unreserved / " " ) (RFC 3986 §2.2, §2.3): no LF, ASCII only.
_STATEMENT_RE = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;= ]+\Z")
# RFC 3986 URI: a scheme, ":", then URI characters (reserved, unreserved, percent).
_URI_RE = re.compile(rf"{_SCHEME}:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*\Z")
_CHAIN_ID_RE = re.compile(r"[0-9]{1,20}\Z")
_NONCE_RE = re.compile(rf"[A-Za-z0-9]{{8,{MAX_NONCE_LENGTH}}}\Z")
# RFC 3339 date-time.
_DATE_TIME_RE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]+))?(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)
# ABNF request-id: *pchar (RFC 3986 §3.3).
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%]*\Z")


class SiweRejected(Unauthorized):
    """A sign-in refused (401): the detail says which check failed."""

    code = "siwe-rejected"
    diagnostics = "Ask for a new nonce; sign a fresh message for this registry's domain and chain."

    def __init__(self, detail: str) -> None:
        super().__init__(detail, error=None)


def _seconds(value: str, what: str) -> float:
    """Unix seconds of an RFC 3339 date-time, or ``SiweRejected``."""
    match = _DATE_TIME_RE.match(value)
    if match is None:
        raise SiweRejected(f"{what} must be an RFC 3339 date-time such as 2026-01-02T03:04:05Z")
    offset = match["offset"].upper()
    fraction = (match["fraction"] or "")[:6]
    iso = f"{match['date']}T{match['time']}{'.' + fraction if fraction else ''}"
    iso += "+00:00" if offset == "Z" else offset
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        raise SiweRejected(f"{what} is not a valid date and time") from None


@dataclass(frozen=True)
class SiweMessage(SiweText):
    """An EIP-4361 message, its fields as written (times as text, kept byte-exact), each
    checked against the EIP's grammar when the message is made; ``to_text`` is the kit's."""

    def __post_init__(self) -> None:
        header = (f"{self.scheme}://" if self.scheme is not None else "") + self.domain
        if not _HEADER_RE.match(header) or not self.domain:
            raise SiweRejected("the domain must be an RFC 3986 authority such as example.com")
        if not _ADDRESS_RE.fullmatch(self.address):
            raise SiweRejected("the address must be 0x and 40 hex digits")
        if checksum_address(bytes.fromhex(self.address[2:])) != self.address:
            raise SiweRejected("the address must be in its EIP-55 checksummed form")
        if self.statement is not None and not (
            len(self.statement) <= MAX_FIELD_LENGTH and _STATEMENT_RE.match(self.statement)
        ):
            raise SiweRejected(
                "the statement must be one line of RFC 3986 reserved/unreserved characters "
                "and spaces"
            )
        self._field(self.uri, _URI_RE, "the URI must be an RFC 3986 URI")
        if self.version != "1":
            raise SiweRejected("the version must be 1")
        if isinstance(self.chain_id, bool) or not 0 < self.chain_id < 2**64:
            raise SiweRejected("the chain id must be a positive integer below 2^64")
        if not _NONCE_RE.match(self.nonce):
            raise SiweRejected(
                f"the nonce must be 8 to {MAX_NONCE_LENGTH} letters and digits (ask for one)"
            )
        for value, what in (
            (self.issued_at, "Issued At"),
            (self.expiration_time, "Expiration Time"),
            (self.not_before, "Not Before"),
        ):
            if value is not None:
                _seconds(value, what)
        if self.request_id is not None:
            self._field(self.request_id, _REQUEST_ID_RE, "the request id must be RFC 3986 pchars")
        if len(self.resources) > MAX_RESOURCES:
            raise SiweRejected(f"at most {MAX_RESOURCES} resources")
        for resource in self.resources:
            self._field(resource, _URI_RE, "every resource must be an RFC 3986 URI")

    @staticmethod
    def _field(value: str, pattern: re.Pattern[str], detail: str) -> None:
        if not (isinstance(value, str) and len(value) <= MAX_FIELD_LENGTH and pattern.match(value)):
            raise SiweRejected(detail)

    @property
    def issued_at_unix(self) -> int:
        return math.floor(_seconds(self.issued_at, "Issued At"))

    @property
    def expiration_unix(self) -> int | None:
        """Rounded down: a session never outlives the message's own expiry."""
        if self.expiration_time is None:
            return None
        return math.floor(_seconds(self.expiration_time, "Expiration Time"))

    @property
    def not_before_unix(self) -> int | None:
        """Rounded up: never valid before the message says."""
        if self.not_before is None:
            return None
        return math.ceil(_seconds(self.not_before, "Not Before"))


class _Lines:
    """The message's lines with a cursor; errors name the 1-based line number."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.index = 0

    def at_end(self) -> bool:
        return self.index >= len(self.lines)

    def peek(self) -> str | None:
        return None if self.at_end() else self.lines[self.index]

    def take(self, what: str) -> str:
        if self.at_end():
            raise SiweRejected(f"the message ends early: expected {what} on line {self.index + 1}")
        line = self.lines[self.index]
        self.index += 1
        return line

    def field(self, tag: str) -> str:
        line = self.take(f"'{tag}'")
        if not line.startswith(tag):
            raise SiweRejected(f"line {self.index}: expected '{tag}...'")
        return line[len(tag) :]

    def optional(self, tag: str) -> str | None:
        line = self.peek()
        if line is None or not line.startswith(tag):
            return None
        self.index += 1
        return line[len(tag) :]


def parse_message(text: str) -> SiweMessage:
    """Parse an EIP-4361 message per its ABNF; ``SiweRejected`` names the first bad line."""
    if not isinstance(text, str) or len(text) > MAX_MESSAGE_LENGTH:
        raise SiweRejected(f"a sign-in message is text of at most {MAX_MESSAGE_LENGTH} characters")
    if not text.isascii():
        raise SiweRejected("a sign-in message is ASCII only")
    if "\r" in text:
        raise SiweRejected("lines of a sign-in message end with LF only, not CR LF")
    if text.endswith("\n"):
        raise SiweRejected("a sign-in message does not end with a newline")
    lines = _Lines(text)
    header = lines.take("the header")
    if not header.endswith(HEADER_SUFFIX):
        raise SiweRejected(f"line 1 must end with '{HEADER_SUFFIX.strip()}'")
    match = _HEADER_RE.match(header[: -len(HEADER_SUFFIX)])
    if match is None:
        raise SiweRejected("line 1 must start with the domain (an RFC 3986 authority)")
    address = lines.take("the address")
    if lines.take("an empty line") != "":
        raise SiweRejected("line 3 must be empty")
    # [ statement LF ] LF: a statement line and an empty line, or just the empty line.
    statement: str | None = lines.take("the statement or an empty line")
    if statement:
        if lines.take("an empty line") != "":
            raise SiweRejected(f"line {lines.index} must be empty (after the statement)")
    else:
        statement = None
    uri = lines.field("URI: ")
    version = lines.field("Version: ")
    chain_id = lines.field("Chain ID: ")
    nonce = lines.field("Nonce: ")
    issued_at = lines.field("Issued At: ")
    expiration_time = lines.optional("Expiration Time: ")
    not_before = lines.optional("Not Before: ")
    request_id = lines.optional("Request ID: ")
    resources: list[str] = []
    if lines.peek() == "Resources:":
        lines.index += 1
        while not lines.at_end():
            resource = lines.take("a resource")
            if not resource.startswith("- "):
                raise SiweRejected(f"line {lines.index}: a resource line starts with '- '")
            resources.append(resource[2:])
    if not lines.at_end():
        raise SiweRejected(
            f"line {lines.index + 1}: unexpected (fields go in the EIP-4361 order, "
            "and the message has no trailing newline)"
        )
    if not _CHAIN_ID_RE.match(chain_id):
        raise SiweRejected("the chain id must be decimal digits")
    message = SiweMessage(
        domain=match["domain"],
        scheme=match["scheme"],
        address=address,
        statement=statement,
        uri=uri,
        version=version,
        chain_id=int(chain_id),
        nonce=nonce,
        issued_at=issued_at,
        expiration_time=expiration_time,
        not_before=not_before,
        request_id=request_id,
        resources=tuple(resources),
    )
    # One text, one reading: the parsed message must print back to the very same text.
    if message.to_text() != text:
        raise SiweRejected("the message is not in the EIP-4361 form (check spacing and order)")
    return message


def build_message(**fields: Any) -> str:
    """A well-formed message for a client to sign (times as Unix seconds): the kit's text
    (``verifier.signin.siwe_message``, same fields), checked against this grammar."""
    return parse_message(siwe_message(**fields)).to_text()


__all__ = ["SiweMessage", "SiweRejected", "build_message", "parse_message"]
