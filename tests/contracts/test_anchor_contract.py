"""TracemarkAnchor on a real EVM: it accepts exactly the heads that extend the last one and
the inclusion proofs that RFC 9162 accepts, as the Python code does, vectors included."""

from __future__ import annotations

import ast
import base64
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from eth_tester.exceptions import TransactionFailed
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, Web3RPCError

from registry import merkle
from registry.errors import InvalidInput, InvalidProof
from registry.tiles import MemoryTree

#: How a revert surfaces: anvil through web3's errors, py-evm through eth-tester's.
REVERTED = (ContractCustomError, Web3RPCError, TransactionFailed)
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc6962-transparency-dev"
TREE = MemoryTree()
TREE.append([merkle.hash_leaf(i.to_bytes(4, "big")) for i in range(300)])


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _hashes(values: list[str] | None) -> list[bytes]:
    return [_b64(v) for v in values or []]


def _revert_text(exc: BaseException) -> str:
    """The revert data as hex, however the backend reported it: web3's error ``data`` (anvil)
    or the raw bytes in eth-tester's ``TransactionFailed`` message (py-evm)."""
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str):
        return data.lower()
    message = str(exc)
    found = re.search(r"b(['\"]).*\1", message, flags=re.S)
    if found:
        return bytes(ast.literal_eval(found.group(0))).hex()
    return message.lower()


def _error_name(contract: Contract, exc: BaseException) -> str:
    """The custom error a revert carried (its 4-byte selector, decoded from the ABI)."""
    text = _revert_text(exc)
    for item in contract.abi:
        if item["type"] == "error":
            signature = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
            if Web3.keccak(text=signature)[:4].hex() in text.replace("0x", ""):
                return str(item["name"])
    return text


def _anchor(contract: Contract, size: int, root: bytes, proof: list[bytes], **tx: Any) -> Any:
    """Send an anchor and wait for its receipt: on anvil the next call may otherwise read the
    state before the block (an inclusion vector once read no root under load)."""
    sent = contract.functions.anchor(size, root, proof).transact(tx or None)
    contract.w3.eth.wait_for_transaction_receipt(sent)
    return sent


def _reverts_with(contract: Contract, name: str, call: Any) -> None:
    with pytest.raises(REVERTED) as caught:
        call()
    assert _error_name(contract, caught.value) == name


def _included(
    contract: Contract, leaf_hash: bytes, index: int, size: int, proof: list[bytes]
) -> bool:
    return bool(contract.functions.verifyInclusion(leaf_hash, index, size, proof).call())


# -- anchoring ----------------------------------------------------------------------------------


def test_heads_that_extend_the_last_are_anchored_with_an_event(w3: Web3, anchor: Contract) -> None:
    previous = 0
    for size in (1, 2, 3, 8, 9, 100, 255, 256, 257, 300):
        proof = TREE.consistency_proof(previous, size) if previous else []
        receipt = w3.eth.wait_for_transaction_receipt(_anchor(anchor, size, TREE.root(size), proof))
        assert receipt["status"] == 1
        [event] = anchor.events.Anchored().process_receipt(receipt)
        assert (event.args.size, event.args.root, event.args.previousSize) == (
            size,
            TREE.root(size),
            previous,
        )
        assert anchor.functions.rootAt(size).call() == TREE.root(size)
        previous = size
    assert anchor.functions.lastSize().call() == 300


def test_a_forked_or_rewritten_history_is_refused(anchor: Contract) -> None:
    # NOTE: as in RFC 9162 itself, a consistency proof binds the new size only through the
    # shape of its path: (201, root of 200) with the proof from 100 to 200 verifies, in Python
    # and on chain. Only an operator can anchor, and such a head would refuse the honest
    # log's next consistency proof, so a size lie only locks its author out.
    _anchor(anchor, 100, TREE.root(100), [])
    fork = MemoryTree()
    fork.append([merkle.hash_leaf(b"forged" + i.to_bytes(4, "big")) for i in range(200)])
    good = TREE.consistency_proof(100, 200)
    for size, root, proof in [
        (200, fork.root(200), good),  # another tree's root with our proof
        (200, fork.root(200), fork.consistency_proof(100, 200)),  # a fork's own proof
        (200, TREE.root(200), good[:-1]),  # truncated
        (200, TREE.root(200), [*good, good[0]]),  # trailing garbage
        (200, TREE.root(200), []),  # no proof at all
    ]:
        _reverts_with(
            anchor,
            "InconsistentHead",
            lambda size=size, root=root, proof=proof: _anchor(anchor, size, root, proof),
        )
    _reverts_with(anchor, "HeadNotLarger", lambda: _anchor(anchor, 100, TREE.root(100), []))
    _reverts_with(anchor, "HeadNotLarger", lambda: _anchor(anchor, 50, TREE.root(50), []))
    _reverts_with(anchor, "ZeroRoot", lambda: _anchor(anchor, 200, bytes(32), good))
    _reverts_with(anchor, "ProofTooLong", lambda: _anchor(anchor, 200, TREE.root(200), good * 20))
    assert anchor.functions.lastSize().call() == 100


def test_only_operators_anchor_and_only_the_owner_names_them(w3: Web3, anchor: Contract) -> None:
    owner, stranger = w3.eth.accounts[0], w3.eth.accounts[1]
    _reverts_with(
        anchor, "NotOperator", lambda: _anchor(anchor, 1, TREE.root(1), [], **{"from": stranger})
    )
    _reverts_with(
        anchor,
        "NotOwner",
        lambda: anchor.functions.addOperator(stranger).transact({"from": stranger}),
    )
    anchor.functions.addOperator(stranger).transact({"from": owner})
    _anchor(anchor, 1, TREE.root(1), [], **{"from": stranger})
    anchor.functions.removeOperator(stranger).transact({"from": owner})
    _reverts_with(
        anchor,
        "NotOperator",
        lambda: _anchor(
            anchor, 2, TREE.root(2), TREE.consistency_proof(1, 2), **{"from": stranger}
        ),
    )
    _reverts_with(
        anchor, "ZeroAddress", lambda: anchor.functions.addOperator("0x" + "00" * 20).transact()
    )


# -- Python and Solidity agree ------------------------------------------------------------------


def test_inclusion_proofs_agree_with_python_including_mutations(anchor: Contract) -> None:
    _anchor(anchor, 300, TREE.root(300), [])
    rng = random.Random(11)
    for index in [0, 1, 255, 256, 299, *rng.sample(range(300), 10)]:
        leaf = merkle.hash_leaf(index.to_bytes(4, "big"))
        proof = TREE.inclusion_proof(index, 300)
        assert _included(anchor, leaf, index, 300, proof)
        bit = rng.randrange(len(proof) * 256)
        mutated = list(proof)
        flipped = bytearray(mutated[bit // 256])
        flipped[(bit % 256) // 8] ^= 1 << (bit % 8)
        mutated[bit // 256] = bytes(flipped)
        for args in [
            (leaf, index, 300, mutated),  # modified proof bit
            (merkle.hash_leaf(b"other"), index, 300, proof),  # wrong leaf
            (leaf, (index + 1) % 300, 300, proof),  # leaf index + 1
            (leaf, index, 299, proof),  # a size that was never anchored
            (leaf, index, 300, proof[:-1]),  # truncated
            (leaf, index, 300, [*proof, proof[0]]),  # trailing garbage
        ]:
            assert not _included(anchor, *args)


def _vector_files(kind: str) -> list[Path]:
    return sorted(VECTORS.glob(f"{kind}/*/*.json"))


@pytest.mark.parametrize(
    "path", _vector_files("inclusion"), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_inclusion_vectors(anchor: Contract, path: Path) -> None:
    case = json.loads(path.read_text())
    leaf, proof, root = _b64(case["leafHash"]), _hashes(case["proof"]), _b64(case["root"])
    index, size = case["leafIdx"], case["treeSize"]
    try:
        merkle.verify_inclusion(leaf, index, size, proof, root)
        python_accepts = True
    except (InvalidProof, InvalidInput):
        python_accepts = False
    assert python_accepts is not case["wantErr"]
    if len(root) != 32 or not 0 < size < 2**64 or not 0 <= index < 2**64:
        return  # not expressible as an anchored head or an ABI call; Python refused it above
    if any(len(node) != 32 for node in [leaf, *proof]):
        return
    _anchor(anchor, size, root, [])
    assert _included(anchor, leaf, index, size, proof) is python_accepts


@pytest.mark.parametrize(
    "path", _vector_files("consistency"), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_consistency_vectors(anchor: Contract, path: Path) -> None:
    case = json.loads(path.read_text())
    size1, size2 = case["size1"], case["size2"]
    root1, root2, proof = _b64(case["root1"]), _b64(case["root2"]), _hashes(case["proof"])
    try:
        merkle.verify_consistency(size1, size2, proof, root1, root2)
        python_accepts = True
    except (InvalidProof, InvalidInput):
        python_accepts = False
    assert python_accepts is not case["wantErr"]
    if size1 == 0 or size1 >= size2 or len(root1) != 32 or len(root2) != 32:
        return  # the contract anchors only growth from a non-empty head (tested above)
    if any(len(node) != 32 for node in proof) or root1 == bytes(32) or root2 == bytes(32):
        return
    _anchor(anchor, size1, root1, [])
    try:
        _anchor(anchor, size2, root2, proof)
        contract_accepts = True
    except REVERTED as exc:
        assert _error_name(anchor, exc) in {"InconsistentHead", "ProofTooLong"}
        contract_accepts = False
    assert contract_accepts is python_accepts
