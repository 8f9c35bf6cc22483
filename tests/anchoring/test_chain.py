"""The chain adapter on a real anvil: deploy and check, sign and send, receipts verified
against the sealed head (THREATS 29, 32, 45), refusals classified (24, 27), node down (30)."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount

from anchoring.chain import Chain, SignedAnchor
from anchoring.classify import SendVerdict
from anchoring.devchain import ANVIL_CHAIN_ID, DevChain, free_port
from anchoring.errors import ChainMismatch, ChainUnavailable, ReceiptMismatch, TransactionRejected
from registry import merkle
from registry.tiles import MemoryTree
from tests.anchoring.conftest import DEV_CONTRACT

TREE = MemoryTree()
TREE.append([merkle.hash_leaf(i.to_bytes(4, "big")) for i in range(64)])

pytestmark = pytest.mark.slow


def _sign(
    chain: Chain, operator: LocalAccount, size: int, previous: int, **fees: int
) -> SignedAnchor:
    proof = TREE.consistency_proof(previous, size) if previous else []
    return chain.sign_anchor(
        operator,
        size=size,
        root=TREE.root(size),
        proof=proof,
        nonce=chain.nonce(operator.address),
        max_fee_per_gas=fees.get("max_fee", 10**10),
        max_priority_fee_per_gas=fees.get("tip", 10**9),
        gas=fees.get("gas", 200_000),
    )


def test_check_accepts_our_contract_and_refuses_another_chain_or_address(chain: Chain) -> None:
    chain.check(ANVIL_CHAIN_ID)
    with pytest.raises(ChainMismatch, match="serves chain 31337, not 1"):
        chain.check(1)
    elsewhere = Chain(chain.w3, "0x" + "42" * 20)
    with pytest.raises(ChainMismatch, match="does not hold the TracemarkAnchor contract"):
        elsewhere.check(ANVIL_CHAIN_ID)


def test_a_signed_anchor_is_sent_mined_and_its_receipt_verified(
    chain: Chain, operator: LocalAccount
) -> None:
    sealed = _sign(chain, operator, 10, 0)
    assert chain.send_raw(sealed.raw) == sealed.tx_hash
    receipt = chain.w3.eth.wait_for_transaction_receipt(sealed.tx_hash)
    anchored = chain.verify_receipt(dict(receipt), sealed)
    assert (anchored.size, anchored.root, anchored.previous_size) == (10, TREE.root(10), 0)
    assert chain.last_anchored() == (10, TREE.root(10))
    second = _sign(chain, operator, 64, 10)
    chain.simulate_anchor(operator.address, 64, TREE.root(64), TREE.consistency_proof(10, 64))
    chain.send_raw(second.raw)
    chain.verify_receipt(dict(chain.w3.eth.wait_for_transaction_receipt(second.tx_hash)), second)
    assert chain.root_at(64) == TREE.root(64) and chain.root_at(11) is None


def test_receipts_that_do_not_prove_the_sealed_head_are_refused(
    chain: Chain, operator: LocalAccount
) -> None:
    """THREATS 45: the node's word is checked, never taken."""
    sealed = _sign(chain, operator, 10, 0)
    chain.send_raw(sealed.raw)
    receipt = dict(chain.w3.eth.wait_for_transaction_receipt(sealed.tx_hash))
    other_root = SignedAnchor(**{**sealed.__dict__, "root": TREE.root(9)})
    other_size = SignedAnchor(**{**sealed.__dict__, "size": 11})
    other_tx = SignedAnchor(**{**sealed.__dict__, "tx_hash": bytes(32)})
    foreign_log = {**receipt, "logs": [{**receipt["logs"][0], "address": "0x" + "42" * 20}]}
    other_contract = {**receipt, "to": "0x" + "42" * 20}
    for bad_receipt, bad_sealed, reason in [
        (receipt, other_root, "not the sealed"),
        (receipt, other_size, "not the sealed"),
        (receipt, other_tx, "another transaction"),
        (foreign_log, sealed, "0 Anchored events"),
        (other_contract, sealed, "went to"),
        ({**receipt, "status": 0}, sealed, "reverted"),
    ]:
        with pytest.raises(ReceiptMismatch, match=reason):
            chain.verify_receipt(bad_receipt, bad_sealed)


def test_a_reverted_anchor_is_never_an_anchor(chain: Chain, operator: LocalAccount) -> None:
    """THREATS 29: status 0 (here: a head that does not extend the last, sent without a
    simulation and with a fixed gas limit) is refused by verify_receipt."""
    first = _sign(chain, operator, 10, 0)
    chain.send_raw(first.raw)
    chain.w3.eth.wait_for_transaction_receipt(first.tx_hash)
    with pytest.raises(TransactionRejected, match="HeadNotLarger"):
        chain.simulate_anchor(operator.address, 5, TREE.root(5), [])
    stale = chain.sign_anchor(
        operator,
        size=5,
        root=TREE.root(5),
        proof=[],
        nonce=chain.nonce(operator.address),
        max_fee_per_gas=10**10,
        max_priority_fee_per_gas=10**9,
        gas=200_000,
    )
    chain.send_raw(stale.raw)
    receipt = dict(chain.w3.eth.wait_for_transaction_receipt(stale.tx_hash))
    assert receipt["status"] == 0
    with pytest.raises(ReceiptMismatch, match="reverted"):
        chain.verify_receipt(receipt, stale)
    assert chain.last_anchored() == (10, TREE.root(10))


def test_resending_the_same_raw_transaction_is_recognised(
    chain: Chain, devchain: DevChain, operator: LocalAccount
) -> None:
    """THREATS 27: pending -> anvil's 'already imported' is ALREADY_KNOWN; mined -> 'nonce too
    low' is NONCE_USED; both mean 'look up the receipt', never 'sign again'."""
    devchain.rpc("evm_setAutomine", False)
    sealed = _sign(chain, operator, 10, 0)
    chain.send_raw(sealed.raw)
    with pytest.raises(TransactionRejected) as pending:
        chain.send_raw(sealed.raw)
    assert pending.value.verdict == SendVerdict.ALREADY_KNOWN
    devchain.rpc("anvil_mine", "0x1")
    assert chain.receipt(sealed.tx_hash) is not None
    with pytest.raises(TransactionRejected) as mined:
        chain.send_raw(sealed.raw)
    assert mined.value.verdict == SendVerdict.NONCE_USED


def test_an_unfunded_key_is_classified_insufficient_funds(
    chain: Chain, devchain: DevChain, operator: LocalAccount
) -> None:
    """THREATS 33."""
    devchain.rpc("anvil_setBalance", operator.address, "0x0")
    with pytest.raises(TransactionRejected) as refused:
        chain.send_raw(_sign(chain, operator, 10, 0).raw)
    assert refused.value.verdict == SendVerdict.INSUFFICIENT_FUNDS


def test_a_dropped_transaction_is_unknown_to_the_node(
    chain: Chain, devchain: DevChain, operator: LocalAccount
) -> None:
    """THREATS 25, the adapter's part: a dropped transaction has no receipt and the node no
    longer knows it (what tells the worker to re-send it; that the worker then sends the
    same bytes is test_threats.py::test_threat_25_...)."""
    devchain.rpc("evm_setAutomine", False)
    sealed = _sign(chain, operator, 10, 0)
    chain.send_raw(sealed.raw)
    assert chain.transaction_known(sealed.tx_hash) and chain.receipt(sealed.tx_hash) is None
    devchain.rpc("anvil_dropTransaction", "0x" + sealed.tx_hash.hex())
    assert not chain.transaction_known(sealed.tx_hash) and chain.receipt(sealed.tx_hash) is None
    devchain.rpc("anvil_mine", "0x1")  # dropped means gone: nothing of it is mined
    assert chain.receipt(sealed.tx_hash) is None and chain.last_anchored() == (0, b"")


def test_a_node_that_is_down_is_chain_unavailable() -> None:
    """THREATS 30: a clear, retryable error; nothing else happens."""
    down = Chain.connect(f"http://127.0.0.1:{free_port()}", DEV_CONTRACT, timeout=1)
    with pytest.raises(ChainUnavailable):
        down.chain_id()
    with pytest.raises(ChainUnavailable):
        down.send_raw(b"\x02")
    # A URL without a scheme, or not a URL at all: one clear line, no traceback.
    for url in ("localhost:8545", "http://"):
        with pytest.raises(ChainUnavailable, match="not an http"):
            Chain.connect(url, DEV_CONTRACT, timeout=1).chain_id()


def test_a_raw_call_the_node_refuses_is_an_error_not_none(chain: Chain) -> None:
    assert chain.rpc("eth_chainId") == hex(chain.chain_id())
    with pytest.raises(ChainUnavailable, match="refused the call"):
        chain.rpc("tracemark_noSuchMethod")
