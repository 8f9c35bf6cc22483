"""An order's dispute evidence (issue 17 item 5) on real SQLite and PostgreSQL: built from the
registry, checked offline (everything but the chain: the chain is tests/verifier/
test_order_evidence_chain.py), its summary recomputed by the verifier, and every tampering
refused."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account

from readmodels.orderevidence import NotDelivered, build_order_evidence
from registry.creator import CreatorKeys
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType
from registry.leaf import EntryKind
from registry.orders import CHANGE_TYPE, Event, State, change_document, change_hash
from registry.orderviews import OrderView
from registry.service import Registry
from registry.signatures import sign
from registry.transferrequests import Party
from tests.conftest import Clock
from tests.registry.orderhelpers import opening, register_code
from tests.registry.test_transfers import CREATOR, handover, sale
from tests.trust import policy_of
from verifier.bundle import Bundle
from verifier.deliverycheck import delivery_payload
from verifier.errors import BundleInvalid
from verifier.orderevidence import OrderEvidence, OrderEvidenceReport, check_order_evidence
from verifier.orderfacts import duration, facts_of, summarize

HOUR, DAY = 3_600, 86_400


@dataclass
class Dispute:
    order: OrderView
    code: bytes
    delivered_at: int


def _redeemed_elsewhere(registry: Registry, creator: CreatorKeys, clock: Clock) -> Dispute:
    """cardhub sells a code first-hand: delivered, disputed, refunded (the good stays with
    its seller); 3 hours after the delivery keyshop reports the code's final sale (redeemed).
    The reservation blocks every sale while the order is open, so a sale after the delivery
    is in the log only once the order is closed."""
    code = register_code(registry, creator, clock)
    order = registry.open_order(opening(code))
    clock.advance(60)
    delivered_at = clock()
    registry.deliver(order.order_id, [code], platform="cardhub")
    clock.advance(600)
    registry.change_order(order.order_id, Event.DISPUTE, platform="cardhub")
    clock.advance(HOUR)
    registry.change_order(order.order_id, Event.REFUND, platform="cardhub")
    clock.now = delivered_at + 3 * HOUR + 120
    registry.transfer(
        sale(code, CREATOR, Party("keyshop", "someone"), platform="keyshop", final=True)
    )
    registry.sequence_all()
    return Dispute(registry.order(order.order_id), code, delivered_at)


def _document(registry: Registry, order: OrderView) -> dict[str, Any]:
    """The evidence as a stranger receives it: JSON text."""
    return json.loads(build_order_evidence(registry, order).to_json())


def _check(registry: Registry, document: dict[str, Any]) -> OrderEvidenceReport:
    return check_order_evidence(
        OrderEvidence.parse(json.dumps(document)), policy_of(registry), None
    )


def test_a_code_redeemed_elsewhere_after_delivery_verifies_offline_and_says_so(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    dispute = _redeemed_elsewhere(registry, creator, clock)
    report = _check(registry, _document(registry, dispute.order))
    assert report.state == "refunded" and report.changes == 4
    assert not report.clean
    assert report.bundle.state is not None  # the history is proved complete
    (fact,) = report.summary_document["facts"]
    assert (fact["kind"], fact["when"], fact["platform"], fact["elsewhere"]) == (
        "redemption",
        "after",
        "keyshop",
        True,
    )
    assert fact["seconds"] == 3 * HOUR + 120
    en, zh = report.summary_document["en"], report.summary_document["zh"]
    assert en[0].startswith(f"order {dispute.order.order_id}: code 0x{dispute.code.hex()} was ")
    assert "the order is refunded" in en[0] and "订单已退款" in zh[0]
    assert en[1].startswith(
        "the code was redeemed (a final sale consumed it) on platform keyshop "
        "3 hours after delivery"
    )
    assert zh[1].startswith("交付后3小时，该卡密已在平台 keyshop 被核销")
    assert "not clean" in en[-1] and "不干净" in zh[-1]
    assert "redeemed" in report.summary() and report.status == "chain-not-checked"


def test_a_clean_delivery_says_so_in_both_languages(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    code = register_code(registry, creator, clock)
    order = registry.open_order(opening(code))
    registry.deliver(order.order_id, [code], platform="cardhub")
    clock.advance(600)
    order = registry.change_order(order.order_id, Event.CONFIRM, platform="cardhub")
    report = _check(registry, _document(registry, order))
    assert report.clean and report.state == "confirmed"
    # Confirming records the order's own sale (registry.settlement, issue 17 items 4 and 6):
    # a fact, not a sale elsewhere. (Without that settlement a confirmation logs nothing.)
    facts = report.summary_document["facts"]
    assert [(f["kind"], f["platform"], f["elsewhere"]) for f in facts] in (
        [("settlement", "cardhub", False)],
        [],
    )
    if facts:
        assert report.summary_document["en"][1].startswith(
            "the order's own sale to its buyer was recorded on platform cardhub 10 minutes after"
        )
    assert report.summary_document["en"][-1].endswith("the delivery is clean")
    assert report.summary_document["zh"][-1].endswith("本次交付是干净的")


def test_a_refund_of_a_code_the_buyer_redeemed_says_so(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    """The platform refunds, saying the buyer redeemed the code anyway: the registry consumes
    it by a final TRANSFER to the buyer in the refund's transaction (registry.settlement)."""
    code = register_code(registry, creator, clock)
    order = registry.open_order(opening(code))
    registry.deliver(order.order_id, [code], platform="cardhub")
    clock.advance(600)
    registry.change_order(order.order_id, Event.DISPUTE, platform="cardhub")
    clock.advance(2 * HOUR)
    refunded = registry.change_order(
        order.order_id, Event.REFUND, platform="cardhub", redeemed=True
    )
    report = _check(registry, _document(registry, refunded))
    assert report.state == "refunded" and report.clean
    facts = report.summary_document["facts"]
    assert [(f["kind"], f["platform"], f["elsewhere"]) for f in facts] == [
        ("refund_redeemed", "cardhub", False)
    ]
    assert report.summary_document["en"][1].startswith(
        "the order's refund recorded the code as redeemed by its buyer on platform cardhub "
        "2 hours after delivery"
    )
    assert report.summary_document["zh"][1].startswith(
        "交付后2小时，本订单退款时记录该卡密已被买家"
    )


def test_a_fake_delivery_history_shows_the_earlier_sale_elsewhere(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    """The code was sold on keyshop two days before the delivery, then moved (with keyshop's
    consent) to a cardhub seller a day later, who delivered it on cardhub."""
    code = register_code(registry, creator, clock)
    alice, mallory = Party("keyshop", "alice"), Party("cardhub", "mallory")
    registry.transfer(sale(code, CREATOR, alice, platform="keyshop"))
    clock.advance(DAY)
    token = handover(registry, code, alice, "cardhub")
    registry.transfer(sale(code, alice, mallory, platform="cardhub", authorization=token))
    registry.sequence_all()
    clock.advance(DAY + 5)
    order = registry.open_order(opening(code, seller=mallory))
    registry.deliver(order.order_id, [code], platform="cardhub")
    report = _check(registry, _document(registry, registry.order(order.order_id)))
    facts = report.summary_document["facts"]
    assert [(f["kind"], f["when"], f["platform"], f["elsewhere"]) for f in facts] == [
        ("sale", "before", "keyshop", True),
        ("sale", "before", "cardhub", False),
    ]
    en = report.summary_document["en"]
    assert en[1].startswith(
        "the code delivered was sold on platform keyshop 2 days before delivery"
    )
    assert en[2].startswith("the code delivered was sold on platform cardhub 1 day before delivery")
    assert report.summary_document["zh"][1].startswith(
        "交付前2天，所交付的卡密曾在平台 keyshop 售出"
    )
    assert not report.clean and "a seller on platform cardhub" in en[0]


def test_no_evidence_before_delivery(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    code = register_code(registry, creator, clock)
    order = registry.open_order(opening(code))
    with pytest.raises(NotDelivered):
        build_order_evidence(registry, order)


# -- tampering ------------------------------------------------------------------------------


def _resummarize(document: dict[str, Any]) -> None:
    """What a forger who understands the format does after editing the evidence: compute
    the summary again from the edited evidence, so that only the proofs can refuse it."""
    bundle = Bundle.model_validate(document["bundle"])
    delivery = next(e for e in bundle.entries if e.leaf_index == document["delivery_leaf"])
    payload = delivery_payload(delivery)
    state = document["changes"][-1]["to_state"]
    document["summary"] = summarize(
        order_id=document["order_id"],
        state=state,
        payload=payload,
        delivery_leaf=delivery.leaf_index,
        tree_size=bundle.tree_head.tree_size,
        facts=facts_of(bundle.entries, delivery, payload, state, document["changes"][-1]["at"]),
    )


def test_every_tampering_is_refused(registry: Registry, creator: CreatorKeys, clock: Clock) -> None:
    dispute = _redeemed_elsewhere(registry, creator, clock)
    good = _document(registry, dispute.order)
    _check(registry, good)
    other_code = register_code(registry, creator, clock)
    other = registry.open_order(opening(other_code))
    registry.deliver(other.order_id, [other_code], platform="cardhub")
    other_document = _document(registry, registry.order(other.order_id))

    def refused(step: str, edit: Any, *, resummarize: bool = True) -> None:
        document = copy.deepcopy(good)
        edit(document)
        if resummarize:
            _resummarize(document)
        with pytest.raises(BundleInvalid) as caught:
            _check(registry, document)
        assert caught.value.step == step, caught.value.detail

    kinds = [e["kind"] for e in good["bundle"]["later_entries"]]
    assert kinds == ["DELIVERY", "TRANSFER"]
    # Drop a history entry (the redemption after delivery): the state map counts it.
    refused("state", lambda d: d["bundle"]["later_entries"].pop())
    # ... and without recomputing the summary: the same refusal, before the summary.
    refused("state", lambda d: d["bundle"]["later_entries"].pop(), resummarize=False)

    # Strip the state map's proof (a v4 bundle may carry none) and drop the entry: refused
    # for want of completeness, not accepted as a shorter history.
    def unproved(d: dict[str, Any]) -> None:
        d["bundle"]["state"] = None
        d["bundle"]["later_entries"].pop()

    refused("completeness", unproved)

    # Alter a change: its event, its time, its actor; drop one in the middle.
    def event(d: dict[str, Any]) -> None:
        d["changes"][3]["event"], d["changes"][3]["to_state"] = "release", "released"

    refused("changes", event)
    refused("changes", lambda d: d["changes"][2].update(at=d["changes"][2]["at"] + 1))
    refused("changes", lambda d: d["changes"][1].update(actor="platform:keyshop"))
    refused("changes", lambda d: d["changes"].pop(2))
    refused("changes", lambda d: d["changes"][0].update(signature="0x" + "11" * 65))

    # Forge the resolution (refund -> release) with its hash right, signed by a key of one's
    # own: the trust root names only the registry's keys.
    def forged(d: dict[str, Any]) -> None:
        last = d["changes"][3]
        last["event"], last["to_state"] = "release", "released"
        digest = change_hash(
            change_document(
                order_id=d["order_id"],
                sequence=3,
                event="release",
                from_state=State.DISPUTED,
                to_state=State.RELEASED,
                actor=last["actor"],
                at=last["at"],
                previous=bytes.fromhex(d["changes"][2]["change_hash"][2:]),
                good_type=int(GoodType.CODE),
                fingerprint=dispute.code,
            )
        )
        forger = Account.create()
        message = {
            "orderId": d["order_id"],
            "sequence": 3,
            "changeHash": digest,
            "timestamp": last["at"],
        }
        last["change_hash"] = "0x" + digest.hex()
        last["signature"] = "0x" + sign(CHANGE_TYPE, message, DEV_DOMAIN, bytes(forger.key)).hex()
        last["signer"] = forger.address

    refused("changes", forged)

    # Alter the summary: its words, its verdict, a fact; in either language.
    def words(d: dict[str, Any]) -> None:
        d["summary"]["en"][1] = d["summary"]["en"][1].replace("keyshop", "cardhub")

    refused("summary", words, resummarize=False)
    refused("summary", lambda d: d["summary"].update(clean=True), resummarize=False)
    refused("summary", lambda d: d["summary"]["zh"].pop(), resummarize=False)
    refused("summary", lambda d: d["summary"]["facts"][0].update(seconds=60), resummarize=False)
    refused("summary", lambda d: d["summary"].update(note="all fine"), resummarize=False)

    # Swap the delivery: point at the other entry, or bring another order's delivery.
    def point_elsewhere(d: dict[str, Any]) -> None:
        d["delivery_leaf"] = d["bundle"]["later_entries"][1]["leaf_index"]

    refused("delivery", point_elsewhere, resummarize=False)

    def swap_bundle(d: dict[str, Any]) -> None:
        d["bundle"] = copy.deepcopy(other_document["bundle"])
        d["delivery_leaf"] = other_document["delivery_leaf"]

    refused("delivery", swap_bundle)

    def swap_changes(d: dict[str, Any]) -> None:
        d["changes"] = copy.deepcopy(other_document["changes"])

    refused("changes", swap_changes)

    def swap_order(d: dict[str, Any]) -> None:
        d["order_id"] = other_document["order_id"]

    refused("delivery", swap_order)


def test_durations_have_known_answers() -> None:
    assert duration(0) == ("0 seconds", "0秒")
    assert duration(1) == ("1 second", "1秒")
    assert duration(59) == ("59 seconds", "59秒")
    assert duration(60) == ("1 minute", "1分钟")
    assert duration(3 * HOUR + 120) == ("3 hours", "3小时")
    assert duration(2 * DAY - 1) == ("1 day", "1天")
    assert duration(2 * DAY) == ("2 days", "2天")


def test_the_delivery_entry_is_in_the_bundle(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    dispute = _redeemed_elsewhere(registry, creator, clock)
    evidence = build_order_evidence(registry, dispute.order)
    kinds = {e.leaf_index: e.kind for e in evidence.bundle.entries}
    assert kinds[evidence.delivery_leaf] is EntryKind.DELIVERY
