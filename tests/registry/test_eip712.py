"""EIP-712: digest parity with eth-account, signing, and the signature threats 12-16, 18."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak as reference_keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.eip712 import (
    DEV_DOMAIN,
    MAX_STRING_LENGTH,
    STRUCT_TYPES,
    ZERO_ADDRESS,
    Domain,
    checksum_address,
    digest,
    parse_address,
    parse_message,
    typed_data,
)
from registry.errors import (
    ExpiredDeadline,
    InvalidInput,
    MalformedSignature,
    SignatureError,
    WrongSigner,
)
from registry.signatures import (
    SECP256K1_N,
    Signature,
    check_deadline,
    recover_signer,
    sign,
    verify_signature,
)

# anvil's well-known dev account #0 (public test key, never used for anything real).
DEV_KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
DEV_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
OTHER_CONTRACT = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"

DESIGN_TYPES = {
    # Transcribed from DESIGN.md, independently of registry/eip712.py.
    "Registration": "Registration(uint8 goodType,bytes32 fingerprint,string product,uint8 use,"
    "bytes32 royaltyPolicy,bytes32 metadata,uint64 nonce,uint64 deadline)",
    "BatchRegistration": "BatchRegistration(uint8 goodType,bytes32 itemsRoot,uint32 count,"
    "string product,uint8 use,bytes32 royaltyPolicy,bytes32 metadata,uint64 nonce,"
    "uint64 deadline)",
    "Revocation": "Revocation(uint8 goodType,bytes32 fingerprint,string reason,uint64 nonce,"
    "uint64 deadline)",
    "BatchRevocation": "BatchRevocation(uint8 goodType,bytes32 itemsRoot,uint32 count,"
    "string reason,uint64 nonce,uint64 deadline)",
    "CodeKeyEnrollment": "CodeKeyEnrollment(bytes32 keyCommitment,uint64 nonce,uint64 deadline)",
    "CodeKeyRetirement": "CodeKeyRetirement(bytes32 keyCommitment,uint64 nonce,uint64 deadline)",
    "TreeHead": "TreeHead(uint64 size,bytes32 root,uint64 timestamp)",
    "TransferReceipt": "TransferReceipt(uint8 goodType,bytes32 fingerprint,uint64 logIndex,"
    "bytes32 transferHash,uint64 timestamp)",
    # Issue 11: documented in docs/ARCHITECTURE.md ("Trust roots", "Creator identity").
    "KeyHandover": "KeyHandover(address newKey,uint64 treeSize)",
    "CreatorIdentity": "CreatorIdentity(string domain,string name,uint64 issuedAt)",
    # Issue 17: documented in docs/ARCHITECTURE.md ("Orders and guaranteed trade").
    "OrderStateChange": "OrderStateChange(uint64 orderId,uint32 sequence,bytes32 changeHash,"
    "uint64 timestamp)",
    "DeliveryReceipt": "DeliveryReceipt(uint64 orderId,uint8 goodType,bytes32 fingerprint,"
    "uint64 logIndex,bytes32 deliveryHash,bytes32 receiptHash,uint64 timestamp)",
    # Issue 18: documented in docs/ARCHITECTURE.md ("The compliance report").
    "ComplianceReport": "ComplianceReport(string platform,uint64 periodFrom,uint64 periodTo,"
    "bytes32 reportHash,uint64 timestamp)",
    # Issue 18 item 4: documented in docs/ARCHITECTURE.md ("Real-name attestations").
    "PlatformAttestation": "PlatformAttestation(string platform,bytes32 sellerRef,uint8 level,"
    "uint64 nonce,uint64 deadline)",
    "PlatformKeyEnrollment": "PlatformKeyEnrollment(string platform,address key,uint64 nonce,"
    "uint64 deadline)",
    "PlatformKeyRotation": "PlatformKeyRotation(string platform,address oldKey,address newKey,"
    "uint64 nonce,uint64 deadline)",
}


def reference_digest(full_message: dict[str, Any]) -> bytes:
    """The EIP-712 hash as eth-account computes it (with eth_utils' keccak, not ours)."""
    signable = encode_typed_data(full_message=full_message)
    return reference_keccak(b"\x19" + signable.version + signable.header + signable.body)


_FIELD_VALUES = {
    "uint8": st.integers(0, 2**8 - 1),
    "uint32": st.integers(0, 2**32 - 1),
    "uint64": st.integers(0, 2**64 - 1),
    "bytes32": st.binary(min_size=32, max_size=32),
    "string": st.text(max_size=MAX_STRING_LENGTH),
    "address": st.binary(min_size=20, max_size=20).map(checksum_address),
}


def messages(primary_type: str) -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries(
        {member["name"]: _FIELD_VALUES[member["type"]] for member in STRUCT_TYPES[primary_type]}
    )


domains = st.builds(
    Domain,
    chain_id=st.integers(1, 2**256 - 1),
    verifying_contract=st.binary(min_size=20, max_size=20).filter(any).map(checksum_address),
    name=st.sampled_from(["tracemark", "other"]),
    version=st.sampled_from(["1", "2"]),
)


def sample_message(primary_type: str) -> dict[str, object]:
    values = {
        "uint8": 2,
        "uint32": 1000,
        "uint64": 1_767_225_600,
        "string": "30-day-card",
        "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    }
    return {
        member["name"]: values.get(member["type"], bytes(range(32)))
        for member in STRUCT_TYPES[primary_type]
    }


REGISTRATION = sample_message("Registration")


# -- types and digests (THREATS 18) -----------------------------------------------------------


def test_struct_types_are_the_designed_ones() -> None:
    assert set(STRUCT_TYPES) == set(DESIGN_TYPES)
    for name, members in STRUCT_TYPES.items():
        encoded = f"{name}({','.join(m['type'] + ' ' + m['name'] for m in members)})"
        assert encoded == DESIGN_TYPES[name]


@pytest.mark.parametrize("primary_type", sorted(STRUCT_TYPES))
@settings(max_examples=40, deadline=None)
@given(data=st.data(), domain=domains)
def test_digest_equals_eth_account(primary_type: str, data: st.DataObject, domain: Domain) -> None:
    message = data.draw(messages(primary_type))
    full = typed_data(primary_type, message, domain)
    assert digest(primary_type, message, domain) == reference_digest(full)
    # The typed data is plain JSON, as a wallet takes it.
    assert json.loads(json.dumps(full)) == full
    wire = full["message"]
    assert isinstance(wire, dict)
    assert parse_message(primary_type, wire) == message


def test_known_answer_digest() -> None:
    # Computed once with eth-account's encode_typed_data; pins the dev domain and TreeHead.
    message = {"size": 5, "root": b"\x01" * 32, "timestamp": 7}
    assert (
        digest("TreeHead", message, DEV_DOMAIN).hex()
        == "ebfe1d328632914c48e1b78a58dd3f2b3cdf25c469d7cc099fd6008d5aa8ccbc"
    )


def test_sign_equals_eth_account_and_round_trips() -> None:
    for primary_type in STRUCT_TYPES:
        message = sample_message(primary_type)
        full = typed_data(primary_type, message, DEV_DOMAIN)
        ours = sign(primary_type, message, DEV_DOMAIN, DEV_KEY)
        theirs = Account.sign_typed_data(DEV_KEY, full_message=full).signature
        assert ours == bytes(theirs)
        parsed = verify_signature(primary_type, message, DEV_DOMAIN, ours, DEV_ADDRESS)
        assert parsed.to_bytes() == ours
        assert recover_signer(digest(primary_type, message, DEV_DOMAIN), parsed) == DEV_ADDRESS
        assert Account.recover_message(encode_typed_data(full_message=full), signature=ours) == (
            DEV_ADDRESS
        )


@settings(max_examples=25, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), message=messages("Registration"))
def test_sign_recover_round_trip(key: bytes, message: dict[str, object]) -> None:
    if not 0 < int.from_bytes(key, "big") < SECP256K1_N:
        return
    address = Account.from_key(key).address
    signature = sign("Registration", message, DEV_DOMAIN, key)
    assert len(signature) == 65 and signature[64] in (27, 28)
    assert int.from_bytes(signature[32:64], "big") <= SECP256K1_N // 2
    parsed = verify_signature("Registration", message, DEV_DOMAIN, signature, address)
    assert parsed == Signature.parse(signature)
    # The signer's address may be claimed in any case.
    verify_signature("Registration", message, DEV_DOMAIN, signature, address.lower())
    verify_signature("Registration", message, DEV_DOMAIN, "0x" + signature.hex(), address)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"goodType": 256}, r"Registration\.goodType must be an integer from 0 to 255"),
        ({"goodType": -1}, r"goodType must be an integer"),
        ({"goodType": True}, r"goodType must be an integer"),
        ({"goodType": 2.0}, r"goodType must be an integer"),
        ({"nonce": 2**64}, r"nonce must be an integer from 0 to 18446744073709551615"),
        ({"deadline": "1"}, r"deadline must be an integer"),
        ({"fingerprint": bytes(31)}, r"fingerprint must be exactly 32 bytes"),
        ({"fingerprint": "0x" + "00" * 32}, r"fingerprint must be exactly 32 bytes"),
        ({"product": "x" * (MAX_STRING_LENGTH + 1)}, r"product must be a string of at most"),
        ({"product": b"card"}, r"product must be a string"),
        ({"product": "\ud800"}, r"product is not valid Unicode"),
        ({"extra": 1}, r"Registration has no field 'extra'"),
    ],
)
def test_messages_are_validated(change: dict[str, object], reason: str) -> None:
    message = {**REGISTRATION, **change}
    with pytest.raises(InvalidInput, match=reason):
        digest("Registration", message, DEV_DOMAIN)
    with pytest.raises(InvalidInput, match=reason):
        typed_data("Registration", message, DEV_DOMAIN)


def test_missing_field_and_unknown_type_are_refused() -> None:
    message = dict(REGISTRATION)
    del message["nonce"]
    with pytest.raises(InvalidInput, match="missing field 'nonce'"):
        digest("Registration", message, DEV_DOMAIN)
    for primary_type in ("Mail", "EIP712Domain", "registration", ""):
        with pytest.raises(InvalidInput, match="unknown primary type"):
            digest(primary_type, REGISTRATION, DEV_DOMAIN)
    with pytest.raises(InvalidInput):
        digest("Registration", [("nonce", 1)], DEV_DOMAIN)  # type: ignore[arg-type]
    wire = typed_data("Registration", REGISTRATION, DEV_DOMAIN)["message"]
    assert isinstance(wire, dict)
    with pytest.raises(InvalidInput, match="fingerprint must be 0x and 64 hex digits"):
        parse_message("Registration", {**wire, "fingerprint": "0x1234"})


def test_mutating_struct_types_does_not_change_digests() -> None:
    before = digest("TreeHead", sample_message("TreeHead"), DEV_DOMAIN)
    STRUCT_TYPES["TreeHead"].reverse()
    try:
        assert digest("TreeHead", sample_message("TreeHead"), DEV_DOMAIN) == before
    finally:
        STRUCT_TYPES["TreeHead"].reverse()


# -- domain -----------------------------------------------------------------------------------


def test_domain_dict_round_trip() -> None:
    assert DEV_DOMAIN.as_dict() == {
        "name": "tracemark",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    }
    assert Domain.from_dict(DEV_DOMAIN.as_dict()) == DEV_DOMAIN
    lower = Domain(31337, DEV_DOMAIN.verifying_contract.lower())
    assert lower == DEV_DOMAIN and lower.verifying_contract == DEV_DOMAIN.verifying_contract
    assert hash(lower) == hash(DEV_DOMAIN)


@pytest.mark.parametrize(
    "data",
    [
        {"name": "tracemark", "version": "1", "chainId": 31337},
        {**DEV_DOMAIN.as_dict(), "salt": "0x00"},
        {**DEV_DOMAIN.as_dict(), "chainId": "31337"},
        {**DEV_DOMAIN.as_dict(), "chainId": 0},
        {**DEV_DOMAIN.as_dict(), "chainId": True},
        {**DEV_DOMAIN.as_dict(), "chainId": 2**256},
        {**DEV_DOMAIN.as_dict(), "version": 1},
        {**DEV_DOMAIN.as_dict(), "name": ""},
        {**DEV_DOMAIN.as_dict(), "verifyingContract": ZERO_ADDRESS},
        {**DEV_DOMAIN.as_dict(), "verifyingContract": "0x5fbdb2315678afecb367f032d93F642f64180aa3"},
        {**DEV_DOMAIN.as_dict(), "verifyingContract": "0x5FbDB2315678afecb367f032d93F642f64180a"},
        [("name", "tracemark")],
    ],
)
def test_domain_from_dict_is_strict(data: object) -> None:
    with pytest.raises(InvalidInput):
        Domain.from_dict(data)  # type: ignore[arg-type]


@settings(max_examples=50)
@given(st.binary(min_size=20, max_size=20))
def test_checksum_address_equals_eth_utils(raw: bytes) -> None:
    expected = to_checksum_address(raw)
    assert checksum_address(raw) == expected
    assert parse_address(expected.lower()) == expected
    assert parse_address("0x" + expected[2:].upper()) == expected


# -- THREATS 12, 13: replay under another domain ----------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        Domain(1, DEV_DOMAIN.verifying_contract),  # 12: another chain
        Domain(31337, OTHER_CONTRACT),  # 13: another contract
        Domain(31337, DEV_DOMAIN.verifying_contract, version="2"),  # 13: another version
        Domain(31337, DEV_DOMAIN.verifying_contract, name="not-tracemark"),
    ],
)
def test_signature_from_another_domain_is_refused(other: Domain) -> None:
    signature = sign("Registration", REGISTRATION, other, DEV_KEY)
    verify_signature("Registration", REGISTRATION, other, signature, DEV_ADDRESS)
    # Recovery raises nothing: it finds some other address. That is why the claimed signer is
    # always compared.
    recovered = recover_signer(
        digest("Registration", REGISTRATION, DEV_DOMAIN), Signature.parse(signature)
    )
    assert recovered != DEV_ADDRESS
    with pytest.raises(WrongSigner, match="not made by the claimed signer"):
        verify_signature("Registration", REGISTRATION, DEV_DOMAIN, signature, DEV_ADDRESS)


def test_other_signer_and_other_message_are_refused() -> None:
    signature = sign("Registration", REGISTRATION, DEV_DOMAIN, DEV_KEY)
    other = Account.create().address
    with pytest.raises(WrongSigner):
        verify_signature("Registration", REGISTRATION, DEV_DOMAIN, signature, other)
    with pytest.raises(WrongSigner):
        verify_signature(
            "Registration", {**REGISTRATION, "nonce": 1}, DEV_DOMAIN, signature, DEV_ADDRESS
        )
    # The same fields under another primary type are another message.
    revocation = sample_message("Revocation")
    with pytest.raises(WrongSigner):
        verify_signature("Revocation", revocation, DEV_DOMAIN, signature, DEV_ADDRESS)


# -- THREATS 14: malleability ------------------------------------------------------------------


def test_high_s_twin_is_refused() -> None:
    signature = sign("Registration", REGISTRATION, DEV_DOMAIN, DEV_KEY)
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - v,))
    full = typed_data("Registration", REGISTRATION, DEV_DOMAIN)
    # eth-account itself accepts the twin and recovers the same signer ...
    assert Account.recover_message(encode_typed_data(full_message=full), signature=twin) == (
        DEV_ADDRESS
    )
    # ... we refuse it before recovery.
    with pytest.raises(MalformedSignature, match="high-s"):
        Signature.parse(twin)
    with pytest.raises(MalformedSignature, match="high-s"):
        verify_signature("Registration", REGISTRATION, DEV_DOMAIN, twin, DEV_ADDRESS)


@pytest.mark.parametrize("v", [0, 1])
def test_v_zero_or_one_is_refused(v: int) -> None:
    signature = sign("Registration", REGISTRATION, DEV_DOMAIN, DEV_KEY)
    reencoded = signature[:64] + bytes((signature[64] - 27,))
    if reencoded[64] != v:
        reencoded = signature[:64] + bytes((v,))  # the other parity: a different key
    else:
        full = typed_data("Registration", REGISTRATION, DEV_DOMAIN)
        assert Account.recover_message(
            encode_typed_data(full_message=full), signature=reencoded
        ) == (DEV_ADDRESS)
    with pytest.raises(MalformedSignature, match="re-encode v = 0 / 1 as 27 / 28"):
        verify_signature("Registration", REGISTRATION, DEV_DOMAIN, reencoded, DEV_ADDRESS)


@pytest.mark.parametrize(
    ("r", "s", "v", "reason"),
    [
        (1, 1, 29, "v must be 27 or 28"),
        (1, 1, 255, "v must be 27 or 28"),
        (0, 1, 27, "r is zero"),
        (SECP256K1_N, 1, 27, "r is zero or not below"),
        (2**256 - 1, 1, 27, "r is zero or not below"),
        (1, 0, 27, "s is zero"),
        (1, SECP256K1_N, 28, "s is zero or not below"),
        (1, SECP256K1_N // 2 + 1, 28, "high-s"),
    ],
)
def test_out_of_range_components_are_refused(r: int, s: int, v: int, reason: str) -> None:
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v,))
    with pytest.raises(MalformedSignature, match=reason):
        Signature.parse(raw)
    with pytest.raises(MalformedSignature, match=reason):
        Signature(r, s, v)


def test_largest_low_s_is_accepted() -> None:
    assert Signature(1, SECP256K1_N // 2, 27).s == SECP256K1_N // 2


# -- THREATS 15: wrong lengths ----------------------------------------------------------------


def test_compact_eip2098_signature_is_refused_clearly() -> None:
    signature = sign("Registration", REGISTRATION, DEV_DOMAIN, DEV_KEY)
    for compact in (signature[:64], "0x" + signature[:64].hex()):
        with pytest.raises(MalformedSignature, match="EIP-2098"):
            verify_signature("Registration", REGISTRATION, DEV_DOMAIN, compact, DEV_ADDRESS)


@pytest.mark.parametrize("length", [0, 1, 32, 63, 66, 96, 130])
def test_wrong_lengths_are_refused(length: int) -> None:
    raw = os.urandom(length)
    with pytest.raises(MalformedSignature, match=f"65 bytes r\\|\\|s\\|\\|v, got {length} bytes"):
        verify_signature("Registration", REGISTRATION, DEV_DOMAIN, raw, DEV_ADDRESS)
    with pytest.raises(MalformedSignature, match=f"got {length} bytes"):
        Signature.parse("0x" + raw.hex())


@pytest.mark.parametrize(
    "text", ["", "0x", "0x0", "41" * 65, "0x" + "zz" * 65, "0x" + " " * 130, "0X" + "41" * 65]
)
def test_malformed_hex_is_refused(text: str) -> None:
    with pytest.raises(MalformedSignature):
        Signature.parse(text)


def test_non_bytes_signature_is_refused() -> None:
    for value in (None, 65, [0] * 65):
        with pytest.raises(MalformedSignature):
            Signature.parse(value)  # type: ignore[arg-type]
    with pytest.raises(MalformedSignature):
        Signature(1, 1, True)


# -- THREATS 16: garbage and the zero address -------------------------------------------------


@pytest.mark.parametrize(
    ("r", "s", "v"),
    [(1, 1, 27), (1, 1, 28), (SECP256K1_N - 1, 1, 27), (5, 7, 28), (2**200, 3, 27)],
)
def test_garbage_signatures_are_a_signature_error(r: int, s: int, v: int) -> None:
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v,))
    with pytest.raises(SignatureError):
        verify_signature("Registration", REGISTRATION, DEV_DOMAIN, raw, DEV_ADDRESS)


def test_unrecoverable_signature_is_wrong_signer() -> None:
    # About half of all x coordinates are not on the curve, so some small r cannot recover.
    digest_ = digest("Registration", REGISTRATION, DEV_DOMAIN)
    failures = 0
    for r in range(1, 40):
        try:
            recover_signer(digest_, Signature(r, 1, 27))
        except WrongSigner as exc:
            assert "does not recover" in exc.detail
            failures += 1
    assert failures > 0


@settings(max_examples=200)
@given(st.binary(max_size=140))
def test_random_bytes_never_raise_anything_but_signature_errors(raw: bytes) -> None:
    with pytest.raises(SignatureError):
        verify_signature("Registration", REGISTRATION, DEV_DOMAIN, raw, DEV_ADDRESS)


@settings(max_examples=100)
@given(st.binary(min_size=65, max_size=65))
def test_random_65_bytes_are_signature_errors(raw: bytes) -> None:
    with pytest.raises(SignatureError):
        verify_signature("Registration", REGISTRATION, DEV_DOMAIN, raw, DEV_ADDRESS)


def test_zero_address_is_never_a_signer() -> None:
    signature = sign("Registration", REGISTRATION, DEV_DOMAIN, DEV_KEY)
    with pytest.raises(WrongSigner, match="zero address"):
        verify_signature("Registration", REGISTRATION, DEV_DOMAIN, signature, ZERO_ADDRESS)


@pytest.mark.parametrize("signer", ["", "0x1234", DEV_ADDRESS[:-1] + "7", DEV_ADDRESS.upper()])
def test_malformed_claimed_signer_is_refused(signer: str) -> None:
    signature = sign("Registration", REGISTRATION, DEV_DOMAIN, DEV_KEY)
    with pytest.raises(InvalidInput):
        verify_signature("Registration", REGISTRATION, DEV_DOMAIN, signature, signer)


def test_recover_signer_refuses_bad_digest() -> None:
    signature = Signature.parse(sign("Registration", REGISTRATION, DEV_DOMAIN, DEV_KEY))
    with pytest.raises(InvalidInput):
        recover_signer(bytes(31), signature)


# -- THREATS 17 (the pure part): deadlines ----------------------------------------------------


def test_deadline() -> None:
    check_deadline(100, 99)
    check_deadline(100, 100)  # the deadline second itself is still valid (EIP-2612)
    with pytest.raises(ExpiredDeadline, match="deadline 100 has passed"):
        check_deadline(100, 101)
    with pytest.raises(InvalidInput):
        check_deadline("100", 1)  # type: ignore[arg-type]


# -- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(32), b"\xff" * 32, DEV_KEY.hex()])
def test_bad_private_keys_are_refused_without_echo(key: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        sign("Registration", REGISTRATION, DEV_DOMAIN, key)  # type: ignore[arg-type]
    assert "ff" * 8 not in caught.value.detail and DEV_KEY.hex()[:16] not in caught.value.detail
