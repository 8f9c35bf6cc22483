"""The buyer's delivery receipt against a real chain (anvil): once its DELIVERY is anchored,
the receipt and the good's bundle verify against the chain under the pinned trust root; before,
everything but the chain holds and the check says not yet (issue 17 item 3). Registry on
SQLite; both databases in tests/registry/test_delivery_receipt.py."""

from __future__ import annotations

import pytest

from readmodels.bundles import build_bundle
from registry.fingerprints import GoodType
from tests.registry.test_order_evidence import _code
from tests.registry.test_orders import opening
from tests.trust import policy_of
from tests.verifier.conftest import World
from verifier.bundle import Bundle
from verifier.deliveryreceipt import check_delivery_receipt
from verifier.errors import NotAnchoredYet

pytestmark = pytest.mark.slow


def test_the_receipt_verifies_against_the_chain_once_anchored(world: World) -> None:
    registry = world.registry
    code = _code(registry, world.creator, world.clock)
    order = registry.open_order(opening(code))
    registry.deliver(order.order_id, [code], platform="cardhub")
    receipt = registry.delivery_receipt(order.order_id, platform="cardhub").to_json()
    trust = policy_of(registry)

    def bundle() -> Bundle:
        return Bundle.parse(build_bundle(registry, GoodType.CODE, code).to_json())

    # Not anchored yet: the receipt and the log hold, the chain does not hold the head yet.
    with pytest.raises(NotAnchoredYet):
        check_delivery_receipt(receipt, trust, bundle=bundle(), chain=world.chain)
    world.anchor()
    report = check_delivery_receipt(receipt, trust, bundle=bundle(), chain=world.chain)
    assert report.bundle is not None and report.bundle.status == "verified"
    assert report.bundle.chain is not None and report.bundle.chain.final
    assert "never sold before" in report.summary() and "bundle verified" in report.summary()
