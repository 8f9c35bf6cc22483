"""What a node's refusal of ``eth_sendRawTransaction`` means, from its wording (THREATS 24).

Nodes word the same condition differently; a table maps each wording to one verdict, and
the worker acts on the verdict only. Wordings are those of geth (and its forks), anvil,
Besu, Erigon and Nethermind, as their transaction pools report them (Chainlink's
``core/chains/evm/client/errors.go`` keeps the same kind of table).
"""

from __future__ import annotations

import re
from enum import StrEnum


class SendVerdict(StrEnum):
    """What to do after a node refused a raw transaction."""

    #: The node has this very transaction already: look up the receipt, never sign again.
    ALREADY_KNOWN = "already-known"
    #: The nonce is used: our transaction was mined (look up the receipt), or a foreign one
    #: took the nonce (no receipt for our hash: alarm, re-anchor with a fresh nonce).
    NONCE_USED = "nonce-used"
    #: Fees too low for the pool or for replacing a pending transaction: bump, up to the cap.
    UNDERPRICED = "underpriced"
    #: The anchoring key cannot pay: pause until funded, nothing lost (THREATS 33).
    INSUFFICIENT_FUNDS = "insufficient-funds"
    #: A nonce ahead of the account's: an earlier transaction is missing; fill the gap first.
    NONCE_GAP = "nonce-gap"
    #: Anything else: the transaction itself is wrong; stop and say so.
    FATAL = "fatal"


_RULES: tuple[tuple[SendVerdict, str], ...] = (
    # geth, erigon, infura: "already known"; anvil: "transaction already imported";
    # Besu: "Known transaction"; Nethermind: "AlreadyKnown".
    (SendVerdict.ALREADY_KNOWN, r"already known|already imported|known transaction|alreadyknown"),
    (SendVerdict.ALREADY_KNOWN, r"existing tx with same hash|tx already exist"),
    # geth/erigon/anvil "nonce too low"; Besu "Nonce too low"; Nethermind "OldNonce".
    (
        SendVerdict.NONCE_USED,
        r"nonce too low|nonce is too low|oldnonce|nonce has already been used",
    ),
    # geth "replacement transaction underpriced", "transaction underpriced",
    # "max fee per gas less than block base fee"; erigon "fee cap less than block base fee";
    # Besu "Replacement transaction underpriced", "Gas price below current base fee";
    # Nethermind "FeeTooLow", "FeeTooLowToCompete", "ReplacementNotAllowed".
    (SendVerdict.UNDERPRICED, r"underpriced|fee too low|feetoolow|replacementnotallowed"),
    (SendVerdict.UNDERPRICED, r"less than block base fee|below current base fee"),
    (
        SendVerdict.UNDERPRICED,
        r"max fee per gas less than|gas price below|price supplied is too low",
    ),
    # geth/anvil "insufficient funds for gas * price + value"; Besu "Upfront cost exceeds
    # account balance"; Nethermind "InsufficientFunds".
    (SendVerdict.INSUFFICIENT_FUNDS, r"insufficient funds|insufficientfunds"),
    (SendVerdict.INSUFFICIENT_FUNDS, r"upfront cost exceeds account balance|insufficient balance"),
    # geth/erigon "nonce too high"; Nethermind "NonceGap".
    (SendVerdict.NONCE_GAP, r"nonce too high|noncegap"),
)
_COMPILED = tuple((verdict, re.compile(pattern, re.IGNORECASE)) for verdict, pattern in _RULES)


def classify_send_error(message: str) -> SendVerdict:
    """The verdict for a node's error message (first matching rule; FATAL if none)."""
    for verdict, pattern in _COMPILED:
        if pattern.search(message):
            return verdict
    return SendVerdict.FATAL
