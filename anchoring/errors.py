"""The anchoring family of errors; the chain adapter wraps every third-party error in one."""

from __future__ import annotations

from registry.errors import ConfigurationError, TracemarkError


class AnchoringError(TracemarkError):
    """Root of what can go wrong between the registry and the chain."""

    code = "anchoring-error"
    diagnostics = "Check the chain node and the anchoring worker's log."


class ChainUnavailable(AnchoringError):
    """The node did not answer in time or could not be reached: back off and retry, change
    nothing (THREATS 30, 31)."""

    code = "chain-unavailable"
    http_status = 503
    diagnostics = "Retry later: the chain node did not answer, and nothing was changed."
    exit_code = 10


class ChainMismatch(ConfigurationError, AnchoringError):
    """The node serves another chain id, or the configured address holds other code: refuse
    to start or anchor (THREATS 32)."""

    code = "chain-mismatch"
    # NOTE: a ConfigurationError (500) too; to a caller it is the chain not being usable.
    http_status = 503
    diagnostics = "Point the registry at the chain id and contract its trust root names."


class TransactionRejected(AnchoringError):
    """The node refused a raw transaction; ``verdict`` says what to do about it."""

    code = "transaction-rejected"

    def __init__(self, detail: str, verdict: str) -> None:
        super().__init__(detail)
        self.verdict = verdict


class ReceiptMismatch(AnchoringError):
    """A receipt does not prove the head we sealed: wrong transaction, contract, event, size
    or root, or status 0. Never recorded as an anchor (THREATS 29, 45)."""

    code = "receipt-mismatch"
    diagnostics = "Investigate the transaction: it was not recorded as an anchor."
