"""THREATS 24: each node's wording of a refused raw transaction maps to the right verdict."""

from __future__ import annotations

import pytest

from anchoring.classify import SendVerdict, classify_send_error

KNOWN = SendVerdict.ALREADY_KNOWN
USED = SendVerdict.NONCE_USED
BUMP = SendVerdict.UNDERPRICED
FUNDS = SendVerdict.INSUFFICIENT_FUNDS
GAP = SendVerdict.NONCE_GAP
FATAL = SendVerdict.FATAL

WORDINGS = [
    # anvil
    ("anvil", "transaction already imported", KNOWN),
    ("anvil", "nonce too low", USED),
    ("anvil", "replacement transaction underpriced", BUMP),
    ("anvil", "max fee per gas less than block base fee", BUMP),
    ("anvil", "Insufficient funds for gas * price + value", FUNDS),
    ("anvil", "execution reverted: custom error 0x90e98b0e", FATAL),
    # geth
    ("geth", "already known", KNOWN),
    ("geth", "nonce too low: address 0xabc, tx: 3 state: 5", USED),
    ("geth", "nonce too high", GAP),
    ("geth", "replacement transaction underpriced", BUMP),
    ("geth", "transaction underpriced: tip needed 1, tip permitted 0", BUMP),
    ("geth", "max fee per gas less than block base fee: address 0xabc, maxFeePerGas: 1", BUMP),
    ("geth", "insufficient funds for gas * price + value: balance 0, tx cost 1", FUNDS),
    ("geth", "intrinsic gas too low", FATAL),
    ("geth", "exceeds block gas limit", FATAL),
    ("geth", "invalid sender", FATAL),
    # erigon
    ("erigon", "ALREADY_EXISTS: already known", KNOWN),
    ("erigon", "INTERNAL_ERROR: existing tx with same hash", KNOWN),
    ("erigon", "nonce too low", USED),
    ("erigon", "fee cap less than block base fee", BUMP),
    ("erigon", "insufficient funds", FUNDS),
    # Besu
    ("besu", "Known transaction", KNOWN),
    ("besu", "Nonce too low", USED),
    ("besu", "Replacement transaction underpriced", BUMP),
    ("besu", "Gas price below current base fee", BUMP),
    ("besu", "Upfront cost exceeds account balance", FUNDS),
    ("besu", "Intrinsic gas exceeds gas limit", FATAL),
    # Nethermind
    ("nethermind", "AlreadyKnown", KNOWN),
    ("nethermind", "OldNonce, Current nonce: 6, nonce of rejected tx: 5", USED),
    ("nethermind", "NonceGap, Future nonce. Expected nonce: 5", GAP),
    ("nethermind", "FeeTooLowToCompete", BUMP),
    ("nethermind", "FeeTooLow, MaxFeePerGas too low", BUMP),
    ("nethermind", "InsufficientFunds, Account balance: 0, cumulative cost: 1", FUNDS),
    ("nethermind", "Invalid, GasLimitExceeded", FATAL),
    # OpenEthereum / Parity
    ("openethereum", "Transaction gas price supplied is too low", BUMP),
    ("openethereum", "Transaction nonce is too low. Try incrementing the nonce.", USED),
]


@pytest.mark.parametrize(("node", "message", "verdict"), WORDINGS, ids=lambda v: str(v)[:40])
def test_each_nodes_wording_maps_to_its_verdict(
    node: str, message: str, verdict: SendVerdict
) -> None:
    assert classify_send_error(message) is verdict, f"{node}: {message!r}"
