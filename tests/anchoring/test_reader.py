"""The verifier's reads of the anchor contract, over plain JSON-RPC (``ChainReader``) and over
web3 (``Chain``): one behavioural suite for both on a real anvil, and a node that lies about
a receipt (THREATS 45) through the loopback proxy, for both."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from anchoring.chain import Chain, SignedAnchor
from anchoring.devchain import ANVIL_CHAIN_ID, DevChain
from anchoring.errors import ChainMismatch, ChainUnavailable, ReceiptMismatch
from anchoring.reader import ANCHORED_TOPIC, ROOT_AT_SELECTOR, ChainReader
from registry import merkle
from registry.tiles import MemoryTree
from tests.anchoring.conftest import DEV_CONTRACT
from tests.anchoring.rpc_proxy import RpcProxy
from verifier.headcheck import AnchorView

pytestmark = pytest.mark.slow

TREE = MemoryTree()
TREE.append([merkle.hash_leaf(i.to_bytes(4, "big")) for i in range(64)])

Reader = Callable[[str], AnchorView]
READERS: dict[str, Reader] = {
    "json-rpc": lambda url: ChainReader(url, DEV_CONTRACT),
    "web3": lambda url: Chain.connect(url, DEV_CONTRACT),
}


def test_the_selector_and_topic_are_the_abis() -> None:
    assert bytes(Web3.keccak(text="rootAt(uint64)")[:4]) == ROOT_AT_SELECTOR
    assert bytes(Web3.keccak(text="Anchored(uint64,bytes32,uint64)")) == ANCHORED_TOPIC


def _anchor(chain: Chain, operator: LocalAccount, size: int, previous: int) -> SignedAnchor:
    sealed = chain.sign_anchor(
        operator,
        size=size,
        root=TREE.root(size),
        proof=TREE.consistency_proof(previous, size) if previous else [],
        nonce=chain.nonce(operator.address),
        max_fee_per_gas=10**10,
        max_priority_fee_per_gas=10**9,
        gas=200_000,
    )
    chain.send_raw(sealed.raw)
    chain.w3.eth.wait_for_transaction_receipt(sealed.tx_hash)
    return sealed


@pytest.fixture
def anchored(chain: Chain, operator: LocalAccount, devchain: DevChain) -> list[SignedAnchor]:
    first = _anchor(chain, operator, 10, 0)
    devchain.rpc("anvil_mine", hex(3))
    second = _anchor(chain, operator, 64, 10)
    return [first, second]


@pytest.mark.parametrize("kind", READERS)
def test_both_readers_read_the_same_chain(
    kind: str, anchored: list[SignedAnchor], devchain: DevChain, chain: Chain
) -> None:
    reader = READERS[kind](devchain.rpc_url)
    assert reader.address == DEV_CONTRACT and reader.chain_id() == ANVIL_CHAIN_ID
    reader.check(ANVIL_CHAIN_ID)
    with pytest.raises(ChainMismatch, match="serves chain 31337, not 1"):
        reader.check(1)
    latest = reader.block_number()
    assert latest == chain.block_number()
    first, second = anchored
    assert reader.root_at(10) == TREE.root(10) and reader.root_at(64) == TREE.root(64)
    assert reader.root_at(11) is None
    block_10 = reader.anchor_block(first.tx_hash, 10, TREE.root(10))
    block_64 = reader.anchor_block(second.tx_hash, 64, TREE.root(64))
    assert block_10 is not None and block_64 == latest and block_10 < block_64
    # At the depth asked: the second head is one confirmation deep, the first four.
    assert reader.confirmed_root(64, 1) == TREE.root(64)
    assert reader.confirmed_root(64, 2) is None
    assert reader.confirmed_root(10, 4) == TREE.root(10)
    assert reader.root_at_block(10, block_10 - 1) is None
    assert reader.root_at_block(10, 0) is None  # before the contract existed
    assert reader.root_at_block(10, -1) is None
    # A receipt of another head, or of a transaction never mined.
    another_head = "anchored size 10 root .*, not (the sealed )?size 64"
    with pytest.raises(ReceiptMismatch, match=another_head):
        reader.anchor_block(first.tx_hash, 64, TREE.root(64))
    assert reader.anchor_block(b"\x42" * 32, 10, TREE.root(10)) is None
    # The finalized tag (anvil's lags 64 blocks: nothing is final yet).
    assert reader.root_at_block(64, reader.finalized_block()) is None


@pytest.mark.parametrize("kind", READERS)
def test_another_address_holds_no_anchor_contract(
    kind: str, anchored: object, devchain: DevChain
) -> None:
    reader = (
        ChainReader(devchain.rpc_url, "0x" + "42" * 20)
        if kind == "json-rpc"
        else Chain.connect(devchain.rpc_url, "0x" + "42" * 20)
    )
    with pytest.raises(ChainMismatch, match="does not hold the TracemarkAnchor contract"):
        reader.check(ANVIL_CHAIN_ID)


def _receipt_rewrite(mutate: Callable[[dict[str, Any]], None]) -> Callable[..., dict[str, Any]]:
    def rewrite(method: str, answer: dict[str, Any]) -> dict[str, Any]:
        if method == "eth_getTransactionReceipt" and answer.get("result"):
            answer = copy.deepcopy(answer)
            mutate(answer["result"])
        return answer

    return rewrite


def _wrong_topic(receipt: dict[str, Any]) -> None:
    receipt["logs"][0]["topics"][0] = "0x" + "ab" * 32


def _two_events(receipt: dict[str, Any]) -> None:
    receipt["logs"].append(copy.deepcopy(receipt["logs"][0]))


def _other_address(receipt: dict[str, Any]) -> None:
    receipt["logs"][0]["address"] = "0x" + "42" * 20


def _reverted(receipt: dict[str, Any]) -> None:
    receipt["status"] = "0x0"


def _other_root(receipt: dict[str, Any]) -> None:
    data = receipt["logs"][0]["data"]
    receipt["logs"][0]["data"] = "0x" + "00" * 32 + data[66:]


def _other_size(receipt: dict[str, Any]) -> None:
    receipt["logs"][0]["topics"][1] = "0x" + (11).to_bytes(32, "big").hex()


def _other_recipient(receipt: dict[str, Any]) -> None:
    receipt["to"] = "0x" + "42" * 20


def _other_transaction(receipt: dict[str, Any]) -> None:
    receipt["transactionHash"] = "0x" + "42" * 32


LIES = {
    "wrong-topic": (_wrong_topic, "0 Anchored events"),
    "two-events": (_two_events, "2 Anchored events"),
    "other-address": (_other_address, "0 Anchored events"),
    "reverted": (_reverted, "reverted"),
    "other-root": (_other_root, "not the sealed|not size 10 root"),
    "other-size": (_other_size, "anchored size 11"),
    "other-recipient": (_other_recipient, "went to"),
    "other-transaction": (_other_transaction, "another transaction"),
}


@pytest.fixture
def proxy(devchain: DevChain) -> Iterator[RpcProxy]:
    with RpcProxy(devchain.rpc_url, mode="plain") as running:
        yield running


@pytest.mark.parametrize("lie", LIES)
@pytest.mark.parametrize("kind", READERS)
def test_threat_45_a_lying_receipt_is_refused_by_both_readers(
    kind: str, lie: str, anchored: list[SignedAnchor], proxy: RpcProxy
) -> None:
    mutate, reason = LIES[lie]
    reader = READERS[kind](proxy.url)
    first = anchored[0]
    assert reader.anchor_block(first.tx_hash, 10, TREE.root(10)) is not None  # honest first
    proxy.rewrite = _receipt_rewrite(mutate)
    with pytest.raises(ReceiptMismatch, match=reason):
        reader.anchor_block(first.tx_hash, 10, TREE.root(10))


def test_the_json_rpc_reader_refuses_what_a_node_should_never_answer(
    anchored: object, proxy: RpcProxy
) -> None:
    reader = ChainReader(proxy.url, DEV_CONTRACT)
    for method, result in (
        ("eth_chainId", 5),
        ("eth_blockNumber", "0xzz"),
        ("eth_call", "0x" + "11" * 33),
    ):
        proxy.rewrite = lambda m, a, method=method, result=result: (
            {**a, "result": result} if m == method else a
        )
        with pytest.raises(ChainUnavailable):
            reader.chain_id()
            reader.block_number()
            reader.root_at(10)
    proxy.rewrite = None
    with pytest.raises(ChainUnavailable, match="not an http"):
        ChainReader("localhost:8545", DEV_CONTRACT)
    down = ChainReader("http://127.0.0.1:9", DEV_CONTRACT, timeout=2)
    with pytest.raises(ChainUnavailable, match="did not answer"):
        down.chain_id()
