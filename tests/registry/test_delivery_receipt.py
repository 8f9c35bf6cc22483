"""The buyer's delivery receipt (issue 17 item 3): issued in the delivery's transaction, signed
by the registry key that attested the DELIVERY, verified offline under a pinned trust root
with and without the good's bundle; a tampered or lying receipt refused. Known answers and a
Hypothesis property without a database; the rest on real SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
from typing import Any

import pytest
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from readmodels.bundles import build_bundle
from registry import receiptstore
from registry.creator import CreatorKeys
from registry.db import read_transaction
from registry.delivery import NotTheReservedGood
from registry.deliverypayload import DeliveryPayload
from registry.deliveryreceipt import (
    PRIMARY_TYPE,
    RECEIPT_FORMAT,
    DeliveryReceipt,
    ReceiptFacts,
    is_receipt_id,
    receipt_document,
    receipt_hash,
    receipt_message,
)
from registry.eip712 import DEV_DOMAIN, Domain, checksum_address, digest
from registry.errors import InvalidInput, NotFound
from registry.fingerprints import GoodType
from registry.orders import Event, State
from registry.service import Registry
from registry.signatures import sign
from tests.conftest import Clock
from tests.registry.orderhelpers import open_and_deliver, opening, register_code
from tests.registry.test_delivery import _payload
from tests.trust import policy_of, trust_root_of
from verifier.bundle import Bundle
from verifier.deliveryreceipt import check_delivery_receipt
from verifier.errors import UntrustedRegistry, VerificationError
from verifier.trust import TrustPolicy

# -- known answers and properties (no database) ----------------------------------------------

FACTS = ReceiptFacts(
    creator=checksum_address(bytes([0x66]) * 20),
    registered_leaf=3,
    conflicts=0,
    revoked=False,
    consumed=False,
    held_by_seller=True,
    transfers_before=1,
    earlier_deliveries=0,
)
VECTOR_RECEIPT_HASH = "8f1b81fbf4713dfcc673694003fe1e7e9ee4e32f16c76fa4d0134c1d54861b6c"
"""Of ``receipt_document(_payload(), 42, FACTS)``; equal to ``_independent_hash`` of it."""
VECTOR_DIGEST = "b0296c1d25e66c08f21e612f5a535491f390b5c240c84467e58a6d4424616776"
"""Its EIP-712 signing hash under DEV_DOMAIN; cross-checked with eth-account's
``encode_typed_data`` (and the wallet-parity tests cover the struct for any message)."""


def _independent_hash(document: dict[str, Any]) -> bytes:
    # RFC 8785 for a document of ASCII strings, small integers and booleans is JSON with
    # sorted keys and no spaces: an implementation independent of the rfc8785 package.
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(b"tracemark/delivery-receipt/v1\0" + text.encode()).digest()


def test_a_receipt_document_has_known_bytes() -> None:
    payload = _payload()
    document = receipt_document(payload, 42, FACTS)
    assert document["format"] == RECEIPT_FORMAT
    body = document["receipt"]
    assert body["delivery_hash"] == "0x" + payload.payload_hash().hex()
    assert body["facts"]["never_sold_before"] is True
    # Nothing secret: the buyer only as the commitment; no code, reference or salt.
    assert set(body) == {
        "order",
        "leaf_index",
        "delivery_hash",
        "good_type",
        "fingerprint",
        "platform",
        "buyer_commitment",
        "delivered_at",
        "facts",
    }
    assert receipt_hash(document) == _independent_hash(document)
    assert receipt_hash(document).hex() == VECTOR_RECEIPT_HASH
    message = receipt_message(document)
    assert message["receiptHash"] == receipt_hash(document)
    assert message["logIndex"] == 42 and message["orderId"] == 7
    assert digest(PRIMARY_TYPE, message, DEV_DOMAIN).hex() == VECTOR_DIGEST
    # Every fact is bound: changing any one changes the hash the registry signs.
    for name, value in (("transfers_before", 2), ("consumed", True), ("registered_leaf", 4)):
        other = dataclasses.replace(FACTS, **{name: value})
        assert receipt_hash(receipt_document(_payload(), 42, other)) != receipt_hash(document)


facts_strategy = st.builds(
    ReceiptFacts,
    creator=st.binary(min_size=20, max_size=20).map(checksum_address),
    registered_leaf=st.integers(0, 2**40),
    conflicts=st.integers(0, 3),
    revoked=st.booleans(),
    consumed=st.booleans(),
    held_by_seller=st.booleans(),
    transfers_before=st.integers(0, 5),
    earlier_deliveries=st.integers(0, 3),
)


@given(facts_strategy)
def test_facts_round_trip_and_the_summary_follows_from_them(facts: ReceiptFacts) -> None:
    document = facts.document()
    assert ReceiptFacts.from_document(document) == facts
    clean = (
        facts.conflicts == 0
        and not facts.revoked
        and not facts.consumed
        and facts.held_by_seller
        and facts.earlier_deliveries == 0
    )
    assert document["never_sold_before"] is clean
    # A summary that does not follow from the facts is refused, never believed.
    with pytest.raises(InvalidInput, match="never_sold_before"):
        ReceiptFacts.from_document({**document, "never_sold_before": not clean})


def test_a_receipt_id_is_22_base64url_characters_of_fresh_randomness() -> None:
    ids = {receiptstore.new_receipt_id() for _ in range(200)}
    assert len(ids) == 200 and all(is_receipt_id(i) for i in ids)
    assert not is_receipt_id("7") and not is_receipt_id("a" * 21) and not is_receipt_id("+" * 22)


# -- on the databases ------------------------------------------------------------------------


@pytest.fixture
def code(registry: Registry, creator: CreatorKeys, clock: Clock) -> bytes:
    """A registered single-use code, still held by its creator (its fingerprint)."""
    return register_code(registry, creator, clock)


def _delivered(registry: Registry, clock: Clock, code: bytes, **opening_changes: Any) -> Any:
    order, done = open_and_deliver(registry, clock, code, **opening_changes)
    return order, done, registry.delivery_receipt(order.order_id, platform="cardhub")


def _bundle(registry: Registry, fingerprint: bytes) -> Bundle:
    return Bundle.parse(build_bundle(registry, GoodType.CODE, fingerprint).to_json())


def test_a_delivery_issues_a_signed_receipt_that_verifies_offline(
    registry: Registry, clock: Clock, code: bytes
) -> None:
    order, done, receipt = _delivered(registry, clock, code)
    assert is_receipt_id(receipt.receipt_id) and receipt.receipt_id != str(order.order_id)
    assert receipt.leaf_index == done.leaf_index
    assert receipt.delivery == done.payload
    body = receipt.document["receipt"]
    assert body["buyer_commitment"] == "0x" + order.buyer_commitment.hex()
    assert body["platform"] == "cardhub" and body["delivered_at"] == done.payload.delivered_at
    facts = receipt.facts
    assert facts.never_sold_before and facts.transfers_before == 0
    assert facts.earlier_deliveries == 0 and facts.held_by_seller
    assert receipt.signer == registry.account.address
    # Nothing secret in it: the order's salt never, the buyer's reference never.
    text = json.dumps(receipt.to_json())
    assert order.buyer_salt.hex() not in text and "buyer-1" not in text

    trust = policy_of(registry)
    alone = check_delivery_receipt(receipt.to_json(), trust)
    assert not alone.facts_proven and "no bundle" in alone.summary()
    report = check_delivery_receipt(receipt.to_json(), trust, bundle=_bundle(registry, code))
    assert report.facts_proven and "never sold before" in report.summary()
    assert report.bundle is not None and report.bundle.state is not None  # complete history

    # The short link names the same receipt; a retried delivery returns it unchanged.
    assert registry.delivery_receipt_by_id(receipt.receipt_id) == receipt
    again = registry.deliver(order.order_id, [code], platform="cardhub", idempotency_key="d-1")
    assert again.order.replayed
    assert registry.delivery_receipt(order.order_id, platform="cardhub") == receipt
    with read_transaction(registry.engine) as conn:
        assert receiptstore.receipt_count(conn) == 1


def test_a_tampered_receipt_is_refused(registry: Registry, clock: Clock, code: bytes) -> None:
    _, _, receipt = _delivered(registry, clock, code)
    trust = policy_of(registry)
    good = receipt.to_json()
    check_delivery_receipt(good, trust)

    def tampered(change: Any) -> dict[str, Any]:
        data = copy.deepcopy(good)
        change(data)
        return data

    def flip_signature(d: dict[str, Any]) -> None:
        d["signature"] = d["signature"][:-4] + ("00" if d["signature"][-4:-2] != "00" else "11")
        d["signature"] += good["signature"][-2:]

    changes = {
        "platform": lambda d: d["document"]["receipt"].update(platform="keyshop"),
        "earlier deliveries": lambda d: d["document"]["receipt"]["facts"].update(
            earlier_deliveries=1, never_sold_before=False
        ),
        "leaf": lambda d: d["document"]["receipt"].update(leaf_index=1),
        "price in the delivery": lambda d: d["delivery"]["delivery"].update(price="1"),
        "signature": flip_signature,
        "signer": lambda d: d.update(signer=Account.create().address),
        "typed data": lambda d: d["typed_data"]["message"].update(logIndex=1),
    }
    for what, change in changes.items():
        with pytest.raises(VerificationError):
            check_delivery_receipt(tampered(change), trust)
            pytest.fail(f"a receipt with another {what} verified")

    # A receipt whose every part agrees, signed by another key that claims to be the
    # registry's: refused (the trust root names the key for the DELIVERY's leaf).
    forger = Account.create()
    forged = DeliveryReceipt(
        receipt.receipt_id,
        receipt.document,
        receipt.delivery,
        receipt.facts,
        sign(PRIMARY_TYPE, receipt.message(), DEV_DOMAIN, bytes(forger.key)),
        receipt.signer,
    )
    with pytest.raises(VerificationError, match="signature"):
        check_delivery_receipt(forged.to_json(), trust)
    # Under a trust policy naming another registry, it is untrusted, not valid.
    elsewhere = Registry(
        registry.engine,
        domain=Domain(1, DEV_DOMAIN.verifying_contract),
        account=Account.create(),
        master_key=os.urandom(32),
    )
    with pytest.raises(UntrustedRegistry):
        check_delivery_receipt(good, TrustPolicy.of(trust_root_of(elsewhere)))


def test_a_receipt_that_lies_about_the_log_is_caught_by_the_bundle(
    registry: Registry, clock: Clock, code: bytes
) -> None:
    """The registry's own key signs a receipt claiming a transfer the log does not show: its
    signature holds, and the bundle refuses it (the facts are the log's, not its word)."""
    _, _, receipt = _delivered(registry, clock, code)
    facts = dataclasses.replace(receipt.facts, transfers_before=1)
    lie = DeliveryReceipt.build(
        receipt.receipt_id, receipt.delivery, receipt.leaf_index, facts, b"", receipt.signer
    )
    signed = DeliveryReceipt(
        lie.receipt_id,
        lie.document,
        lie.delivery,
        lie.facts,
        sign(PRIMARY_TYPE, lie.message(), DEV_DOMAIN, bytes(registry.account.key)),
        lie.signer,
    )
    trust = policy_of(registry)
    check_delivery_receipt(signed.to_json(), trust)  # the signature alone holds
    with pytest.raises(VerificationError, match="transfers_before"):
        check_delivery_receipt(signed.to_json(), trust, bundle=_bundle(registry, code))
    # And a bundle of another good is not this receipt's evidence.
    with pytest.raises(VerificationError):
        other = _bundle(registry, code).model_copy(
            update={
                "good": _bundle(registry, code).good.model_copy(update={"fingerprint": b"\1" * 32})
            }
        )
        check_delivery_receipt(receipt.to_json(), trust, bundle=other)


def test_a_good_delivered_again_after_a_refund_says_so(
    registry: Registry, clock: Clock, code: bytes
) -> None:
    first, _, first_receipt = _delivered(registry, clock, code)
    registry.change_order(first.order_id, Event.DISPUTE, platform="cardhub")
    refunded = registry.change_order(first.order_id, Event.REFUND, platform="cardhub")
    assert refunded.state is State.REFUNDED
    clock.advance(5)
    second = registry.open_order(opening(code, buyer="buyer-2", key="o-2"))
    registry.deliver(second.order_id, [code], platform="cardhub")
    receipt = registry.delivery_receipt(second.order_id, platform="cardhub")
    assert receipt.receipt_id != first_receipt.receipt_id
    assert receipt.facts.earlier_deliveries == 1 and not receipt.facts.never_sold_before
    report = check_delivery_receipt(
        receipt.to_json(), policy_of(registry), bundle=_bundle(registry, code)
    )
    assert "never sold before" not in report.summary()
    # The first receipt still verifies against the same (longer) history.
    check_delivery_receipt(
        first_receipt.to_json(), policy_of(registry), bundle=_bundle(registry, code)
    )


def test_a_refused_delivery_issues_no_receipt(
    registry: Registry, engine: Engine, clock: Clock, code: bytes
) -> None:
    order = registry.open_order(opening(code))
    with pytest.raises(NotTheReservedGood):
        registry.deliver(order.order_id, [b"\2" * 32], platform="cardhub")
    with read_transaction(engine) as conn:
        assert receiptstore.receipt_count(conn) == 0
    with pytest.raises(NotFound, match="no receipt"):
        registry.delivery_receipt(order.order_id, platform="cardhub")


def test_the_receipt_answers_only_the_orders_platform(
    registry: Registry, clock: Clock, code: bytes
) -> None:
    order, _, receipt = _delivered(registry, clock, code)
    with pytest.raises(NotFound, match="of yours"):
        registry.delivery_receipt(order.order_id, platform="keyshop")
    with pytest.raises(NotFound, match="no receipt"):
        registry.delivery_receipt_by_id("A" * 22)
    assert registry.delivery_receipt_by_id(receipt.receipt_id).order_id == order.order_id


def test_the_payload_in_a_receipt_must_be_canonical(
    registry: Registry, clock: Clock, code: bytes
) -> None:
    _, _, receipt = _delivered(registry, clock, code)
    data = receipt.to_json()
    # The same delivery with its document reordered parses (JSON objects have no order) ...
    data["delivery"] = dict(reversed(list(data["delivery"].items())))
    assert DeliveryReceipt.from_json(data) == receipt
    # ... but not with a field the DELIVERY payload does not have.
    data["delivery"] = {**data["delivery"], "extra": 1}
    with pytest.raises(InvalidInput):
        DeliveryReceipt.from_json(data)
    assert isinstance(receipt.delivery, DeliveryPayload)
