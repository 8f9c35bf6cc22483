"""An order's dispute evidence against a real chain (anvil) and through ``tracemark verify``:
a stranger with the file, the registry's trust root and a node verifies it (exit 0), reads
what it shows, and a doctored file fails (exit 11). Registry on SQLite; both databases in
tests/registry/test_order_evidence.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.cli.verify import EXIT_BUNDLE_INVALID, EXIT_NOT_ANCHORED
from readmodels.orderevidence import build_order_evidence
from registry.orders import Event
from registry.transferrequests import Party
from tests.registry.orderhelpers import opening, register_code
from tests.registry.test_order_evidence import HOUR
from tests.registry.test_transfers import CREATOR, sale
from tests.trust import policy_of
from tests.verifier.conftest import World
from tests.verifier.test_verify_cli import Verify
from verifier.orderevidence import OrderEvidence, check_order_evidence

pytestmark = pytest.mark.slow


@pytest.fixture
def verify(tmp_path: Any) -> Verify:
    return Verify(tmp_path)


def _dispute(world: World) -> int:
    """Delivered, disputed, refunded; the code redeemed on keyshop 3 hours after delivery."""
    registry, clock = world.registry, world.clock
    code = register_code(registry, world.creator, clock)
    order = registry.open_order(opening(code))
    delivered_at = clock()
    registry.deliver(order.order_id, [code], platform="cardhub")
    clock.advance(600)
    registry.change_order(order.order_id, Event.DISPUTE, platform="cardhub")
    registry.change_order(order.order_id, Event.REFUND, platform="cardhub")
    clock.now = delivered_at + 3 * HOUR
    registry.transfer(sale(code, CREATOR, Party("keyshop", "k-1"), platform="keyshop", final=True))
    registry.sequence_all()
    return order.order_id


def test_the_evidence_verifies_against_the_chain_and_from_the_file(
    world: World, verify: Verify
) -> None:
    order_id = _dispute(world)
    unanchored = build_order_evidence(world.registry, world.registry.order(order_id))
    assert unanchored.bundle.anchor is None
    world.anchor()
    evidence = build_order_evidence(world.registry, world.registry.order(order_id))
    assert evidence.bundle.anchor is not None

    report = check_order_evidence(
        OrderEvidence.parse(evidence.to_json()), policy_of(world.registry), world.chain
    )
    assert report.status == "verified" and report.bundle.chain is not None
    assert report.state == "refunded" and not report.clean
    assert report.summary_document["en"][1].startswith(
        "the code was redeemed (a final sale consumed it) on platform keyshop 3 hours after"
    )

    rpc = world.devchain.rpc_url
    root = verify.pin(world.registry)
    path = verify.write(json.loads(evidence.to_json()), "evidence.json")
    done = verify(path, "--rpc", rpc, expect=0)
    assert done.stdout.startswith(f"OK: order {order_id}: code 0x")
    assert "(4 signed changes of the order). Evidence: " in done.stdout
    assert "redeemed (a final sale consumed it) on platform keyshop 3 hours after" in done.stdout
    assert f"trust root {root.label()}" in done.stdout
    answer = json.loads(verify(path, "--rpc", rpc, "--json", expect=0).stdout)
    assert answer["status"] == "verified" and answer["clean"] is False
    assert answer["zh"][1].startswith("交付后3小时，该卡密已在平台 keyshop 被核销")
    # Without a node: everything but the chain holds, not yet evidence.
    verify(path, expect=EXIT_NOT_ANCHORED)
    # The one fetched before the anchor names none, but its head is anchored now: the root is
    # read from the contract, the bundle's pointer is only where to look.
    early = verify.write(json.loads(unanchored.to_json()), "early.json")
    verify(early, "--rpc", rpc, expect=0)

    # A doctored summary ("clean"), even with the proofs intact: refused with its reason.
    doctored = json.loads(evidence.to_json())
    doctored["summary"]["clean"] = True
    failed = verify(
        verify.write(doctored, "doctored.json"), "--rpc", rpc, expect=EXIT_BUNDLE_INVALID
    )
    assert failed.stderr.startswith("FAIL: the summary's 'clean' is not what the verified evidence")
    # Keys reordered (format last): still read as an order's evidence, and verified.
    document = json.loads(evidence.to_json())
    reordered = {k: document[k] for k in [*sorted(set(document) - {"format"}), "format"]}
    verify(verify.write(reordered, "reordered.json"), "--rpc", rpc, expect=0)
