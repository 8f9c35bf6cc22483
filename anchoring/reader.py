"""A read-only view of the anchor contract over plain JSON-RPC: what a verifier needs.

A platform or auditor checking evidence reads a handful of values from the chain: the chain
id, the contract's code, ``rootAt(size)`` at the latest block and at the trust root's depth,
a block number, and one receipt. ``anchoring.chain.Chain`` does that and everything the
anchoring worker needs besides, over web3.py, whose import alone costs a verifier about
0.7 s and a hundred megabytes of dependencies. This module does the reads with the standard
library (``urllib``), hand-encoding the one call and decoding the one event; the same
behavioural tests run both (tests/anchoring/test_reader.py), so the two readings cannot drift.

NOTE: deliberately a second, narrower seam (docs/ARCHITECTURE.md, "Trust roots"): it signs
and sends nothing, and its answers are checked exactly as ``Chain``'s are (THREATS 45).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from itertools import count
from typing import Any, Final

from anchoring.errors import ChainMismatch, ChainUnavailable, ReceiptMismatch
from contracts import anchor_artifact
from registry.eip712 import checksum_address, parse_address

ROOT_AT_SELECTOR: Final = bytes.fromhex("eaa38b41")
"""keccak256("rootAt(uint64)")[:4] (a test recomputes it with web3)."""

ANCHORED_TOPIC: Final = bytes.fromhex(
    "8a625ff6b600489e76c9caf3b3e78a6b1cf48af724479bd7bdca61de573a6412"
)
"""keccak256("Anchored(uint64,bytes32,uint64)"): the event's topic 0 (a test recomputes it)."""

RPC_TIMEOUT_SECONDS: Final = 10.0
"""Seconds one JSON-RPC request may take (as ``anchoring.chain``); nothing is retried."""

MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
"""Largest JSON-RPC answer read. Threat: a hostile node answering without end. The largest
answer read here is the contract's code (a few KiB) or a receipt of one anchor."""

_WORD: Final = 32


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A node that redirects is refused: a JSON-RPC endpoint has no reason to, and following
    one would let it send a verifier's reads elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER: Final = urllib.request.build_opener(_NoRedirects)


class ChainReader:
    """The anchor contract at ``contract_address`` on the node at ``rpc_url``, read only."""

    def __init__(
        self, rpc_url: str, contract_address: str, *, timeout: float = RPC_TIMEOUT_SECONDS
    ) -> None:
        if not rpc_url.startswith(("http://", "https://")):
            raise ChainUnavailable("the RPC URL is not an http(s) URL a node can be reached at")
        self.rpc_url = rpc_url
        self.address = parse_address(contract_address, what="the contract")
        self.timeout = timeout
        self._ids = count(1)

    # -- JSON-RPC ---------------------------------------------------------------------------

    def _rpc(self, method: str, *params: Any) -> Any:
        body = json.dumps(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        ).encode()
        # The scheme was checked to be http(s) in __init__, and redirects are refused.
        request = urllib.request.Request(  # noqa: S310
            self.rpc_url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with _OPENER.open(request, timeout=self.timeout) as reply:
                raw = reply.read(MAX_RESPONSE_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ChainUnavailable(
                f"{method}: the node did not answer ({type(exc).__name__})"
            ) from exc
        if len(raw) > MAX_RESPONSE_BYTES:
            raise ChainUnavailable(f"{method}: the node's answer is larger than any it should be")
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            raise ChainUnavailable(f"{method}: the node's answer is not JSON") from exc
        if not isinstance(answer, dict):
            raise ChainUnavailable(f"{method}: the node's answer is not a JSON-RPC response")
        error = answer.get("error")
        if error is not None:
            message = error.get("message", "") if isinstance(error, dict) else str(error)
            raise ChainUnavailable(f"{method}: the node refused the call: {str(message)[:200]}")
        return answer.get("result")

    def _quantity(self, method: str, *params: Any) -> int:
        value = self._rpc(method, *params)
        return _int(value, method)

    # -- the chain and the contract ---------------------------------------------------------

    def chain_id(self) -> int:
        return self._quantity("eth_chainId")

    def block_number(self) -> int:
        return self._quantity("eth_blockNumber")

    def finalized_block(self) -> int:
        block = self._rpc("eth_getBlockByNumber", "finalized", False)
        if not isinstance(block, dict):
            raise ChainUnavailable("eth_getBlockByNumber: the node has no finalized block")
        return _int(block.get("number"), "eth_getBlockByNumber")

    def check(self, expected_chain_id: int) -> None:
        """Refuse a node on another chain, or an address that does not hold our contract."""
        chain_id = self.chain_id()
        if chain_id != expected_chain_id:
            raise ChainMismatch(f"the node serves chain {chain_id}, not {expected_chain_id}")
        code = _bytes(self._rpc("eth_getCode", self.address, "latest"), "eth_getCode")
        if code != bytes.fromhex(anchor_artifact()["deployedBytecode"].removeprefix("0x")):
            raise ChainMismatch(
                f"{self.address} on chain {chain_id} does not hold the TracemarkAnchor contract"
            )

    def root_at(self, size: int) -> bytes | None:
        return self._root(size, "latest")

    def root_at_block(self, size: int, block: int) -> bytes | None:
        if block < 0:
            return None
        return self._root(size, hex(block))

    def confirmed_root(self, size: int, confirmations: int) -> bytes | None:
        """The root for ``size`` as of ``confirmations`` blocks ago (see ``Chain``)."""
        return self.root_at_block(size, self.block_number() - confirmations + 1)

    def _root(self, size: int, block: str) -> bytes | None:
        if not 0 <= size < 2**64:
            raise ValueError("a tree size is a uint64")
        data = "0x" + (ROOT_AT_SELECTOR + size.to_bytes(_WORD, "big")).hex()
        result = _bytes(
            self._rpc("eth_call", {"to": self.address, "data": data}, block), "eth_call"
        )
        if not result:
            return None  # no code at that block: the contract did not exist yet
        if len(result) != _WORD:
            raise ChainUnavailable("eth_call: rootAt answered something other than one word")
        return None if result == bytes(_WORD) else result

    # -- receipts -----------------------------------------------------------------------------

    def anchor_block(self, tx_hash: bytes, size: int, root: bytes) -> int | None:
        """The block of the mined transaction ``tx_hash`` if its receipt proves it anchored
        (``size``, ``root``) in this contract; None while it is not mined; ``ReceiptMismatch``
        when the receipt proves something else (THREATS 29, 45: our transaction, to our
        contract, status 1, exactly one Anchored event of our contract, carrying the head)."""
        receipt = self._rpc("eth_getTransactionReceipt", "0x" + tx_hash.hex())
        if receipt is None:
            return None
        if not isinstance(receipt, dict):
            raise ChainUnavailable("eth_getTransactionReceipt: not a receipt")
        # 1. Our transaction, to our contract.
        if _bytes(receipt.get("transactionHash"), "receipt") != tx_hash:
            raise ReceiptMismatch("the receipt is for another transaction")
        to = receipt.get("to")
        if not isinstance(to, str) or _address(to) != self.address:
            raise ReceiptMismatch(f"the receipt's transaction went to {to}, not {self.address}")
        # 2. It succeeded: a status-0 receipt is never an anchor.
        status = _int(receipt.get("status"), "receipt")
        if status != 1:
            raise ReceiptMismatch(f"the anchor transaction reverted (status {status})")
        # 3. Our contract's event, with the head.
        logs = receipt.get("logs")
        if not isinstance(logs, list):
            raise ReceiptMismatch("the receipt holds no logs")
        events = [
            log
            for log in logs
            if isinstance(log, dict)
            and isinstance(log.get("address"), str)
            and _address(log["address"]) == self.address
            and isinstance(log.get("topics"), list)
            and log["topics"]
            and _bytes(log["topics"][0], "log") == ANCHORED_TOPIC
        ]
        if len(events) != 1:
            raise ReceiptMismatch(
                f"the receipt holds {len(events)} Anchored events of {self.address}"
            )
        event = events[0]
        topics, data = event["topics"], _bytes(event.get("data"), "log")
        if len(topics) != 2 or len(data) != 2 * _WORD:
            raise ReceiptMismatch("the Anchored event is not (uint64 indexed, bytes32, uint64)")
        anchored_size = int.from_bytes(_bytes(topics[1], "log"), "big")
        anchored_root = data[:_WORD]
        if (anchored_size, anchored_root) != (size, root):
            raise ReceiptMismatch(
                f"the chain anchored size {anchored_size} root 0x{anchored_root.hex()}, not "
                f"size {size} root 0x{root.hex()}"
            )
        return _int(receipt.get("blockNumber"), "receipt")


def _int(value: object, what: str) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ChainUnavailable(f"{what}: the node answered something other than a quantity")
    try:
        return int(value, 16)
    except ValueError:
        raise ChainUnavailable(f"{what}: the node answered a malformed quantity") from None


def _bytes(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ChainUnavailable(f"{what}: the node answered something other than 0x-hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise ChainUnavailable(f"{what}: the node answered malformed hex") from None


def _address(value: str) -> str:
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        return ""
    return checksum_address(raw) if len(raw) == 20 else ""


__all__ = ["ANCHORED_TOPIC", "ROOT_AT_SELECTOR", "ChainReader"]
