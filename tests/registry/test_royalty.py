"""Royalty policies: validation, canonical document and hash, and integer-exact splits."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.eip712 import checksum_address
from registry.errors import InvalidInput, InvalidRoyaltyPolicy
from registry.royalty import (
    BPS_DENOMINATOR,
    MAX_PRICE,
    MAX_RECIPIENTS,
    RoyaltyPolicy,
    RoyaltyRecipient,
    RoyaltySplit,
    policy_document,
    policy_hash,
    split,
)

ALICE = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
BOB = "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"  # checksummed form of 0xabab...ab
ZERO = "0x" + "00" * 20


def recipient(address: str, bps: object, **extra: Any) -> dict[str, Any]:
    return {"address": address, "bps": bps, **extra}


# -- validation -------------------------------------------------------------------------------


def test_valid_policy() -> None:
    policy = RoyaltyPolicy.parse(
        {"version": 1, "recipients": [recipient(ALICE, 500), recipient(BOB, 250, label="art")]}
    )
    assert policy.total_bps == 750
    assert [r.address for r in policy.recipients] == [ALICE, BOB]
    assert policy.recipients[1].label == "art"


def test_empty_policy_means_no_royalty() -> None:
    assert RoyaltyPolicy.parse({}) == RoyaltyPolicy() == RoyaltyPolicy.parse({"recipients": []})
    assert split(1000, RoyaltyPolicy()).seller_amount == 1000


def test_full_10000_bps_is_allowed() -> None:
    policy = RoyaltyPolicy.parse({"recipients": [recipient(ALICE, 9000), recipient(BOB, 1000)]})
    assert split(999, policy).seller_amount == 999 - 899 - 99


def test_addresses_are_stored_checksummed() -> None:
    policy = RoyaltyPolicy.parse({"recipients": [recipient(BOB.lower(), 1)]})
    assert policy.recipients[0].address == BOB
    upper = RoyaltyPolicy.parse({"recipients": [recipient("0x" + BOB[2:].upper(), 1)]})
    assert policy_hash(upper) == policy_hash(policy)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"version": 2}, r"version: Input should be 1"),
        ({"version": True}, r"version: must be the integer 1"),
        ({"version": 1.0}, r"version: must be the integer 1"),
        ({"version": "1"}, r"version: must be the integer 1"),
        ({"recipients": [recipient(ALICE, 0)]}, r"recipients\[0\]\.bps: .*greater than or equal"),
        ({"recipients": [recipient(ALICE, 10_001)]}, r"recipients\[0\]\.bps: .*less than or eq"),
        ({"recipients": [recipient(ALICE, "500")]}, r"recipients\[0\]\.bps: .*valid integer"),
        ({"recipients": [recipient(ALICE, True)]}, r"recipients\[0\]\.bps: .*valid integer"),
        ({"recipients": [recipient(ALICE, 5.0)]}, r"recipients\[0\]\.bps: .*valid integer"),
        ({"recipients": [recipient(ZERO, 5)]}, r"recipients\[0\]\.address: the zero address"),
        ({"recipients": [recipient(ALICE[:-1] + "A", 5)]}, r"EIP-55 checksum"),
        ({"recipients": [recipient(ALICE[:-1], 5)]}, r"0x and 40 hex digits"),
        ({"recipients": [recipient(ALICE, 5, label="")]}, r"recipients\[0\]\.label"),
        ({"recipients": [recipient(ALICE, 5, label="x" * 65)]}, r"recipients\[0\]\.label"),
        ({"recipients": [recipient(ALICE, 5, extra=1)]}, r"recipients\[0\]\.extra: Extra"),
        ({"recipients": [], "royalty": 5}, r"royalty: Extra inputs are not permitted"),
        (
            {"recipients": [recipient(ALICE, 5), recipient(ALICE.lower(), 6)]},
            r"appears more than once",
        ),
        (
            {"recipients": [recipient(ALICE, 9000), recipient(BOB, 1001)]},
            r"sum to 10001, more than 10000",
        ),
        (
            {
                "recipients": [
                    recipient(checksum_address(bytes([i + 1]) * 20), 1)
                    for i in range(MAX_RECIPIENTS + 1)
                ]
            },
            r"at most 16 recipients",
        ),
        ([recipient(ALICE, 5)], r"valid dictionary"),
        (None, r"valid dictionary"),
    ],
)
def test_invalid_policies(data: object, reason: str) -> None:
    with pytest.raises(InvalidRoyaltyPolicy, match=reason):
        RoyaltyPolicy.parse(data)


def test_max_recipients_is_allowed() -> None:
    policy = RoyaltyPolicy.parse(
        {"recipients": [recipient(checksum_address(bytes([i + 1]) * 20), 1) for i in range(16)]}
    )
    assert len(policy.recipients) == MAX_RECIPIENTS


def test_policy_is_frozen() -> None:
    policy = RoyaltyPolicy.parse({"recipients": [recipient(ALICE, 5)]})
    with pytest.raises(ValueError, match="frozen"):
        policy.recipients = ()


# -- canonical document and hash --------------------------------------------------------------


def test_policy_document_and_hash_vectors() -> None:
    empty = RoyaltyPolicy()
    assert policy_document(empty) == {"version": 1, "recipients": []}
    assert policy_hash(empty) == hashlib.sha256(b'{"recipients":[],"version":1}').digest()

    policy = RoyaltyPolicy.parse(
        {"recipients": [recipient(BOB.lower(), 250, label="artist"), recipient(ALICE, 500)]}
    )
    document = policy_document(policy)
    # No null fields; creator's order kept; addresses checksummed.
    assert document == {
        "version": 1,
        "recipients": [
            {"address": BOB, "bps": 250, "label": "artist"},
            {"address": ALICE, "bps": 500},
        ],
    }
    canonical = (
        '{"recipients":[{"address":"' + BOB + '","bps":250,"label":"artist"},'
        '{"address":"' + ALICE + '","bps":500}],"version":1}'
    ).encode()
    assert policy_hash(policy) == hashlib.sha256(canonical).digest()
    assert RoyaltyPolicy.parse(document) == policy


# -- splits -----------------------------------------------------------------------------------

addresses = st.binary(min_size=20, max_size=20).filter(any).map(checksum_address)


@st.composite
def policies(draw: st.DrawFn) -> RoyaltyPolicy:
    count = draw(st.integers(0, MAX_RECIPIENTS))
    payees = draw(st.lists(addresses, min_size=count, max_size=count, unique=True))
    budget = draw(st.integers(count, BPS_DENOMINATOR)) if count else 0
    shares: list[int] = []
    for index in range(count):
        # Leave at least 1 bps for each remaining recipient.
        most = budget - sum(shares) - (count - index - 1)
        shares.append(draw(st.integers(1, most)))
    return RoyaltyPolicy(
        recipients=tuple(
            RoyaltyRecipient(address=a, bps=b) for a, b in zip(payees, shares, strict=True)
        )
    )


prices = st.one_of(st.integers(0, 10**6), st.integers(0, MAX_PRICE))


@given(prices, policies())
def test_parts_sum_exactly_to_the_price(price: int, policy: RoyaltyPolicy) -> None:
    result = split(price, policy)
    assert result.price == price
    assert sum(amount for _, amount in result.royalties) + result.seller_amount == price
    assert result.total_royalty == sum(amount for _, amount in result.royalties)
    assert result.seller_amount >= 0


@given(prices, policies())
def test_each_royalty_is_the_floor_of_its_share(price: int, policy: RoyaltyPolicy) -> None:
    result = split(price, policy)
    assert [address for address, _ in result.royalties] == [r.address for r in policy.recipients]
    for (_, amount), payee in zip(result.royalties, policy.recipients, strict=True):
        # amount <= price * bps / 10000 < amount + 1, in integers.
        assert amount * BPS_DENOMINATOR <= price * payee.bps < (amount + 1) * BPS_DENOMINATOR


@given(prices, policies())
def test_dust_goes_to_the_seller(price: int, policy: RoyaltyPolicy) -> None:
    result = split(price, policy)
    exact_seller_share = price * (BPS_DENOMINATOR - policy.total_bps)
    assert result.seller_amount * BPS_DENOMINATOR >= exact_seller_share
    # Each recipient loses less than one unit to rounding, all of it to the seller.
    dust = result.seller_amount * BPS_DENOMINATOR - exact_seller_share
    assert dust < max(1, len(policy.recipients)) * BPS_DENOMINATOR


@given(prices, policies())
def test_split_is_deterministic(price: int, policy: RoyaltyPolicy) -> None:
    assert split(price, policy) == split(price, RoyaltyPolicy.parse(policy_document(policy)))


def test_split_vector() -> None:
    policy = RoyaltyPolicy.parse({"recipients": [recipient(ALICE, 333), recipient(BOB, 333)]})
    result = split(101, policy)
    assert result == RoyaltySplit(
        price=101, royalties=((ALICE, 3), (BOB, 3)), seller_amount=95, total_royalty=6
    )
    assert split(1, policy).royalties == ((ALICE, 0), (BOB, 0))
    assert split(0, policy).seller_amount == 0


@pytest.mark.parametrize("price", [-1, True, 1.5, "10", None, MAX_PRICE + 1])
def test_split_refuses_bad_prices(price: object) -> None:
    with pytest.raises(InvalidInput, match="price"):
        split(price, RoyaltyPolicy())  # type: ignore[arg-type]


def test_inconsistent_split_cannot_be_built() -> None:
    with pytest.raises(InvalidInput):
        RoyaltySplit(price=10, royalties=((ALICE, 3),), seller_amount=8, total_royalty=3)
    with pytest.raises(InvalidInput):
        RoyaltySplit(price=10, royalties=((ALICE, 3),), seller_amount=7, total_royalty=4)
