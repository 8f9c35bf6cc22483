"""Signed messages: a creator's EIP-712 message as a document, and its verification.

A creator's signed message travels as a *document*: ``{"type", "signer", "message",
"signature"}`` with bytes32 as 0x-hex and uint64 as decimal strings (RFC 8785 numbers are
IEEE doubles, exact only up to 2^53). The stored payload of an entry is the RFC 8785 JSON
of that document plus the domain and the public documents (royalty policy, metadata).
Pure: a platform's client builds and checks these without a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry.eip712 import STRUCT_TYPES, Domain, address_bytes, checksum_address
from registry.errors import InvalidInput, WrongSigner
from registry.signatures import check_deadline, verify_signature

#: Nonces are uint64 in the struct but stored in a signed 64-bit column: refusing the top
#: half keeps the replay guard exact instead of wrapping around.
MAX_NONCE = 2**63 - 1


def message_to_document(primary_type: str, message: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe form of a message: bytes32 as 0x-hex, uint64 as decimal strings."""
    fields = _fields(primary_type)
    document: dict[str, Any] = {}
    for name, sol_type in fields:
        value = message[name]
        if sol_type == "bytes32":
            document[name] = "0x" + bytes(value).hex()
        elif sol_type == "uint64":
            document[name] = str(int(value))
        else:
            document[name] = value
    return document


def message_from_document(primary_type: str, document: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of ``message_to_document``; rejects missing, extra or mistyped fields."""
    fields = _fields(primary_type)
    if not isinstance(document, Mapping):
        raise InvalidInput(f"{primary_type} message must be a JSON object")
    names = {name for name, _ in fields}
    extra = set(document) - names
    if extra:
        raise InvalidInput(f"{primary_type} has no field(s) {sorted(extra)}")
    message: dict[str, Any] = {}
    for name, sol_type in fields:
        if name not in document:
            raise InvalidInput(f"{primary_type} is missing the field {name!r}")
        value = document[name]
        try:
            if sol_type == "bytes32":
                if not (isinstance(value, str) and value.startswith("0x") and len(value) == 66):
                    raise ValueError
                message[name] = bytes.fromhex(value[2:])
            elif sol_type.startswith("uint"):
                if isinstance(value, bool) or not isinstance(value, int | str):
                    raise ValueError
                message[name] = int(value)
            elif sol_type == "string":
                if not isinstance(value, str):
                    raise ValueError
                message[name] = value
            else:  # pragma: no cover - STRUCT_TYPES holds only these types
                raise InvalidInput(f"unsupported type {sol_type}")
        except ValueError as exc:
            raise InvalidInput(f"{primary_type}.{name} is not a valid {sol_type}") from exc
    return message


def _fields(primary_type: str) -> list[tuple[str, str]]:
    if primary_type not in STRUCT_TYPES:
        raise InvalidInput(f"unknown signed message type {primary_type!r}")
    return [(field["name"], field["type"]) for field in STRUCT_TYPES[primary_type]]


@dataclass(frozen=True)
class SignedMessage:
    """A creator's EIP-712 message with its signature and the address that claims it."""

    primary_type: str
    message: Mapping[str, Any]
    signature: bytes
    signer: str

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, expect: str) -> SignedMessage:
        if not isinstance(document, Mapping):
            raise InvalidInput("a signed message must be a JSON object")
        if document.get("type") != expect:
            raise InvalidInput(f"expected a signed {expect}, got {document.get('type')!r}")
        extra = set(document) - {"type", "signer", "message", "signature"}
        if extra:
            raise InvalidInput(f"a signed message has no field(s) {sorted(extra)}")
        signature = document.get("signature")
        signer = document.get("signer")
        if not isinstance(signature, str) or not isinstance(signer, str):
            raise InvalidInput("a signed message needs 'signer' and 'signature' as 0x-hex")
        try:
            signature_bytes = bytes.fromhex(signature.removeprefix("0x"))
        except ValueError as exc:
            raise InvalidInput("'signature' is not hex") from exc
        return cls(
            primary_type=expect,
            message=message_from_document(expect, document.get("message", {})),
            signature=signature_bytes,
            signer=checksum_address(address_bytes(signer)),
        )

    def document(self) -> dict[str, Any]:
        return {
            "type": self.primary_type,
            "signer": self.signer,
            "message": message_to_document(self.primary_type, self.message),
            "signature": "0x" + self.signature.hex(),
        }

    @property
    def signer_bytes(self) -> bytes:
        return address_bytes(self.signer)

    def verify(self, domain: Domain, *, now: int) -> None:
        """Steps: (1) signer is not the zero address, (2) signature well-formed and from the
        signer under the server's domain, (3) deadline not passed."""
        # 1. The zero address is never a creator (THREATS 16).
        if self.signer_bytes == bytes(20):
            raise WrongSigner("the zero address cannot sign for anything")
        # 2. Low-s, v in {27, 28}, 65 bytes; recovered under *our* domain (THREATS 12-15).
        verify_signature(self.primary_type, self.message, domain, self.signature, self.signer)
        # 3. Deadlines are Unix seconds.
        check_deadline(int(self.message["deadline"]), now)
        if int(self.message["nonce"]) > MAX_NONCE:
            raise InvalidInput(f"nonce must be at most 2^63 - 1 ({MAX_NONCE})")


def record_payload(
    signed: SignedMessage, domain: Domain, attachments: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The payload document whose RFC 8785 SHA-256 is the entries' ``payload_hash``."""
    payload: dict[str, Any] = {"signed": signed.document(), "domain": domain.as_dict()}
    if attachments:
        payload.update(attachments)
    return payload
