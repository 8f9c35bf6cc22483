"""The cross-cutting formats, each one type (issue 13, item 1): the transfer receipt, the tree
head, the batch proof and the edge types they are built from. Each document round-trips
through ``to_json``/``from_json`` byte for byte, and writes what its hand-built dict wrote."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from eth_account import Account
from pydantic import TypeAdapter, ValidationError

from registry.batchproof import BatchProof
from registry.edges import (
    Address,
    DomainField,
    GoodTypeField,
    Hash32,
    MinorAmount,
    parse_amount,
    parse_hex_bytes,
)
from registry.eip712 import DEV_DOMAIN, Domain, checksum_address, typed_data
from registry.fingerprints import GoodType, fingerprint_hex
from registry.parties import is_platform_id
from registry.receipts import RoyaltyShare, TransferReceipt, receipt_message
from registry.signatures import sign
from registry.treehead import TreeHead, tree_head_message
from verifier.schemas import ReceiptOut

KEY = Account.from_key(b"\x11" * 32)
STUDIO = checksum_address(b"\x22" * 20)


def _receipt(**changes: Any) -> TransferReceipt:
    fields: dict[str, Any] = {
        "transfer_id": 7,
        "good_type": GoodType.FILE,
        "fingerprint": b"\x01" * 32,
        "log_index": 41,
        "transfer_hash": b"\x02" * 32,
        "timestamp": 1_700_000_000,
        "signature": b"\x03" * 65,
        "signer": KEY.address,
        "domain": DEV_DOMAIN,
        "platform": "cardhub",
        "seller": {"platform": "cardhub", "reference_hash": "0x" + "04" * 32},
        "buyer": {"platform": "cardhub", "reference_hash": "0x" + "05" * 32},
        "price": 2**60,
        "currency": "EUR",
        "final": False,
        "creator": STUDIO,
        "royalties": [RoyaltyShare(recipient=STUDIO, bps=500, amount=2**55)],
        "seller_amount": 2**60 - 2**55,
    }
    return TransferReceipt(**{**fields, **changes})


def _hand_built(receipt: TransferReceipt) -> dict[str, Any]:
    """What api/routes/platforms.py wrote before the receipt was one type."""
    message = {
        "goodType": int(receipt.good_type),
        "fingerprint": receipt.fingerprint,
        "logIndex": receipt.leaf_index,
        "transferHash": receipt.transfer_hash,
        "timestamp": receipt.timestamp,
    }
    return {
        "transfer_id": receipt.transfer_id,
        "good_type": receipt.good_type.name.lower(),
        "fingerprint": fingerprint_hex(receipt.fingerprint),
        "log_index": receipt.leaf_index,
        "transfer_hash": "0x" + receipt.transfer_hash.hex(),
        "timestamp": receipt.timestamp,
        "signature": "0x" + receipt.signature.hex(),
        "signer": receipt.signer,
        "domain": receipt.domain.as_dict(),
        "typed_data": typed_data("TransferReceipt", message, receipt.domain),
        "platform": receipt.platform,
        "seller": receipt.seller,
        "buyer": receipt.buyer,
        "price": None if receipt.price is None else str(receipt.price),
        "currency": receipt.currency,
        "final": receipt.final,
        "creator": receipt.creator,
        "royalties": [
            {"recipient": s.recipient, "bps": s.bps, "amount": str(s.amount)}
            for s in receipt.royalties
        ],
        "seller_amount": None if receipt.seller_amount is None else str(receipt.seller_amount),
        "replayed": receipt.replayed,
    }


# -- the transfer receipt ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{}, {"price": None, "currency": None, "seller_amount": None, "royalties": []}],
    ids=["priced-resale", "unpriced"],
)
def test_a_receipt_writes_what_the_hand_built_answer_wrote(changes: dict[str, Any]) -> None:
    receipt = _receipt(**changes)
    document = receipt.to_json()
    expected = _hand_built(receipt)
    assert json.dumps(document) == json.dumps(expected)  # keys in the same order, too
    assert ReceiptOut.model_validate(document).model_dump() == expected


def test_a_receipt_round_trips_and_its_message_is_built_once() -> None:
    receipt = _receipt(replayed=True)
    assert TransferReceipt.from_json(receipt.to_json()) == receipt
    assert receipt.message() == receipt_message(
        GoodType.FILE, b"\x01" * 32, 41, b"\x02" * 32, 1_700_000_000
    )
    assert receipt.typed_data()["primaryType"] == "TransferReceipt"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fingerprint", "0x" + "01" * 31),
        ("good_type", "stone"),
        ("price", "-1"),
        ("price", "007"),
        ("creator", "0x" + "22" * 19),
        ("domain", {"chainId": 1}),
        ("signature", "0x0"),
    ],
)
def test_a_malformed_receipt_document_is_refused(field: str, value: object) -> None:
    document = {**_receipt().to_json(), field: value}
    with pytest.raises(ValidationError):
        TransferReceipt.from_json(document)


def test_a_receipt_is_frozen() -> None:
    with pytest.raises(ValidationError):
        _receipt().leaf_index = 0  # type: ignore[misc]


# -- the tree head ----------------------------------------------------------------------------


def _head(size: int = 5) -> TreeHead:
    root = b"\x06" * 32
    message = tree_head_message(size, root, 1_700_000_001)
    return TreeHead(
        tree_size=size,
        root=root,
        timestamp=1_700_000_001,
        signature=sign("TreeHead", message, DEV_DOMAIN, KEY.key),
        signer=bytes.fromhex(KEY.address[2:]),
        domain=DEV_DOMAIN,
    )


def test_a_tree_head_writes_what_the_route_wrote_and_round_trips() -> None:
    head = _head()
    document = head.to_json()
    assert document == {
        "tree_size": 5,
        "root": "0x" + head.root.hex(),
        "timestamp": 1_700_000_001,
        "signature": "0x" + head.signature.hex(),
        "signer": KEY.address,
        "domain": DEV_DOMAIN.as_dict(),
    }
    assert list(document) == ["tree_size", "root", "timestamp", "signature", "signer", "domain"]
    assert TreeHead.from_json(document) == head
    assert head.message() == {"size": 5, "root": head.root, "timestamp": 1_700_000_001}
    assert head.domain == DEV_DOMAIN


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tree_size", 0),
        ("tree_size", "5"),
        ("signature", "0x" + "03" * 64),
        ("signer", "0x" + "aA" * 20),
        ("domain", {**DEV_DOMAIN.as_dict(), "chainId": 0}),
    ],
)
def test_a_malformed_tree_head_is_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        TreeHead.from_json({**_head().to_json(), field: value})


# -- the batch proof --------------------------------------------------------------------------


def test_a_batch_proof_writes_what_its_dataclass_wrote_and_round_trips() -> None:
    proof = BatchProof(
        items_root=b"\x07" * 32, position=3, count=10, inclusion_proof=(b"\x08" * 32,)
    )
    assert proof.to_json() == {
        "items_root": "0x" + "07" * 32,
        "position": 3,
        "count": 10,
        "inclusion_proof": ["0x" + "08" * 32],
    }
    assert BatchProof.from_json(proof.to_json()) == proof
    with pytest.raises(ValidationError):
        BatchProof.from_json({**proof.to_json(), "count": 0})


# -- the edge types ---------------------------------------------------------------------------


def test_each_edge_type_reads_its_edge_form_and_writes_it_back() -> None:
    for annotated, text, inside in [
        (Hash32, "0x" + "Ab" * 32, bytes.fromhex("ab" * 32)),
        (Address, STUDIO.lower(), bytes.fromhex(STUDIO[2:])),
        (GoodTypeField, "code", GoodType.CODE),
        (MinorAmount, "12345678901234567890", 12345678901234567890),
        (DomainField, DEV_DOMAIN.as_dict(), DEV_DOMAIN),
    ]:
        adapter: TypeAdapter[Any] = TypeAdapter(annotated)
        assert adapter.validate_python(text) == inside
    assert TypeAdapter(Address).dump_python(bytes.fromhex(STUDIO[2:])) == STUDIO
    assert isinstance(TypeAdapter(DomainField).validate_python(DEV_DOMAIN), Domain)


@pytest.mark.parametrize("text", ["", "-1", "01", "1.5", "1e3", " 1", "١", "9" * 79])
def test_an_amount_is_decimal_digits_without_a_sign_or_leading_zero(text: str) -> None:
    with pytest.raises(ValueError, match="amount"):
        parse_amount(text)


def test_free_length_hex_is_bounded_and_in_pairs() -> None:
    assert parse_hex_bytes("0x") == b"" and parse_hex_bytes("0xABcd") == b"\xab\xcd"
    for text in ["0xabc", "ab", "0x" + "00" * 1025, "0x 0"]:
        with pytest.raises(ValueError):
            parse_hex_bytes(text)


def test_one_platform_id_test_for_every_parser() -> None:
    # The grammar the three copies spelled out before (api/auth.py, registry/distribution.py,
    # registry/parties.py): 1-64 characters, lower-case letters, digits, inner dashes.
    before = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?\Z")
    for text in ["a", "a-b", "cardhub", "-a", "a-", "A", "x" * 64, "x" * 65, "a\n", "", "a_b"]:
        assert is_platform_id(text) == bool(before.match(text)), text
    assert not is_platform_id(None)
