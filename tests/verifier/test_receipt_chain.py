"""The buyer's delivery receipt against a real chain (anvil): once its DELIVERY is anchored,
the receipt and the good's bundle verify against the chain under the pinned trust root, in
the library and through ``tracemark verify``; before, everything but the chain holds and the
check says not yet (issue 17 item 3). Registry on
SQLite; both databases in tests/registry/test_delivery_receipt.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli.verify import EXIT_BUNDLE_INVALID, EXIT_NOT_ANCHORED
from readmodels.bundles import build_bundle
from registry.fingerprints import GoodType
from tests.registry.orderhelpers import opening, register_code
from tests.trust import policy_of
from tests.verifier.conftest import World
from tests.verifier.test_verify_cli import Verify
from verifier.bundle import Bundle
from verifier.deliveryreceipt import check_delivery_receipt
from verifier.errors import NotAnchoredYet

pytestmark = pytest.mark.slow


def test_the_receipt_verifies_against_the_chain_once_anchored(world: World) -> None:
    registry = world.registry
    code = register_code(registry, world.creator, world.clock)
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


@pytest.fixture
def verify(tmp_path: Path) -> Verify:
    return Verify(tmp_path)


def test_tracemark_verify_checks_a_receipt_file_with_its_bundle(
    world: World, verify: Verify
) -> None:
    """A buyer with the receipt file, the good's bundle, the pinned trust root and a node:
    exit 0; without the bundle or the node, 12 (not evidence yet); a doctored receipt, 11."""
    registry = world.registry
    code = register_code(registry, world.creator, world.clock)
    order = registry.open_order(opening(code))
    registry.deliver(order.order_id, [code], platform="cardhub")
    world.anchor()
    receipt = registry.delivery_receipt(order.order_id, platform="cardhub").to_json()
    verify.pin(registry)
    rpc = world.devchain.rpc_url
    receipt_file = verify.write(receipt, "receipt.json")
    bundle_file = verify.write(
        json.loads(build_bundle(registry, GoodType.CODE, code).to_json()), "bundle.json"
    )

    done = verify(receipt_file, "--bundle", bundle_file, "--rpc", rpc, expect=0)
    assert done.stdout.startswith(f"OK: receipt {receipt['receipt_id']}: code 0x")
    assert "never sold before" in done.stdout and "bundle verified" in done.stdout
    answer = json.loads(
        verify(receipt_file, "--bundle", bundle_file, "--rpc", rpc, "--json", expect=0).stdout
    )
    assert answer["status"] == "verified" and answer["facts"]["never_sold_before"] is True
    # The signature alone, or the log without the chain: it holds, not yet evidence.
    alone = verify(receipt_file, expect=EXIT_NOT_ANCHORED)
    assert "no bundle given" in alone.stdout
    verify(receipt_file, "--bundle", bundle_file, expect=EXIT_NOT_ANCHORED)
    # A doctored receipt (another platform named): 11.
    doctored = json.loads(json.dumps(receipt))
    doctored["document"]["receipt"]["platform"] = "keyshop"
    bad = verify(verify.write(doctored, "doctored.json"), expect=EXIT_BUNDLE_INVALID)
    assert bad.stderr.startswith("FAIL: the receipt does not parse")
