"""Goods and their fingerprints: good types, code normalisation, and file/code/item hashing.

CONSENSUS-CRITICAL: every fingerprint computed here ends up in a leaf of the log. Changing the
normalisation, a domain tag or a hashing rule orphans every good already registered; such a
change is a new format version (``tracemark/code/v2``), never an edit. The published vectors
live in ``tests/vectors/normalisation.json``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import BinaryIO, TypeVar

from registry.canonicaljson import canonical_json
from registry.errors import InvalidFingerprint, InvalidInput, MalformedCode


class GoodType(IntEnum):
    """What kind of good a fingerprint identifies (DESIGN "Goods and fingerprints")."""

    FILE = 1
    CODE = 2
    ITEM = 3


class Use(IntEnum):
    """How often a good may change hands: a code is consumed once, a licence resold freely."""

    SINGLE = 1
    TRANSFERABLE = 2


def to_good_type(value: int) -> GoodType:
    """``GoodType(value)`` for an int from the wire or a row, raising ``InvalidInput``."""
    if isinstance(value, int) and not isinstance(value, bool) and value in _GOOD_TYPE_VALUES:
        return GoodType(value)
    raise InvalidInput("good_type must be 1 (file), 2 (code) or 3 (item)")


_GOOD_TYPE_VALUES = frozenset(int(member) for member in GoodType)
_E = TypeVar("_E", bound=IntEnum)


def parse_good_type(name: str) -> GoodType:
    """Map the published name ("file", "code", "item") to its ``GoodType``."""
    return _parse_enum_name(GoodType, name, "good type")


def parse_use(name: str) -> Use:
    """Map the published name ("single", "transferable") to its ``Use``."""
    return _parse_enum_name(Use, name, "use")


USE_NAMES: Mapping[int, str] = {int(use): use.name.lower() for use in Use}
"""Each ``Use`` value's published name, as answers and traces show it (``parse_use``'s inverse)."""


def _parse_enum_name(enum: type[_E], name: str, what: str) -> _E:
    choices: dict[str, _E] = _enum_names(enum)
    if not isinstance(name, str) or name not in choices:
        raise InvalidInput(f"unknown {what}; expected one of {', '.join(choices)}")
    return choices[name]


@functools.cache
def _enum_names(enum: type[_E]) -> dict[str, _E]:
    # Built once per enum: a verifier parses two names for each entry it reads.
    return {member.name.lower(): member for member in enum}


CODE_DOMAIN = b"tracemark/code/v1\x00"
"""Domain tag of a code fingerprint, so it can never equal a file or item fingerprint."""

ITEM_DOMAIN = b"tracemark/item/v1\x00"
"""Domain tag of an item fingerprint."""

FINGERPRINT_SIZE = 32
"""Every fingerprint is 32 bytes (SHA-256 or HMAC-SHA256 output)."""

CODE_KEY_SIZE = 32
"""A creator's code key: 32 random bytes, the full strength of HMAC-SHA256 (RFC 2104 §3)."""

MAX_CODE_LENGTH = 256
"""Longest code accepted, in characters before normalisation.

Guards against resource exhaustion (THREATS 40): NFKC can expand one character into up to 18,
so an unbounded code would let one request cost unbounded work. Real PINs and activation keys
are far shorter.
"""

MAX_ITEM_BYTES = 16 * 1024
"""Largest canonical (RFC 8785) JSON of an item's identifying fields, in bytes.

Identifying fields are a handful of attributes, not a document; the bound stops one request
from hashing megabytes (THREATS 40).
"""

FILE_CHUNK_SIZE = 1024 * 1024
"""Files are hashed in 1 MiB chunks, so memory stays flat whatever the size (THREATS 41)."""

EMPTY_FILE_FINGERPRINT = hashlib.sha256(b"").digest()
"""The empty file's fingerprint (SHA-256 of no bytes): no one's good. Registering it is
refused and an empty upload to verify is a 400, so a client that forgot to send the file is
told so instead of getting a verdict on nothing."""

# NOTE: the two character sets below are written out instead of asked of ``unicodedata`` at
# run time, so that the format does not drift with the interpreter's Unicode version. They are
# the Unicode 14.0 (Python 3.11) sets; tests/registry/test_fingerprints.py cross-checks them.

WHITESPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
"""The Unicode ``White_Space`` property (PropList.txt): what normalise_code removes as space."""

DASHES = frozenset(
    "\u002d\u058a\u05be\u1400\u1806\u2010\u2011\u2012\u2013\u2014\u2015"
    "\u2e17\u2e1a\u2e3a\u2e3b\u2e40\u2e5d\u301c\u3030\u30a0"
    "\ufe31\ufe32\ufe58\ufe63\uff0d\U00010ead"
    "\u2212"
)
"""General category Pd (Unicode 14.0) plus U+2212 MINUS SIGN: what normalise_code removes."""

_REMOVED = WHITESPACE | DASHES
_REMOVE_TABLE = dict.fromkeys(map(ord, _REMOVED))


def normalise_code(code: str) -> str:
    """Normalise a code as printed on a card into the form that is fingerprinted.

    Steps (DESIGN "Goods and fingerprints"): Unicode NFKC (UAX #15), then remove every
    whitespace character and every dash (``WHITESPACE``, ``DASHES``), then ``str.upper()``
    (full case mapping, Unicode SpecialCasing: "ß" becomes "SS"). Nothing is renormalised after
    the removal, exactly as published in the vectors.

    Refused before normalising, with ``MalformedCode``: more than ``MAX_CODE_LENGTH``
    characters, and any character of general category C* except the whitespace controls that
    the removal deletes anyway (tab, line feed, ...):

    - Cs (lone surrogates) cannot be encoded as UTF-8 at all;
    - Cn (unassigned, noncharacters): NFKC is only stable for assigned characters, so such a
      code's fingerprint could change with the next Unicode version;
    - Cf (format: zero-width space, soft hyphen, bidi overrides, BOM) is invisible, so two codes
      that look identical would silently get different fingerprints, or a code could be
      spoofed; better to tell the user than to strip them behind their back;
    - Cc (other controls) and Co (private use) are never printed on a card; they mean a
      mis-decoded or crafted input.

    A code that is empty after normalisation is refused too. No message contains the code.
    """
    if not isinstance(code, str):
        raise MalformedCode("a code must be a string")
    if len(code) > MAX_CODE_LENGTH:
        raise MalformedCode(f"a code may have at most {MAX_CODE_LENGTH} characters")
    if code.isascii() and code.isprintable():
        # Printable ASCII: NFKC is the identity, the only whitespace is " " and the only
        # dash is "-", so this is the general path below, minus its work.
        normalised = code.replace("-", "").replace(" ", "").upper()
    else:
        _check_code_characters(code)
        normalised = unicodedata.normalize("NFKC", code).translate(_REMOVE_TABLE).upper()
    if not normalised:
        raise MalformedCode("a code is empty once whitespace and dashes are removed")
    return normalised


def _check_code_characters(code: str) -> None:
    for position, char in enumerate(code):
        category = unicodedata.category(char)
        if category[0] == "C" and char not in WHITESPACE:
            raise MalformedCode(
                f"a code may not contain control, format, private-use, surrogate or "
                f"unassigned characters (Unicode category {category} at position {position})"
            )


def _check_code_key(code_key: bytes) -> None:
    if not isinstance(code_key, bytes) or len(code_key) != CODE_KEY_SIZE:
        raise InvalidInput(f"a code key must be exactly {CODE_KEY_SIZE} bytes")


def code_fingerprint(code_key: bytes, code: str) -> bytes:
    """HMAC-SHA256(code_key, CODE_DOMAIN + normalise_code(code)) (RFC 2104, DESIGN table).

    Keyed so that a leaf or a sibling hash in someone's proof does not let anyone brute-force
    a short PIN (THREATS 11).
    """
    _check_code_key(code_key)
    message = CODE_DOMAIN + normalise_code(code).encode("utf-8")
    return hmac.digest(code_key, message, "sha256")


class CodeFingerprinter:
    """``code_fingerprint`` under one code key, fast enough for 10^6 codes per bulk upload.

    NOTE: this computes HMAC by its definition in RFC 2104 §2, H(K ^ opad, H(K ^ ipad, text)),
    from SHA-256 states that already absorbed the padded key (and, on the inner side,
    ``CODE_DOMAIN``). Copying two C hash states per code is about 40 % faster than copying an
    ``hmac.HMAC`` object, whose ``copy`` runs Python code. The key is exactly 32 bytes, shorter
    than SHA-256's 64-byte block, so RFC 2104's "hash a long key first" branch never applies.
    Tests check it against ``hmac`` for arbitrary keys and codes.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, code_key: bytes) -> None:
        _check_code_key(code_key)
        block = code_key.ljust(hashlib.sha256().block_size, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block) + CODE_DOMAIN)
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __repr__(self) -> str:
        # Never show key material, not even derived states.
        return "CodeFingerprinter(<code key>)"

    def fingerprint(self, code: str) -> bytes:
        """The fingerprint of one code; equal to ``code_fingerprint(key, code)``."""
        inner = self._inner.copy()
        inner.update(normalise_code(code).encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def fingerprint_many(self, codes: Iterable[str]) -> list[bytes]:
        """Fingerprints of many codes, in order; the first malformed code raises."""
        # Locals instead of attribute lookups: this loop runs a million times per upload.
        inner_copy = self._inner.copy
        outer_copy = self._outer.copy
        normalise = normalise_code
        fingerprints: list[bytes] = []
        append = fingerprints.append
        for code in codes:
            inner = inner_copy()
            inner.update(normalise(code).encode("utf-8"))
            outer = outer_copy()
            outer.update(inner.digest())
            append(outer.digest())
        return fingerprints


def file_fingerprint(stream: BinaryIO, *, max_bytes: int | None = None) -> bytes:
    """SHA-256 of everything left in ``stream``, read in 1 MiB chunks (equals ``sha256sum``).

    With ``max_bytes``, reading stops and ``InvalidInput`` is raised as soon as the stream is
    longer, so an oversized upload costs at most one chunk more than the limit (THREATS 41).
    """
    if max_bytes is not None and (
        not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0
    ):
        raise InvalidInput("max_bytes must be a non-negative integer")
    digest = hashlib.sha256()
    total = 0
    while chunk := stream.read(FILE_CHUNK_SIZE):
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise InvalidInput(f"the file is larger than the limit of {max_bytes} bytes")
        digest.update(chunk)
    return digest.digest()


def file_fingerprint_path(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> bytes:
    """``file_fingerprint`` of the file at ``path``."""
    with open(path, "rb") as stream:
        return file_fingerprint(stream, max_bytes=max_bytes)


def item_fingerprint(fields: Mapping[str, object]) -> bytes:
    """SHA-256(ITEM_DOMAIN + RFC 8785 JSON of an item's identifying fields).

    ``fields`` is a non-empty JSON object; its canonical form may be at most
    ``MAX_ITEM_BYTES``. Floats are accepted only where RFC 8785 §3.2.2.3 can serialise them
    (finite), integers only in the I-JSON range (RFC 7493 §2.2).
    """
    if not isinstance(fields, Mapping) or not fields:
        raise InvalidInput("item fields must be a non-empty JSON object")
    return hashlib.sha256(ITEM_DOMAIN + canonical_json(fields, max_bytes=MAX_ITEM_BYTES)).digest()


def parse_fingerprint(text: str) -> bytes:
    """Parse the edge form of a fingerprint: "0x" and 64 hex digits, in either case."""
    if not isinstance(text, str):
        raise InvalidFingerprint("a fingerprint must be a string of 0x and 64 hex digits")
    if text[:2] not in ("0x", "0X"):
        raise InvalidFingerprint("a fingerprint must start with 0x")
    digits = text[2:]
    if len(digits) != 2 * FINGERPRINT_SIZE:
        # The length, never the text: a code pasted into the wrong field must not be echoed.
        raise InvalidFingerprint(
            f"a fingerprint has 64 hex digits after 0x, this one has {len(digits)}"
        )
    # (bytes.fromhex alone would also take spaces.)
    if _HEX_64.fullmatch(digits) is None:
        raise InvalidFingerprint("a fingerprint may only contain hex digits 0-9, a-f after 0x")
    return bytes.fromhex(digits)


_HEX_64 = re.compile(r"[0-9a-fA-F]{64}")


def fingerprint_hex(fingerprint: bytes) -> str:
    """The edge form of a fingerprint: "0x" and 64 lower-case hex digits."""
    _check_fingerprint(fingerprint)
    return "0x" + fingerprint.hex()


def _check_fingerprint(fingerprint: bytes) -> None:
    if not isinstance(fingerprint, bytes) or len(fingerprint) != FINGERPRINT_SIZE:
        raise InvalidFingerprint(f"a fingerprint must be exactly {FINGERPRINT_SIZE} bytes")


@dataclass(frozen=True, slots=True)
class GoodId:
    """A good's identity in the registry: its type and its 32-byte fingerprint."""

    good_type: GoodType
    fingerprint: bytes

    def __post_init__(self) -> None:
        # Accept the plain int a database row carries; store the enum.
        object.__setattr__(self, "good_type", to_good_type(self.good_type))
        _check_fingerprint(self.fingerprint)

    def __str__(self) -> str:
        return f"{self.good_type.name.lower()}:{fingerprint_hex(self.fingerprint)}"


__all__ = [
    "CODE_DOMAIN",
    "CODE_KEY_SIZE",
    "DASHES",
    "EMPTY_FILE_FINGERPRINT",
    "FILE_CHUNK_SIZE",
    "FINGERPRINT_SIZE",
    "ITEM_DOMAIN",
    "MAX_CODE_LENGTH",
    "MAX_ITEM_BYTES",
    "USE_NAMES",
    "WHITESPACE",
    "CodeFingerprinter",
    "GoodId",
    "GoodType",
    "Use",
    "code_fingerprint",
    "file_fingerprint",
    "file_fingerprint_path",
    "fingerprint_hex",
    "item_fingerprint",
    "normalise_code",
    "parse_fingerprint",
    "parse_good_type",
    "parse_use",
    "to_good_type",
]
