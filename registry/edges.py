"""The edge types: a 32-byte hash, an address, a good type, a fingerprint, each parsed once.

Bytes inside, ``0x``-hex at the edges (STYLE rule 3). Each edge type is a plain parser
function (raising ``ValueError`` with a message that never echoes the input) and the pydantic
``Annotated`` type built on it, for the frozen formats (bundle, export, receipt, tree head).
Where two meanings are both needed they are two named types, each saying what it accepts:
``Address`` (any case or the exact EIP-55 checksum, 20 bytes inside) against ``AddressText``
(the wire pattern alone, text kept as sent); ``GoodTypeName`` (the name on the wire) against
``GoodTypeField`` (a ``GoodType`` inside, its name outside).

NOTE: pure (no web3, no ORM, no web framework): the verifier kit parses with these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Final, Literal, TypeVar

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictInt,
    StringConstraints,
)

from registry.eip712 import Domain, checksum_address, parse_address
from registry.errors import InvalidInput
from registry.fingerprints import GoodType, parse_good_type
from registry.leaf import MAX_UINT32, MAX_UINT64
from registry.merkle import MAX_PROOF_LENGTH

HASH32_PATTERN: Final = r"^0x[0-9a-fA-F]{64}$"
"""A 32-byte hash (a fingerprint, a root, a payload hash) as text: 0x and 64 hex digits."""

ADDRESS_PATTERN: Final = r"^0x[0-9a-fA-F]{40}$"
"""An EVM address as text, any case: 0x and 40 hex digits."""

GOOD_TEXT_PATTERN: Final = r"^(file|code|item):0x[0-9a-fA-F]{64}$"
"""A good named as ``type:0x<fingerprint>`` (exports, signals)."""


def parse_hex_of(size: int) -> Callable[[object], bytes]:
    """A parser of exactly ``size`` bytes, given raw or as 0x and ``2 * size`` hex digits."""
    text_length = 2 + 2 * size
    fromhex = bytes.fromhex

    def parse(value: object) -> bytes:
        # NOTE: text first, its prefix by two indexings (no slice), ``fromhex`` bound once:
        # this runs for each of an export's ~130,000 hex fields (a third faster than before).
        if isinstance(value, str):
            if len(value) == text_length and value[0] == "0" and value[1] == "x":
                # ``bytes.fromhex`` skips ASCII whitespace between byte pairs; with the text's
                # length fixed, any whitespace leaves fewer than ``size`` bytes, so the length
                # check below refuses it (a set-of-digits scan cost 0.2 s on an export).
                try:
                    decoded = fromhex(value[2:])
                except ValueError:
                    decoded = b""
                if len(decoded) == size:
                    return decoded
        elif isinstance(value, bytes) and len(value) == size:
            return value
        raise ValueError(f"must be 0x and {2 * size} hex digits")

    return parse


parse_hash32: Final = parse_hex_of(32)
"""Parse a 32-byte hash: raw bytes, or 0x and 64 hex digits in either case."""


MAX_HEX_BYTES: Final = 1024
"""Most bytes a free-length hex field (a signature) carries; the wire pattern's own bound."""


def parse_hex_bytes(value: object) -> bytes:
    """Parse 0 to ``MAX_HEX_BYTES`` bytes, given raw or as 0x and pairs of hex digits."""
    if isinstance(value, bytes) and len(value) <= MAX_HEX_BYTES:
        return value
    if isinstance(value, str) and value[:2] == "0x" and len(value) <= 2 + 2 * MAX_HEX_BYTES:
        digits = value[2:]
        if len(digits) % 2 == 0 and all(c in _HEX_DIGITS for c in digits):
            return bytes.fromhex(digits)
    raise ValueError(f"must be 0x and up to {2 * MAX_HEX_BYTES} hex digits, in pairs")


_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")


def parse_amount(value: object) -> int:
    """Parse an amount in minor units: an integer, or its decimal text without a sign or
    leading zeros (amounts travel as text: JSON numbers over 2^53 lose digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if (
        isinstance(value, str)
        and 0 < len(value) <= 78
        and value.isascii()
        and value.isdigit()
        and (value == "0" or value[0] != "0")
    ):
        return int(value)
    raise ValueError("must be an amount: a decimal integer of up to 78 digits, as text")


def parse_domain(value: object) -> Domain:
    """Parse an EIP-712 domain from its typed-data JSON (``Domain.from_dict``)."""
    if isinstance(value, Domain):
        return value
    if not isinstance(value, dict):
        raise ValueError("must be an EIP-712 domain object")
    return _as_value_error(Domain.from_dict, value)


_T = TypeVar("_T")
_R = TypeVar("_R")


def _as_value_error(parse: Callable[[_T], _R], value: _T) -> _R:
    """``parse(value)`` by one of the registry's parsers, its ``InvalidInput`` raised as the
    ``ValueError`` pydantic reports (the same detail, never the input)."""
    try:
        return parse(value)
    except InvalidInput as exc:
        raise ValueError(exc.detail) from None


def to_hex(value: bytes) -> str:
    """The edge form of bytes: 0x and lower-case hex digits."""
    return "0x" + value.hex()


def parse_address_bytes(value: object) -> bytes:
    """Parse an address to its 20 bytes: all-lower or all-upper case, or the exact EIP-55
    checksum (``eip712.parse_address``)."""
    if isinstance(value, bytes) and len(value) == 20:
        return value
    if not isinstance(value, str):
        raise ValueError("must be an address, 0x and 40 hex digits")
    return bytes.fromhex(_as_value_error(parse_address, value)[2:])


def parse_good_type_field(value: object) -> GoodType:
    """Parse a good type given by its published name (``file``, ``code``, ``item``)."""
    if isinstance(value, GoodType):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a good type name: file, code or item")
    return _as_value_error(parse_good_type, value)


def good_type_name(value: GoodType) -> str:
    """The published name of a good type: ``file``, ``code`` or ``item``."""
    return value.name.lower()


Hash32 = Annotated[bytes, BeforeValidator(parse_hash32), PlainSerializer(to_hex, return_type=str)]
"""A SHA-256 digest (fingerprint, leaf field, root, proof node) or a transaction hash."""

BoundedBytes = Annotated[
    bytes, BeforeValidator(parse_hex_bytes), PlainSerializer(to_hex, return_type=str)
]
"""Free-length bytes (at most ``MAX_HEX_BYTES``), as 0x-hex outside: a signature as sent,
whose length and rules its check enforces."""

MinorAmount = Annotated[int, BeforeValidator(parse_amount), PlainSerializer(str, return_type=str)]
"""An amount in a currency's minor units: an int inside, decimal text outside."""

DomainField = Annotated[
    Domain, PlainValidator(parse_domain), PlainSerializer(Domain.as_dict, return_type=dict)
]
"""An EIP-712 domain: a ``Domain`` inside, its typed-data JSON outside."""

SignatureBytes = Annotated[
    bytes, BeforeValidator(parse_hex_of(65)), PlainSerializer(to_hex, return_type=str)
]
"""65 bytes r || s || v; the signature rules themselves are checked by the verifier."""

Address = Annotated[
    bytes, BeforeValidator(parse_address_bytes), PlainSerializer(checksum_address, return_type=str)
]
"""An EVM address: 20 bytes inside, EIP-55 checksummed text outside; a mixed-case address
must carry the exact checksum."""

AddressText = Annotated[str, StringConstraints(pattern=ADDRESS_PATTERN)]
"""An address as a wire schema takes it: 0x and 40 hex digits in any case, text kept as sent
(the checksum is checked where the address is used, e.g. ``parse_address``)."""

Hex32 = Annotated[str, StringConstraints(pattern=HASH32_PATTERN)]
"""A 32-byte hash as a wire schema takes it: 0x and 64 hex digits, text kept as sent."""

GoodTypeName = Literal["file", "code", "item"]
"""A good type as a wire schema takes it: its published name."""

GoodTypeField = Annotated[
    GoodType,
    BeforeValidator(parse_good_type_field),
    PlainSerializer(good_type_name, return_type=str),
]
"""A good type: a ``GoodType`` inside, its published name outside."""


Uint32 = Annotated[StrictInt, Field(ge=0, le=MAX_UINT32)]
Uint64 = Annotated[StrictInt, Field(ge=0, le=MAX_UINT64)]
Proof = Annotated[tuple[Hash32, ...], Field(max_length=MAX_PROOF_LENGTH)]
"""An RFC 9162 audit path; its exact length is bound to (index, size) by the verifier."""


__all__ = [
    "ADDRESS_PATTERN",
    "GOOD_TEXT_PATTERN",
    "HASH32_PATTERN",
    "MAX_HEX_BYTES",
    "MAX_UINT32",
    "MAX_UINT64",
    "Address",
    "AddressText",
    "BoundedBytes",
    "DomainField",
    "GoodTypeField",
    "GoodTypeName",
    "Hash32",
    "Hex32",
    "MinorAmount",
    "Proof",
    "SignatureBytes",
    "Uint32",
    "Uint64",
    "good_type_name",
    "parse_address_bytes",
    "parse_amount",
    "parse_domain",
    "parse_good_type_field",
    "parse_hash32",
    "parse_hex_bytes",
    "parse_hex_of",
    "to_hex",
]
