"""The one seam between tracemark and an EVM chain: the anchor contract, in domain terms.

Implemented once over web3.py for any provider (py-evm in tests, anvil, a real node).
Third-party errors are wrapped here and nowhere else: a transport failure is
``ChainUnavailable`` (back off, change nothing), a node's refusal of a raw transaction is
``TransactionRejected`` with a verdict, a receipt that does not prove the sealed head is
``ReceiptMismatch``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractCustomError,
    ContractLogicError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)
from web3.providers import HTTPProvider
from web3.types import RPCEndpoint

from anchoring.classify import classify_send_error
from anchoring.errors import ChainMismatch, ChainUnavailable, ReceiptMismatch, TransactionRejected
from contracts import anchor_artifact

#: Seconds one JSON-RPC request may take. NOTE: the provider retries nothing
#: (``exception_retry_configuration=None``): web3's default retries include
#: ``eth_sendRawTransaction`` and turned a 2 s timeout into 12 s here (THREATS 31); the worker
#: retries with its own bounded back-off instead.
RPC_TIMEOUT_SECONDS = 10.0

T = TypeVar("T")


@dataclass(frozen=True)
class SignedAnchor:
    """An anchor transaction signed and ready to send (persisted before it is broadcast)."""

    raw: bytes
    tx_hash: bytes
    nonce: int
    size: int
    root: bytes
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


@dataclass(frozen=True)
class AnchorReceipt:
    """A mined anchor, as its receipt proves it."""

    tx_hash: bytes
    block_number: int
    block_hash: bytes
    size: int
    root: bytes
    previous_size: int


class Chain:
    """The anchor contract at ``contract_address`` on the chain behind ``w3``."""

    def __init__(self, w3: Web3, contract_address: str) -> None:
        artifact = anchor_artifact()
        self.w3 = w3
        self.address = Web3.to_checksum_address(contract_address)
        self.contract = w3.eth.contract(address=self.address, abi=artifact["abi"])
        self._deployed_code = HexBytes(artifact["deployedBytecode"])
        self._anchored_topic = HexBytes(Web3.keccak(text="Anchored(uint64,bytes32,uint64)"))

    @classmethod
    def connect(
        cls, rpc_url: str, contract_address: str, *, timeout: float = RPC_TIMEOUT_SECONDS
    ) -> Chain:
        provider = HTTPProvider(
            rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
        )
        return cls(Web3(provider), contract_address)

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        """Run one chain operation, turning transport failures into ``ChainUnavailable``."""
        try:
            return operation()
        except (
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidURL,
        ) as exc:
            # A mistyped RPC URL (``localhost:8545``): say so, never a traceback.
            raise ChainUnavailable(
                f"{what}: the RPC URL is not an http(s) URL a node can be reached at"
            ) from exc
        except (requests.RequestException, TimeExhausted, OSError) as exc:
            raise ChainUnavailable(
                f"{what}: the node did not answer ({type(exc).__name__})"
            ) from exc

    # -- the chain and the contract ---------------------------------------------------------

    def chain_id(self) -> int:
        return int(self._call("eth_chainId", lambda: self.w3.eth.chain_id))

    def check(self, expected_chain_id: int) -> None:
        """Refuse a node on another chain, or an address that does not hold our contract."""
        chain_id = self.chain_id()
        if chain_id != expected_chain_id:
            raise ChainMismatch(f"the node serves chain {chain_id}, not {expected_chain_id}")
        code = self._call("eth_getCode", lambda: self.w3.eth.get_code(self.address))
        if HexBytes(code) != self._deployed_code:
            raise ChainMismatch(
                f"{self.address} on chain {chain_id} does not hold the TracemarkAnchor contract"
            )

    def has_contract(self) -> bool:
        """Whether any code lives at the configured address."""
        code = self._call("eth_getCode", lambda: self.w3.eth.get_code(self.address))
        return len(code) > 0

    def deploy(self, account: LocalAccount, *, nonce: int | None = None) -> str:
        """Deploy the contract from ``account``; returns its address once mined."""
        artifact = anchor_artifact()
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        tx = factory.constructor().build_transaction(
            {
                "from": account.address,
                "nonce": self.nonce(account.address) if nonce is None else nonce,
            }
        )
        signed = account.sign_transaction(tx)
        self.send_raw(bytes(signed.raw_transaction))
        receipt = self._call(
            "deploy", lambda: self.w3.eth.wait_for_transaction_receipt(signed.hash, timeout=60)
        )
        if receipt["status"] != 1:
            raise ReceiptMismatch("the deployment transaction reverted")
        return str(receipt["contractAddress"])

    def last_anchored(self) -> tuple[int, bytes]:
        """The contract's latest head (size, root); (0, empty) before the first anchor."""
        size = int(self._call("lastSize", lambda: self.contract.functions.lastSize().call()))
        root = self.root_at(size) if size else b""
        return size, root or b""

    def confirmed_root(self, size: int, confirmations: int) -> bytes | None:
        """The root the contract holds for ``size`` as of ``confirmations`` blocks ago, or
        None (THREATS 8: a verifier takes a root only from the configured contract, on the
        checked chain, at a block at least the confirmation depth deep, never from a request)."""
        block = self.block_number() - confirmations + 1
        return self.root_at_block(size, block)

    def root_at_block(self, size: int, block: int) -> bytes | None:
        """The root the contract held for ``size`` as of ``block`` (None before the block 0,
        before the contract existed, or when it held none then)."""
        if block < 0:
            return None
        try:
            root = bytes(
                self._call(
                    "rootAt",
                    lambda: self.contract.functions.rootAt(size).call(block_identifier=block),
                )
            )
        except BadFunctionCallOutput:
            return None  # at that depth the contract did not exist yet
        return None if root == bytes(32) else root

    def finalized_block(self) -> int:
        """The chain's ``finalized`` block (where the network has a meaningful one)."""
        block = self._call("eth_getBlockByNumber", lambda: self.w3.eth.get_block("finalized"))
        return int(block["number"])

    def root_at(self, size: int) -> bytes | None:
        root = bytes(self._call("rootAt", lambda: self.contract.functions.rootAt(size).call()))
        return None if root == bytes(32) else root

    # -- sending ------------------------------------------------------------------------------

    def nonce(self, address: str, block: str = "pending") -> int:
        return int(
            self._call(
                "eth_getTransactionCount",
                lambda: self.w3.eth.get_transaction_count(Web3.to_checksum_address(address), block),  # type: ignore[arg-type]
            )
        )

    def block_number(self) -> int:
        return int(self._call("eth_blockNumber", lambda: self.w3.eth.block_number))

    def base_fee(self) -> int:
        block = self._call("eth_getBlockByNumber", lambda: self.w3.eth.get_block("latest"))
        return int(block.get("baseFeePerGas", 0))

    def simulate_anchor(self, sender: str, size: int, root: bytes, proof: Sequence[bytes]) -> None:
        """``eth_call`` the anchor first (THREATS 28): a head the contract would refuse is
        reported with the contract's own error, and no transaction or nonce is spent."""
        call = self.contract.functions.anchor(size, root, list(proof))
        try:
            self._call("eth_call", lambda: call.call({"from": sender}))
        except (ContractCustomError, ContractLogicError) as exc:
            raise TransactionRejected(
                f"the contract refuses head {size}: {self.error_name(exc)}", "fatal"
            ) from exc

    def sign_anchor(
        self,
        account: LocalAccount,
        *,
        size: int,
        root: bytes,
        proof: Sequence[bytes],
        nonce: int,
        max_fee_per_gas: int,
        max_priority_fee_per_gas: int,
        gas: int,
    ) -> SignedAnchor:
        """Sign (but do not send) an EIP-1559 anchor transaction at a chosen nonce."""
        data = self.contract.encode_abi("anchor", args=[size, root, list(proof)])
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id(),
            "nonce": nonce,
            "to": self.address,
            "value": 0,
            "data": data,
            "gas": gas,
            "maxFeePerGas": max_fee_per_gas,
            "maxPriorityFeePerGas": max_priority_fee_per_gas,
        }
        signed = account.sign_transaction(tx)
        return SignedAnchor(
            raw=bytes(signed.raw_transaction),
            tx_hash=bytes(signed.hash),
            nonce=nonce,
            size=size,
            root=root,
            max_fee_per_gas=max_fee_per_gas,
            max_priority_fee_per_gas=max_priority_fee_per_gas,
        )

    def send_raw(self, raw: bytes) -> bytes:
        """Broadcast a signed transaction; a refusal is ``TransactionRejected`` with its verdict."""
        try:
            tx_hash = self._call(
                "eth_sendRawTransaction", lambda: self.w3.eth.send_raw_transaction(raw)
            )
        except (Web3RPCError, ValueError) as exc:
            message = _rpc_message(exc)
            raise TransactionRejected(
                f"the node refused the transaction: {message}", classify_send_error(message)
            ) from exc
        return bytes(tx_hash)

    # -- receipts -----------------------------------------------------------------------------

    def receipt(self, tx_hash: bytes) -> dict[str, Any] | None:
        """The receipt, or None while the transaction is not mined."""
        try:
            return dict(
                self._call(
                    "eth_getTransactionReceipt",
                    lambda: self.w3.eth.get_transaction_receipt(HexBytes(tx_hash)),
                )
            )
        except TransactionNotFound:
            return None

    def transaction_known(self, tx_hash: bytes) -> bool:
        """Whether the node knows the transaction at all (False: dropped, THREATS 25)."""
        try:
            self._call(
                "eth_getTransactionByHash",
                lambda: self.w3.eth.get_transaction(HexBytes(tx_hash)),
            )
        except TransactionNotFound:
            return False
        return True

    def verify_receipt(self, receipt: dict[str, Any], sealed: SignedAnchor) -> AnchorReceipt:
        """Accept a receipt only if it proves the head we sealed (THREATS 29, 45): our
        transaction, to our contract, succeeded, with our contract's Anchored event carrying
        the sealed size and root."""
        # 1. Our transaction, to our contract.
        if bytes(receipt.get("transactionHash", b"")) != sealed.tx_hash:
            raise ReceiptMismatch("the receipt is for another transaction")
        to = receipt.get("to")
        if to is None or Web3.to_checksum_address(to) != self.address:
            raise ReceiptMismatch(f"the receipt's transaction went to {to}, not {self.address}")
        # 2. It succeeded: a status-0 receipt is never an anchor.
        if receipt.get("status") != 1:
            raise ReceiptMismatch(
                f"the anchor transaction reverted (status {receipt.get('status')})"
            )
        # 3. Our contract's event, with the sealed head.
        events = [
            log
            for log in receipt.get("logs", [])
            if Web3.to_checksum_address(log["address"]) == self.address
            and log["topics"]
            and HexBytes(log["topics"][0]) == self._anchored_topic
        ]
        if len(events) != 1:
            raise ReceiptMismatch(
                f"the receipt holds {len(events)} Anchored events of {self.address}"
            )
        event = self.contract.events.Anchored().process_log(events[0])
        size, root = int(event.args.size), bytes(event.args.root)
        if (size, root) != (sealed.size, sealed.root):
            raise ReceiptMismatch(
                f"the chain anchored size {size} root 0x{root.hex()}, not the sealed "
                f"size {sealed.size} root 0x{sealed.root.hex()}"
            )
        return AnchorReceipt(
            tx_hash=sealed.tx_hash,
            block_number=int(receipt["blockNumber"]),
            block_hash=bytes(receipt["blockHash"]),
            size=size,
            root=root,
            previous_size=int(event.args.previousSize),
        )

    def anchor_block(self, tx_hash: bytes, size: int, root: bytes) -> int | None:
        """The block of ``tx_hash`` if its receipt proves it anchored (``size``, ``root``)
        here; None while not mined; ``ReceiptMismatch`` otherwise (``verify_receipt``). The
        read a verifier makes, as ``anchoring.reader.ChainReader`` makes it without web3."""
        receipt = self.receipt(tx_hash)
        if receipt is None:
            return None
        expected = SignedAnchor(b"", tx_hash, 0, size, root, 0, 0)
        return self.verify_receipt(receipt, expected).block_number

    def error_name(self, exc: BaseException) -> str:
        """The contract's custom error in a revert, by its selector (or the raw message)."""
        data = getattr(exc, "data", None)
        text = (data if isinstance(data, str) else str(exc)).lower()
        for item in anchor_artifact()["abi"]:
            if item.get("type") == "error":
                inputs = ",".join(i["type"] for i in item.get("inputs", []))
                selector = Web3.keccak(text=f"{item['name']}({inputs})")[:4].hex()
                if selector.removeprefix("0x") in text:
                    return str(item["name"])
        return text

    def rpc(self, method: str, *params: Any) -> Any:
        """A raw JSON-RPC call (test hooks such as anvil_mine)."""
        response = self._call(
            method, lambda: self.w3.provider.make_request(RPCEndpoint(method), list(params))
        )
        error = response.get("error")
        if error is not None:
            # Not a silent None: the node refused the call (an unknown method, bad params).
            message = error.get("message", "") if isinstance(error, dict) else str(error)
            raise ChainUnavailable(f"{method}: the node refused the call: {message}")
        return response.get("result")


def _rpc_message(exc: BaseException) -> str:
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, dict) and "message" in arg:
            return str(arg["message"])
    rpc_response = getattr(exc, "rpc_response", None)
    if isinstance(rpc_response, dict) and isinstance(rpc_response.get("error"), dict):
        return str(rpc_response["error"].get("message", ""))
    return str(exc)
