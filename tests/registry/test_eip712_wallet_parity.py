"""THREATS 18, the wallet side: our EIP-712 digests and signatures equal a wallet's.

The wallet is anvil's ``eth_signTypedData_v4`` with its unlocked account #0. ECDSA over
secp256k1 is deterministic here (RFC 6979 on both sides), so for every struct type, boundary
message and domain the 65 bytes anvil returns must be exactly ours, and recovering them over
our digest must give account #0. The second half checks that a malformed message is refused
with ``InvalidInput`` before a struct hash, digest or signature is computed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak as reference_keccak
from web3.types import RPCEndpoint

import registry.eip712 as eip712
import registry.signatures as signatures
from anchoring.chain import Chain
from anchoring.devchain import ANVIL_CHAIN_ID, DevChain
from anchoring.runtime import ANVIL_ACCOUNT_0_KEY
from registry.eip712 import (
    DEV_DOMAIN,
    MAX_STRING_LENGTH,
    STRUCT_TYPES,
    SUPPORTED_FIELD_TYPES,
    Domain,
    digest,
    hash_struct,
    parse_message,
    typed_data,
)
from registry.errors import InvalidInput, SignatureError
from registry.signatures import Signature, recover_signer, sign, verify_signature

ACCOUNT_0_KEY = bytes.fromhex(ANVIL_ACCOUNT_0_KEY.removeprefix("0x"))
ACCOUNT_0 = Account.from_key(ACCOUNT_0_KEY).address  # derived by eth-account, not by us

# Another chain and another contract: a domain field dropped or swapped anywhere would make
# one of the two domains disagree with the wallet.
OTHER_DOMAIN = Domain(11155111, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")

UINT_MAX = {"uint8": 2**8 - 1, "uint32": 2**32 - 1, "uint64": 2**64 - 1}

# One value per field type, per boundary. uint8 255 is the largest the EIP-712 layer allows
# (the registry narrows goodType / use further, above this layer).
VARIANTS: dict[str, dict[str, object]] = {
    "maxima": {
        **UINT_MAX,
        "bytes32": b"\xff" * 32,
        "string": "revoked: leaked 💥",
        "address": "0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF",
    },
    "zeros": {
        "uint8": 0,
        "uint32": 0,
        "uint64": 0,
        "bytes32": bytes(32),
        "string": "",
        "address": "0x0000000000000000000000000000000000000001",
    },
    "typical": {
        "uint8": 1,
        "uint32": 1000,
        "uint64": 2**53 + 1,  # the first integer an IEEE double cannot hold
        "bytes32": bytes(range(32)),
        "string": "30-day-card",
        "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    },
    "longest-string": {
        "uint8": 2**7,
        "uint32": 2**31,
        "uint64": 2**63 - 1,  # the largest fresh_nonce()
        "bytes32": bytes(range(255, 223, -1)),
        "string": "💥" * MAX_STRING_LENGTH,  # 256 characters, 1024 UTF-8 bytes
        "address": "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
    },
}


def message_for(primary_type: str, variant: str) -> dict[str, object]:
    values = VARIANTS[variant]
    return {member["name"]: values[member["type"]] for member in STRUCT_TYPES[primary_type]}


def reference_digest(full_message: Mapping[str, Any]) -> bytes:
    """The EIP-712 hash as eth-account computes it (with eth_utils' keccak, not ours)."""
    signable = encode_typed_data(full_message=dict(full_message))
    return reference_keccak(b"\x19" + signable.version + signable.header + signable.body)


# -- the wallet -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wallet() -> Iterator[Chain]:
    """One anvil for the module; no contract is needed to sign typed data."""
    with DevChain() as devchain:
        chain = Chain.connect(devchain.rpc_url, DEV_DOMAIN.verifying_contract)
        assert chain.chain_id() == ANVIL_CHAIN_ID
        accounts = chain.rpc("eth_accounts")
        assert to_checksum_address(accounts[0]) == ACCOUNT_0
        yield chain


def wallet_request(chain: Chain, typed: object) -> dict[str, Any]:
    """``eth_signTypedData_v4`` by account #0; the raw JSON-RPC response (result or error)."""
    response = chain.w3.provider.make_request(
        RPCEndpoint("eth_signTypedData_v4"), [ACCOUNT_0, typed]
    )
    return dict(response)


def wallet_sign(chain: Chain, typed: object) -> bytes:
    response = wallet_request(chain, typed)
    assert "error" not in response, response["error"]
    result = response["result"]
    assert isinstance(result, str) and result.startswith("0x")
    return bytes.fromhex(result[2:])


def with_uints(full: Mapping[str, Any], encode: Callable[[int], object]) -> dict[str, Any]:
    """A copy of typed data whose uint values (message and chainId) are re-encoded."""
    copy = json.loads(json.dumps(full))
    copy["domain"]["chainId"] = encode(copy["domain"]["chainId"])
    primary_type = copy["primaryType"]
    for member in copy["types"][primary_type]:
        if member["type"].startswith("uint"):
            copy["message"][member["name"]] = encode(copy["message"][member["name"]])
    return dict(copy)


# -- parity: every struct, every boundary, two domains ----------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("domain", [DEV_DOMAIN, OTHER_DOMAIN], ids=["dev", "other"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("primary_type", sorted(STRUCT_TYPES))
def test_wallet_signature_equals_ours(
    wallet: Chain, primary_type: str, variant: str, domain: Domain
) -> None:
    message = message_for(primary_type, variant)
    full = typed_data(primary_type, message, domain)
    assert json.loads(json.dumps(full)) == full  # plain JSON, exactly what a wallet is given
    ours = sign(primary_type, message, domain, ACCOUNT_0_KEY)
    signing_hash = digest(primary_type, message, domain)

    # eth-account agrees with our digest and our signature.
    assert signing_hash == reference_digest(full)
    assert bytes(Account.sign_typed_data(ACCOUNT_0_KEY, full_message=full).signature) == ours

    # The wallet, given the typed data as an object and as JSON text (how dapps pass it to
    # injected wallets), signs the very same bytes.
    assert wallet_sign(wallet, full) == ours
    assert wallet_sign(wallet, json.dumps(full, ensure_ascii=False)) == ours

    # Recovering the wallet's signature over our digest gives account #0.
    parsed = Signature.parse(ours)
    assert recover_signer(signing_hash, parsed) == ACCOUNT_0
    assert verify_signature(primary_type, message, domain, ours, ACCOUNT_0) == parsed


@pytest.mark.slow
def test_the_two_domains_give_different_signatures(wallet: Chain) -> None:
    """Guards the parity test itself: the second domain really changes what is signed."""
    for primary_type in STRUCT_TYPES:
        message = message_for(primary_type, "typical")
        signatures = {
            wallet_sign(wallet, typed_data(primary_type, message, domain))
            for domain in (DEV_DOMAIN, OTHER_DOMAIN, Domain(31337, OTHER_DOMAIN.verifying_contract))
        }
        assert len(signatures) == 3


@pytest.mark.slow
@pytest.mark.parametrize(
    "encode",
    [str, hex],
    ids=["decimal-strings", "hex-strings"],
)
@pytest.mark.parametrize("primary_type", sorted(STRUCT_TYPES))
def test_uints_as_strings_sign_the_same(
    wallet: Chain, primary_type: str, encode: Callable[[int], object]
) -> None:
    """uint64 above 2^53 cannot survive a JavaScript ``JSON.parse`` as a number, so browser
    wallets need them as strings. anvil and eth-account read decimal and 0x-hex strings as the
    same integers: switching ``typed_data`` to strings would keep every signature.
    """
    message = message_for(primary_type, "maxima")
    ours = sign(primary_type, message, DEV_DOMAIN, ACCOUNT_0_KEY)
    as_strings = with_uints(typed_data(primary_type, message, DEV_DOMAIN), encode)
    assert reference_digest(as_strings) == digest(primary_type, message, DEV_DOMAIN)
    assert wallet_sign(wallet, as_strings) == ours


@pytest.mark.slow
@pytest.mark.parametrize(
    "value",
    [2**64, str(2**64), -1, "-1", float(2**64 - 1)],
    ids=repr,  # the float is 2^64
)
def test_wallet_refuses_uint64_out_of_range(wallet: Chain, value: object) -> None:
    """The wallet refuses an out-of-range uint64 too, rather than wrapping or rounding it."""
    full = typed_data("TreeHead", message_for("TreeHead", "maxima"), DEV_DOMAIN)
    wire = full["message"]
    assert isinstance(wire, dict)
    full["message"] = {**wire, "size": value}
    response = wallet_request(wallet, full)
    assert "result" not in response or response["result"] is None
    assert "error" in response


# -- unsupported types and malformed messages, rejected up front ------------------------------


def test_only_supported_types_are_used() -> None:
    used = {member["type"] for members in STRUCT_TYPES.values() for member in members}
    assert used <= SUPPORTED_FIELD_TYPES
    expected = {"uint8", "uint32", "uint64", "uint256", "bytes32", "string", "address"}
    assert expected == SUPPORTED_FIELD_TYPES


@pytest.mark.parametrize(
    "solidity_type",
    ["bytes", "bool", "int64", "uint", "uint128", "bytes31", "uint64[]", "string[2]", "Mail"],
)
def test_unsupported_field_types_are_refused_when_compiled(solidity_type: str) -> None:
    # _compile is what turns STRUCT_TYPES into hashers at import time: a struct using any
    # other type would stop the module from loading instead of hashing it some other way.
    with pytest.raises(
        InvalidInput, match=re.escape(f"unsupported EIP-712 field type {solidity_type}")
    ):
        eip712._compile("Struct", [{"name": "field", "type": solidity_type}])


def bad_values(solidity_type: str) -> list[tuple[str, object]]:
    """Values of the wrong type or out of range for a field, each with a label."""
    if solidity_type in UINT_MAX:
        maximum = UINT_MAX[solidity_type]
        return [
            ("decimal-string", "1"),
            ("decimal-string-max", str(maximum)),
            ("hex-string", "0x01"),
            ("negative", -1),
            ("overflow", maximum + 1),
            ("uint256-max", 2**256 - 1),
            ("bool", True),
            ("float", 1.0),
            ("bytes", b"\x01"),
            ("none", None),
        ]
    if solidity_type == "bytes32":
        return [
            ("31-bytes", bytes(31)),
            ("33-bytes", bytes(33)),
            ("empty", b""),
            ("hex-string", "0x" + "ff" * 32),
            ("int", 0),
            ("none", None),
        ]
    if solidity_type == "address":
        return [
            ("20-bytes", bytes(20)),
            ("short", "0x" + "ab" * 19),
            ("bad-checksum", "0x5fbdb2315678afecb367f032d93F642f64180aa3"),
            ("int", 7),
            ("none", None),
        ]
    assert solidity_type == "string"
    return [
        ("bytes", b"30-day-card"),
        ("int", 7),
        ("none", None),
        ("too-long", "x" * (MAX_STRING_LENGTH + 1)),
        ("lone-surrogate", "revoked \ud83d"),
    ]


class KeccakSpy:
    """Stands in for ``registry.eip712.keccak`` and records every input."""

    def __init__(self) -> None:
        self.inputs: list[bytes] = []

    def __call__(self, data: bytes) -> bytes:
        self.inputs.append(bytes(data))
        return reference_keccak(data)


def type_hash(primary_type: str) -> bytes:
    members = ",".join(f"{m['type']} {m['name']}" for m in STRUCT_TYPES[primary_type])
    return reference_keccak(f"{primary_type}({members})".encode())


def assert_refused_up_front(
    monkeypatch: pytest.MonkeyPatch,
    primary_type: str,
    message: Mapping[str, object],
    allowed_hashing: set[bytes],
) -> None:
    """Every entry point refuses ``message`` with InvalidInput (not a signature error),
    without computing a struct hash, a digest or a signature. The only keccak inputs allowed
    are ``allowed_hashing``: contents of valid (length-capped) string fields that precede the
    bad field, which encodeData hashes as it walks the struct.
    """
    valid_signature = sign(
        primary_type, message_for(primary_type, "typical"), DEV_DOMAIN, ACCOUNT_0_KEY
    )
    spy = KeccakSpy()
    monkeypatch.setattr(eip712, "keccak", spy)
    monkeypatch.setattr(signatures.coincurve, "PrivateKey", _never_called)
    calls: list[Callable[[], object]] = [
        lambda: hash_struct(primary_type, message),
        lambda: digest(primary_type, message, DEV_DOMAIN),
        lambda: typed_data(primary_type, message, DEV_DOMAIN),
        lambda: sign(primary_type, message, DEV_DOMAIN, ACCOUNT_0_KEY),
    ]
    for call in calls:
        with pytest.raises(InvalidInput) as refused:
            call()
        assert not isinstance(refused.value, SignatureError), refused.value
        assert refused.value.detail
    # verify_signature checksums the claimed signer first (keccak of its hex): allow that.
    allowed = allowed_hashing | {ACCOUNT_0[2:].lower().encode()}
    with pytest.raises(InvalidInput) as refused:
        verify_signature(primary_type, message, DEV_DOMAIN, valid_signature, ACCOUNT_0)
    assert not isinstance(refused.value, SignatureError), refused.value
    monkeypatch.undo()

    struct_hash_prefix = type_hash(primary_type)
    for data in spy.inputs:
        assert not data.startswith(b"\x19\x01"), "a digest was computed"
        assert not data.startswith(struct_hash_prefix), "a struct hash was computed"
        assert data in allowed, data[:40]


def _never_called(*args: object, **kwargs: object) -> object:
    raise AssertionError("a signing key was loaded for a message that should be refused")


@pytest.mark.parametrize("primary_type", sorted(STRUCT_TYPES))
def test_wrong_types_and_out_of_range_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, primary_type: str
) -> None:
    valid = message_for(primary_type, "typical")
    members = STRUCT_TYPES[primary_type]
    for position, member in enumerate(members):
        earlier_strings = {
            str(valid[m["name"]]).encode() for m in members[:position] if m["type"] == "string"
        }
        for label, value in bad_values(member["type"]):
            message = {**valid, member["name"]: value}
            try:
                assert_refused_up_front(monkeypatch, primary_type, message, earlier_strings)
            except AssertionError as failure:
                raise AssertionError(f"{member['name']} = {label}: {failure}") from failure


@pytest.mark.parametrize("primary_type", sorted(STRUCT_TYPES))
def test_unknown_and_missing_fields_are_refused(
    monkeypatch: pytest.MonkeyPatch, primary_type: str
) -> None:
    valid = message_for(primary_type, "typical")
    first = STRUCT_TYPES[primary_type][0]["name"]
    unknown = [
        {**valid, "extra": 1},
        {**valid, ("reason" if "reason" not in valid else "product"): "x"},  # another struct's
        {**valid, first.upper(): valid[first]},  # a field name in another case
        {**valid, "": 0},
    ]
    for message in unknown:
        assert_refused_up_front(monkeypatch, primary_type, message, set())
    for member in STRUCT_TYPES[primary_type]:
        message = {k: v for k, v in valid.items() if k != member["name"]}
        assert_refused_up_front(monkeypatch, primary_type, message, set())
    # A field renamed: one unknown and one missing at once.
    renamed = {("n" + k if k == first else k): v for k, v in valid.items()}
    assert_refused_up_front(monkeypatch, primary_type, renamed, set())


@pytest.mark.parametrize("primary_type", sorted(STRUCT_TYPES))
def test_wire_messages_are_refused_like_python_ones(primary_type: str) -> None:
    """``parse_message`` (JSON from a client) refuses what eth-account and wallets would
    silently coerce: uints as strings, short or over-long bytes32 hex."""
    wire = typed_data(primary_type, message_for(primary_type, "maxima"), DEV_DOMAIN)["message"]
    assert isinstance(wire, dict)
    for member in STRUCT_TYPES[primary_type]:
        name, solidity_type = member["name"], member["type"]
        if solidity_type in UINT_MAX:
            bad = [str(UINT_MAX[solidity_type]), hex(UINT_MAX[solidity_type]), -1]
            bad += [UINT_MAX[solidity_type] + 1]
        elif solidity_type == "bytes32":
            bad = ["0x" + "ff" * 31, "0x" + "ff" * 33, "ff" * 32, "0x" + "gg" * 32, ""]
        else:
            bad = [7, None, "x" * (MAX_STRING_LENGTH + 1)]
        for value in bad:
            with pytest.raises(InvalidInput):
                parse_message(primary_type, {**wire, name: value})
