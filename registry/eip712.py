"""EIP-712 typed data for tracemark: the domain, the seven struct types and their digests.

CONSENSUS-CRITICAL: the struct types below are what creators' wallets and the registry's key
sign. Changing a field name, a type or the order of fields changes every digest and
invalidates every stored signature; a change is a new domain ``version``, never an edit.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from registry.errors import (
    InvalidInput,
)


def _select_keccak() -> Callable[[bytes], bytes]:
    # NOTE: eth_hash picks pycryptodome by default, ~4x slower than pysha3 (5.4 vs 1.3 us
    # per hash here). Import the pysha3 backend directly when it is installed rather than set
    # the process-wide ETH_HASH_BACKEND from a library module.
    try:
        from eth_hash.backends.pysha3 import keccak256
    except ImportError:  # pragma: no cover - safe-pysha3 is a declared dependency
        from eth_hash.auto import keccak

        return keccak
    return keccak256


keccak: Final = _select_keccak()
"""Keccak-256 (the Ethereum variant, not NIST SHA3-256)."""

MAX_STRING_LENGTH: Final = 256
"""Longest string field of a signed message (product slug, revocation reason), in characters.

Bounds what a client can make the registry hash and store per signature (THREATS 40).
"""

ZERO_ADDRESS: Final = "0x0000000000000000000000000000000000000000"
"""What a failed ``ecrecover`` returns on chain; never a valid signer (THREATS 16)."""

DOMAIN_NAME: Final = "tracemark"
DOMAIN_VERSION: Final = "1"

_MAX_UINT = {"uint8": 2**8 - 1, "uint32": 2**32 - 1, "uint64": 2**64 - 1, "uint256": 2**256 - 1}
HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")
"""What may follow 0x in hex text (either case)."""
_HEX_40 = re.compile(r"[0-9a-fA-F]{40}")


# -- Addresses (EIP-55) ---------------------------------------------------------------------


def checksum_address(address: bytes) -> str:
    """The EIP-55 mixed-case checksum form of a 20-byte address."""
    if not isinstance(address, bytes) or len(address) != 20:
        raise InvalidInput("an address must be exactly 20 bytes")
    return _checksum(address)


# NOTE: cached because every verify answer names its creator (a keccak per request otherwise),
# and a registry has few creators next to its goods. Bounded, so a flood of distinct
# addresses (claimed creators are caller input) only evicts.
@functools.lru_cache(maxsize=4096)
def _checksum(address: bytes) -> str:
    lower = address.hex()
    # EIP-55: upper-case the i-th hex letter when the i-th nibble of keccak(lower hex) >= 8.
    hashed = keccak(lower.encode("ascii")).hex()
    return "0x" + "".join(
        char.upper() if nibble in "89abcdef" else char
        for char, nibble in zip(lower, hashed, strict=False)
    )


def parse_address(text: str, *, what: str = "address") -> str:
    """Parse "0x" and 40 hex digits into its EIP-55 checksummed form.

    All-lower-case and all-upper-case input carry no checksum and are accepted; mixed case
    must be the exact EIP-55 checksum, since a wrong one means a mistyped address.
    """
    if not isinstance(text, str) or len(text) != 42 or text[:2] != "0x":
        raise InvalidInput(f"{what} must be 0x and 40 hex digits")
    digits = text[2:]
    if _HEX_40.fullmatch(digits) is None:
        raise InvalidInput(f"{what} must be 0x and 40 hex digits")
    checksummed = checksum_address(bytes.fromhex(digits))
    if digits not in (digits.lower(), digits.upper()) and text != checksummed:
        raise InvalidInput(f"{what} has a wrong EIP-55 checksum (mistyped?)")
    return checksummed


def address_bytes(address: str) -> bytes:
    """The 20 bytes of an address given as text (see ``parse_address``)."""
    return bytes.fromhex(parse_address(address)[2:])


# -- Struct types (EIP-712 §"Definition of typed structured data") ---------------------------

EIP712_DOMAIN_TYPE: Final[list[dict[str, str]]] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def _fields(spec: str) -> list[dict[str, str]]:
    """ "uint8 goodType, bytes32 fingerprint" -> EIP-712 member list, in order."""
    members = []
    for member in spec.split(","):
        solidity_type, name = member.split()
        members.append({"name": name, "type": solidity_type})
    return members


STRUCT_TYPES: Final[dict[str, list[dict[str, str]]]] = {
    # Copied from DESIGN.md "Signatures (EIP-712, eth-account)"; order is part of the format.
    "Registration": _fields(
        "uint8 goodType, bytes32 fingerprint, string product, uint8 use, "
        "bytes32 royaltyPolicy, bytes32 metadata, uint64 nonce, uint64 deadline"
    ),
    "BatchRegistration": _fields(
        "uint8 goodType, bytes32 itemsRoot, uint32 count, string product, uint8 use, "
        "bytes32 royaltyPolicy, bytes32 metadata, uint64 nonce, uint64 deadline"
    ),
    "Revocation": _fields(
        "uint8 goodType, bytes32 fingerprint, string reason, uint64 nonce, uint64 deadline"
    ),
    "BatchRevocation": _fields(
        "uint8 goodType, bytes32 itemsRoot, uint32 count, string reason, "
        "uint64 nonce, uint64 deadline"
    ),
    "CodeKeyEnrollment": _fields("bytes32 keyCommitment, uint64 nonce, uint64 deadline"),
    # Issue 11: a creator retires one of its code keys (creator key).
    "CodeKeyRetirement": _fields("bytes32 keyCommitment, uint64 nonce, uint64 deadline"),
    "TreeHead": _fields("uint64 size, bytes32 root, uint64 timestamp"),
    "TransferReceipt": _fields(
        "uint8 goodType, bytes32 fingerprint, uint64 logIndex, "
        "bytes32 transferHash, uint64 timestamp"
    ),
    # Issue 11: the registry key's hand-over, signed by the outgoing key (registry key), and
    # the statement a creator serves on its web domain (creator key).
    "KeyHandover": _fields("address newKey, uint64 treeSize"),
    "CreatorIdentity": _fields("string domain, string name, uint64 issuedAt"),
    # Issue 17: one state change of a guaranteed-trade order (registry key); changeHash is
    # registry.orders.change_hash of the change's JSON, which chains the order's changes.
    "OrderStateChange": _fields(
        "uint64 orderId, uint32 sequence, bytes32 changeHash, uint64 timestamp"
    ),
    # Issue 17 item 3: the buyer's delivery receipt (registry key); deliveryHash is the
    # DELIVERY entry's payload hash, receiptHash registry.deliveryreceipt.receipt_hash of the
    # receipt's document (the facts as of delivery).
    "DeliveryReceipt": _fields(
        "uint64 orderId, uint8 goodType, bytes32 fingerprint, uint64 logIndex, "
        "bytes32 deliveryHash, bytes32 receiptHash, uint64 timestamp"
    ),
    # Issue 18 item 3: a platform's compliance report (registry key); reportHash is
    # verifier.compliance.report_hash of the report's signals and period.
    "ComplianceReport": _fields(
        "string platform, uint64 periodFrom, uint64 periodTo, bytes32 reportHash, uint64 timestamp"
    ),
    # Issue 18 item 4: a platform's real-name attestation of one of its sellers (the
    # platform's enrolled attestation key); sellerRef is the seller's keyed reference hash,
    # level registry.attestations.Level.
    "PlatformAttestation": _fields(
        "string platform, bytes32 sellerRef, uint8 level, uint64 nonce, uint64 deadline"
    ),
    # Issue 18 item 4: a platform enrolls its own attestation key, signed by that key (its
    # proof of possession).
    "PlatformKeyEnrollment": _fields("string platform, address key, uint64 nonce, uint64 deadline"),
    # Issue 18 item 4: a platform's key in force consents to its successor (the old key signs;
    # a platform's own rotation needs it, registry.platformkeys.enroll_own_key).
    "PlatformKeyRotation": _fields(
        "string platform, address oldKey, address newKey, uint64 nonce, uint64 deadline"
    ),
}
"""The primary types a tracemark signature can cover, as EIP-712 member lists."""

SUPPORTED_FIELD_TYPES: Final = frozenset({*_MAX_UINT, "bytes32", "string", "address"})
"""The only Solidity types these structs use; anything else is refused up front (THREATS 18)."""


@dataclass(frozen=True, slots=True)
class _Struct:
    name: str
    members: tuple[tuple[str, str], ...]  # (name, solidity type)
    type_hash: bytes
    names: frozenset[str] = frozenset()


def _compile(name: str, members: list[dict[str, str]]) -> _Struct:
    pairs = tuple((member["name"], member["type"]) for member in members)
    for _, solidity_type in pairs:
        if solidity_type not in SUPPORTED_FIELD_TYPES:
            raise InvalidInput(f"unsupported EIP-712 field type {solidity_type}")
    # EIP-712 §"Definition of encodeType": Name(type1 name1,type2 name2); none of these
    # structs references another, so there is nothing to append.
    encoded_type = f"{name}({','.join(f'{t} {n}' for n, t in pairs)})"
    return _Struct(
        name, pairs, keccak(encoded_type.encode("ascii")), frozenset(n for n, _ in pairs)
    )


# Compiled once, from copies: a caller mutating STRUCT_TYPES cannot change what is signed.
_STRUCTS: Final = {name: _compile(name, members) for name, members in STRUCT_TYPES.items()}
_DOMAIN_STRUCT: Final = _compile("EIP712Domain", EIP712_DOMAIN_TYPE)


def _struct(primary_type: str) -> _Struct:
    struct = _STRUCTS.get(primary_type) if isinstance(primary_type, str) else None
    if struct is None:
        raise InvalidInput(f"unknown primary type; expected one of {', '.join(_STRUCTS)}")
    return struct


def _encode_value(struct: str, name: str, solidity_type: str, value: object) -> bytes:
    """One member's 32-byte slot, EIP-712 §"Definition of encodeData"."""
    # NOTE: the "Struct.member" of a message is spelled out only when it is refused: this
    # runs for every member of every signature a verifier checks.
    maximum = _MAX_UINT.get(solidity_type)
    if maximum is not None:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
            raise InvalidInput(
                f"{struct}.{name} must be an integer from 0 to {maximum} ({solidity_type})"
            )
        return value.to_bytes(32, "big")
    if solidity_type == "bytes32":
        if not isinstance(value, bytes) or len(value) != 32:
            raise InvalidInput(f"{struct}.{name} must be exactly 32 bytes (bytes32)")
        return value
    if solidity_type == "string":
        if not isinstance(value, str) or len(value) > MAX_STRING_LENGTH:
            raise InvalidInput(
                f"{struct}.{name} must be a string of at most {MAX_STRING_LENGTH} characters"
            )
        try:
            # Dynamic types are encoded as the keccak256 of their contents.
            return keccak(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidInput(f"{struct}.{name} is not valid Unicode (lone surrogate)") from None
    if solidity_type == "address":
        if not isinstance(value, str):
            raise InvalidInput(f"{struct}.{name} must be an address string")
        return bytes(12) + address_bytes(value)
    raise InvalidInput(f"{struct}.{name}: unsupported EIP-712 field type {solidity_type}")


def _hash_struct(struct: _Struct, message: Mapping[str, object]) -> bytes:
    if not isinstance(message, Mapping):
        raise InvalidInput(f"a {struct.name} message must be an object")
    names = struct.names
    # Exactly the struct's members (the usual case) needs no lists to say what differs.
    if message.keys() != names:
        extra = [key for key in message if key not in names]
        if extra:
            raise InvalidInput(f"{struct.name} has no field {sorted(map(str, extra))[0]!r}")
        missing = [name for name in names if name not in message]
        if missing:
            raise InvalidInput(f"{struct.name} is missing field {sorted(missing)[0]!r}")
    # hashStruct(s) = keccak256(typeHash || encodeData(s)), EIP-712 §"Definition of hashStruct".
    encoded = [struct.type_hash]
    encoded.extend(
        _encode_value(struct.name, name, solidity_type, message[name])
        for name, solidity_type in struct.members
    )
    return keccak(b"".join(encoded))


def hash_struct(primary_type: str, message: Mapping[str, object]) -> bytes:
    """EIP-712 ``hashStruct`` of a message of one of the ``STRUCT_TYPES``, validated."""
    return _hash_struct(_struct(primary_type), message)


# -- Domain -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain: which chain and anchor contract a signature is bound to.

    Stored with every signed record, so a later deployment never invalidates old signatures,
    and a signature made for another chain, contract or version never verifies here
    (THREATS 12, 13).
    """

    chain_id: int
    verifying_contract: str
    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION
    separator: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        chain_id = self.chain_id
        if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id < 1:
            raise InvalidInput("chainId must be a positive integer")
        contract = parse_address(self.verifying_contract, what="verifyingContract")
        if contract == ZERO_ADDRESS:
            raise InvalidInput("verifyingContract may not be the zero address")
        object.__setattr__(self, "verifying_contract", contract)
        for what, text in (("name", self.name), ("version", self.version)):
            if not isinstance(text, str) or not 0 < len(text) <= MAX_STRING_LENGTH:
                raise InvalidInput(f"domain {what} must be a non-empty string")
        # domainSeparator = hashStruct(eip712Domain), EIP-712 §"Definition of domainSeparator";
        # computed once, since every digest needs it.
        object.__setattr__(
            self, "separator", _separator(self.name, self.version, chain_id, contract)
        )

    def as_dict(self) -> dict[str, object]:
        """The domain as EIP-712 typed-data JSON: name, version, chainId, verifyingContract."""
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Domain:
        """Parse ``as_dict`` output strictly: exactly those four keys, of those types."""
        if not isinstance(data, Mapping):
            raise InvalidInput("an EIP-712 domain must be an object")
        keys = {"name", "version", "chainId", "verifyingContract"}
        if set(data) != keys:
            raise InvalidInput(f"an EIP-712 domain has exactly the keys {', '.join(sorted(keys))}")
        name, version = data["name"], data["version"]
        chain_id, contract = data["chainId"], data["verifyingContract"]
        if not isinstance(name, str) or not isinstance(version, str):
            raise InvalidInput("domain name and version must be strings")
        if not isinstance(chain_id, int) or not isinstance(contract, str):
            raise InvalidInput("domain chainId must be an integer, verifyingContract a string")
        return cls(chain_id=chain_id, verifying_contract=contract, name=name, version=version)


# NOTE: cached because a verifier builds the same few domains once per entry it checks (an
# export of 5,000 goods: 5,000 Domain objects, one separator). Keyed by the four validated
# values the separator is the hashStruct of; bounded, as domains come from the evidence.
@functools.lru_cache(maxsize=256)
def _separator(name: str, version: str, chain_id: int, verifying_contract: str) -> bytes:
    document = {
        "name": name,
        "version": version,
        "chainId": chain_id,
        "verifyingContract": verifying_contract,
    }
    return _hash_struct(_DOMAIN_STRUCT, document)


DEV_DOMAIN: Final = Domain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
"""anvil's chain id and the address of the first contract anvil's account #0 deploys."""


def digest(primary_type: str, message: Mapping[str, object], domain: Domain) -> bytes:
    """The 32-byte EIP-712 signing hash: keccak256(0x19 0x01 || domainSeparator || hashStruct).

    EIP-712 §"Specification of the eth_signTypedData JSON RPC"; equals eth-account's
    ``encode_typed_data`` hash (tested for every struct type).
    """
    if not isinstance(domain, Domain):
        raise InvalidInput("domain must be a Domain")
    return keccak(b"\x19\x01" + domain.separator + hash_struct(primary_type, message))


def typed_data(
    primary_type: str, message: Mapping[str, object], domain: Domain
) -> dict[str, object]:
    """The full EIP-712 typed-data JSON a wallet signs (``eth_signTypedData_v4``).

    bytes32 values become 0x-hex strings; integers stay integers.
    """
    struct = _struct(primary_type)
    _hash_struct(struct, message)  # validates before anything is shown to a wallet
    return {
        "types": {
            "EIP712Domain": [dict(member) for member in EIP712_DOMAIN_TYPE],
            primary_type: [{"name": n, "type": t} for n, t in struct.members],
        },
        "primaryType": primary_type,
        "domain": domain.as_dict(),
        "message": {name: _json_value(message[name]) for name, _ in struct.members},
    }


def _json_value(value: object) -> object:
    return "0x" + value.hex() if isinstance(value, bytes) else value


def parse_message(primary_type: str, data: Mapping[str, object]) -> dict[str, object]:
    """The inverse of ``typed_data``'s message: JSON values (0x-hex bytes32) to Python values.

    Validated like ``digest``; unknown and missing fields are refused.
    """
    struct = _struct(primary_type)
    if not isinstance(data, Mapping):
        raise InvalidInput(f"a {primary_type} message must be an object")
    message: dict[str, object] = dict(data)
    for name, solidity_type in struct.members:
        value = message.get(name)
        if solidity_type == "bytes32" and isinstance(value, str):
            digits = value[2:]
            if value[:2] != "0x" or len(digits) != 64 or not set(digits) <= HEX_DIGITS:
                raise InvalidInput(f"{primary_type}.{name} must be 0x and 64 hex digits")
            message[name] = bytes.fromhex(digits)
    _hash_struct(struct, message)
    return message


__all__ = [
    "DEV_DOMAIN",
    "EIP712_DOMAIN_TYPE",
    "MAX_STRING_LENGTH",
    "STRUCT_TYPES",
    "SUPPORTED_FIELD_TYPES",
    "ZERO_ADDRESS",
    "Domain",
    "address_bytes",
    "checksum_address",
    "digest",
    "hash_struct",
    "keccak",
    "parse_address",
    "parse_message",
    "typed_data",
]
