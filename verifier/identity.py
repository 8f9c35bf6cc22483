"""Creator identity: the ``tracemark-creator/v1`` statement a creator serves on its web domain.

The CREATOR_IDENTITY entry (kind 6) that records it, and its offline check, are in
``verifier.identityclaim``.

Pure: no ORM, no web framework, no chain access (tests/test_purity.py). The server builds the
statement's check and the entry's payload from here; a bundle checker calls
``verifier.identityclaim.verify_identity_entry`` with the EIP-712 domain it pinned, never the
one in the payload.

What "verified" means: at ``checked_at`` the registry fetched a statement from
``https://<domain>/.well-known/tracemark-creator.json`` that the creator's key signed, naming
that domain and that name. It proves control of the domain at that time, not a legal identity.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from registry.eip712 import Domain, checksum_address, keccak, parse_address
from registry.errors import InvalidInput, MalformedSignature, WrongSigner
from registry.signatures import Signature, sign, verify_signature
from verifier import boundedjson
from verifier.timetext import utc_text

FORMAT: Final = "tracemark-creator/v1"
"""The statement's magic and version; any other value is refused."""

WELL_KNOWN_PATH: Final = "/.well-known/tracemark-creator.json"
"""Where a creator serves its statement on its domain (RFC 8615 well-known URI)."""

MAX_STATEMENT_BYTES: Final = 16 * 1024
"""Largest statement read or parsed: a hostile domain could otherwise stream the registry an
endless body (the fetch stops reading here too)."""

MAX_NAME_CHARS: Final = 64
"""Longest display name, in code points after NFC: long names push the address off a screen."""

MAX_DOMAIN_CHARS: Final = 253
"""Longest DNS name (RFC 1035 §2.3.4, without the trailing dot)."""

MAX_CLOCK_SKEW: Final = 300
"""How far in the future a statement's ``issued_at`` may be (seconds): clocks disagree."""

VERIFIED: Final = "verified"
LAPSED: Final = "lapsed"
IdentityStatus = Literal["verified", "lapsed"]

PRIMARY_TYPE: Final = "CreatorIdentity"
"""The EIP-712 struct the creator signs: ``CreatorIdentity(string domain, string name,
uint64 issuedAt)`` under the registry's domain (registry/eip712.py)."""

_STATEMENT_KEYS: Final = frozenset(
    {"format", "creator", "domain", "name", "issued_at", "signature"}
)
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MAX_UINT64: Final = 2**64 - 1
#: Unicode categories a display name may not contain: controls, format characters (the bidi
#: overrides U+202A-U+202E and U+2066-U+2069, zero-width joiners), surrogates, private use,
#: unassigned, and line or paragraph separators.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


# -- errors -----------------------------------------------------------------------------------


class MalformedStatement(InvalidInput):
    """The statement is not a well-formed ``tracemark-creator/v1`` document; fix and re-serve."""

    code = "malformed-identity-statement"


class StatementMismatch(InvalidInput):
    """The statement names another creator or another domain than the one being proved."""

    code = "identity-statement-mismatch"


class StatementWrongSigner(WrongSigner):
    """The statement's signature was not made by the creator's key under this registry's
    EIP-712 domain: sign it again with ``tracemark creator identity --sign``."""

    code = "identity-wrong-signer"


class IdentityUnreachable(InvalidInput):
    """The statement could not be fetched (no answer, not 200, too large); serve it and retry."""

    code = "identity-unreachable"


class IdentityHostRefused(InvalidInput):
    """The domain leads somewhere the registry never connects to (a private address, ...)."""

    code = "identity-host-refused"


# -- fields -----------------------------------------------------------------------------------


def parse_domain(text: object) -> str:
    """A creator's web domain: a lower-case DNS name, optionally ``:port`` (loopback tests);
    no scheme, path, user or trailing dot. Returned unchanged: it is what the creator signs."""
    if not isinstance(text, str) or not text:
        raise MalformedStatement("domain must be a non-empty string such as studio.example")
    host, colon, port = text.partition(":")
    if colon and (not port.isascii() or not port.isdigit() or port[0] == "0" or int(port) > 65535):
        raise MalformedStatement("domain's port must be 1 to 65535 (e.g. 127.0.0.1:8443)")
    if len(host) > MAX_DOMAIN_CHARS or not all(_LABEL.fullmatch(x) for x in host.split(".")):
        raise MalformedStatement(
            "domain must be a lower-case DNS name (letters, digits, hyphens, dots; IDNA "
            "names as xn--), with no scheme, path or trailing dot"
        )
    return text


def parse_name(text: object) -> str:
    """A display name: NFC, 1 to ``MAX_NAME_CHARS`` code points, no control, format, bidi or
    separator characters, single spaces only (a display-spoofing guard)."""
    if not isinstance(text, str):
        raise MalformedStatement("name must be a string")
    if unicodedata.normalize("NFC", text) != text:
        raise MalformedStatement("name must be in Unicode NFC (sign the NFC form)")
    if not 0 < len(text) <= MAX_NAME_CHARS:
        raise MalformedStatement(f"name must be 1 to {MAX_NAME_CHARS} characters")
    for char in text:
        category = unicodedata.category(char)
        if category in _REFUSED_CATEGORIES or (category == "Zs" and char != " "):
            raise MalformedStatement(
                f"name may not contain U+{ord(char):04X} (control, format, bidi or odd space)"
            )
    if text != text.strip(" ") or "  " in text:
        raise MalformedStatement("name may not start or end with a space, or repeat spaces")
    return text


def statement_url(domain: str, *, scheme: str = "https") -> str:
    """Where the statement of ``domain`` is served (``http`` only for development and tests)."""
    if scheme not in ("https", "http"):
        raise InvalidInput("a statement is fetched over https (or http in development)")
    return f"{scheme}://{parse_domain(domain)}{WELL_KNOWN_PATH}"


def method(url: str) -> str:
    """How a name was verified, in words, for answers and pages."""
    return f"signed statement at {url}, checked by the registry"


def describe(name: str, domain: str, status: str, checked_at: int) -> str:
    """One line for a terminal or a page: "Studio — verified owner of studio.example (checked
    2026-01-31)", or, lapsed, plainly "no longer verified"."""
    day = utc_text(checked_at, "%Y-%m-%d")  # any uint64 an entry or answer carries
    if status == VERIFIED:
        return f"{name} \u2014 verified owner of {domain} (checked {day})"
    return f"{name} \u2014 NO LONGER VERIFIED as owner of {domain} (failed a check on {day})"


def parse_uint64(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= _MAX_UINT64:
        raise MalformedStatement(f"{what} must be a positive integer (Unix seconds)")
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise MalformedStatement(f"the statement repeats the key {key!r}")
        document[key] = value
    return document


def _no_constants(name: str) -> object:
    raise MalformedStatement(f"the statement contains {name}, which is not JSON")


# -- the statement ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreatorStatement:
    """``tracemark-creator/v1``: a creator's signed claim of a name on a domain. An invalid
    one cannot be built (its signature is checked by ``check``, which needs the domain)."""

    creator: str
    domain: str
    name: str
    issued_at: int
    signature: bytes

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "creator", parse_address(self.creator, what="creator"))
            object.__setattr__(self, "signature", Signature.parse(self.signature).to_bytes())
        except (InvalidInput, MalformedSignature) as exc:
            raise MalformedStatement(exc.detail) from None
        parse_domain(self.domain)
        parse_name(self.name)
        parse_uint64(self.issued_at, "issued_at")

    @property
    def message(self) -> dict[str, object]:
        """The EIP-712 ``CreatorIdentity`` message the signature covers."""
        return {"domain": self.domain, "name": self.name, "issuedAt": self.issued_at}

    def document(self) -> dict[str, Any]:
        """The statement as JSON values (what ``to_json`` serialises)."""
        return {
            "format": FORMAT,
            "creator": self.creator,
            "domain": self.domain,
            "name": self.name,
            "issued_at": self.issued_at,
            "signature": "0x" + self.signature.hex(),
        }

    def to_json(self) -> str:
        """The file a creator serves at ``WELL_KNOWN_PATH``."""
        return json.dumps(self.document(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_document(cls, document: object) -> CreatorStatement:
        """Parse a decoded statement strictly: exactly the six keys, of their types."""
        if not isinstance(document, Mapping):
            raise MalformedStatement("a statement is a JSON object")
        keys = set(document)
        if keys != _STATEMENT_KEYS:
            unknown, missing = sorted(keys - _STATEMENT_KEYS), sorted(_STATEMENT_KEYS - keys)
            raise MalformedStatement(
                f"a {FORMAT} statement has exactly the keys {', '.join(sorted(_STATEMENT_KEYS))}"
                f" (unknown: {unknown[:3]}, missing: {missing})"
            )
        if document["format"] != FORMAT:
            raise MalformedStatement(f"unknown statement format; only {FORMAT} exists")
        creator, signature = document["creator"], document["signature"]
        if not isinstance(creator, str) or not isinstance(signature, str):
            raise MalformedStatement("creator and signature are 0x-hex strings")
        return cls(
            creator=creator,
            domain=document["domain"],
            name=document["name"],
            issued_at=document["issued_at"],
            signature=signature,  # type: ignore[arg-type]  # parsed from hex in __post_init__
        )

    @classmethod
    def parse(cls, raw: bytes | str) -> CreatorStatement:
        """Parse the served file: at most ``MAX_STATEMENT_BYTES``, UTF-8 JSON, no duplicate
        keys, no NaN, nothing after the object."""
        data = raw.encode("utf-8") if isinstance(raw, str) else raw
        if not isinstance(data, bytes):
            raise MalformedStatement("a statement is bytes or text")
        if len(data) > MAX_STATEMENT_BYTES:
            raise MalformedStatement(f"a statement is at most {MAX_STATEMENT_BYTES} bytes")
        try:
            document = boundedjson.loads(
                data.decode("utf-8"),
                object_pairs_hook=_no_duplicate_keys,
                parse_constant=_no_constants,
            )
        # NOTE: ValueError, not only JSONDecodeError: json.loads also raises a bare
        # ValueError for an integer of more than 4,300 digits (CPython's int-str limit).
        except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError, JsonTooDeep too
            raise MalformedStatement(f"the statement is not UTF-8 JSON ({exc})") from None
        return cls.from_document(document)

    @classmethod
    def signed(
        cls, *, private_key: bytes, domain: str, name: str, issued_at: int, eip712_domain: Domain
    ) -> CreatorStatement:
        """Make a statement with the creator's key (the creator's machine; the name is taken
        in its NFC form)."""
        import coincurve

        nfc = unicodedata.normalize("NFC", name.strip())
        message = {"domain": parse_domain(domain), "name": parse_name(nfc), "issuedAt": issued_at}
        try:
            public = coincurve.PrivateKey(private_key).public_key.format(compressed=False)
        except (ValueError, TypeError):
            raise InvalidInput("a private key is a secp256k1 scalar of 32 bytes") from None
        address = keccak(public[1:])[-20:]  # an Ethereum address: keccak of the public key
        return cls(
            creator=checksum_address(address),
            domain=domain,
            name=nfc,
            issued_at=issued_at,
            signature=sign(PRIMARY_TYPE, message, eip712_domain, private_key),
        )

    def check(
        self, *, creator: str, domain: str, eip712_domain: Domain, now: int | None = None
    ) -> None:
        """Raise unless this statement proves ``domain`` for ``creator`` under ``eip712_domain``.

        1. It names the creator being proved and the domain it was fetched from
           (``StatementMismatch``).
        2. It was not issued in the future, past ``MAX_CLOCK_SKEW`` (when ``now`` is given).
        3. Its signature recovers the creator under the given EIP-712 domain, the caller's
           own, never one the statement could choose (``StatementWrongSigner``).
        """
        # 1.
        if self.creator != parse_address(creator, what="creator"):
            raise StatementMismatch(f"the statement names creator {self.creator}, not {creator}")
        if self.domain != domain:
            raise StatementMismatch(f"the statement names domain {self.domain}, not {domain}")
        # 2.
        if now is not None and self.issued_at > now + MAX_CLOCK_SKEW:
            raise MalformedStatement(f"the statement is issued in the future ({self.issued_at})")
        # 3.
        try:
            verify_signature(PRIMARY_TYPE, self.message, eip712_domain, self.signature, creator)
        except WrongSigner as exc:
            raise StatementWrongSigner(
                f"the statement at {domain} is not signed by {self.creator}'s key under this "
                f"registry's EIP-712 domain: {exc.detail}"
            ) from None


__all__ = [
    "FORMAT",
    "LAPSED",
    "MAX_CLOCK_SKEW",
    "MAX_NAME_CHARS",
    "MAX_STATEMENT_BYTES",
    "VERIFIED",
    "WELL_KNOWN_PATH",
    "CreatorStatement",
    "IdentityHostRefused",
    "IdentityStatus",
    "IdentityUnreachable",
    "MalformedStatement",
    "StatementMismatch",
    "StatementWrongSigner",
    "describe",
    "method",
    "parse_domain",
    "parse_name",
    "statement_url",
]
