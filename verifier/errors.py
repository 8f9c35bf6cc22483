"""The verifier's one error family: why a check did not prove what it was asked to.

Every offline check (bundles, exports, receipts) raises one of these instead of returning a
failure as data a caller could forget to look at (STYLE 14). Each carries the ``step`` that
failed, so a report can say where, and a one-line ``detail`` that never holds a secret.

- ``BundleInvalid``: the evidence contradicts itself, the trust root or the chain (exit 11);
- ``UntrustedRegistry``: no trust root the caller pinned names the registry (exit 15);
- ``NotYetEvidence``: everything checked holds, but the chain does not make it evidence yet:
  ``NotAnchoredYet`` (exit 12) or ``NotFinalYet`` (exit 16). Each carries the report of
  what *was* proved, because "wait and check again" is an answer, not a failure.
"""

from __future__ import annotations

from typing import Any

from registry.errors import TracemarkError


class VerificationError(TracemarkError):
    """A registry's signed statement (a bundle, an export, a receipt) does not verify."""

    code = "verification-failed"
    diagnostics = "Do not trust the statement: the detail says which check failed."

    def __init__(self, detail: str, *, step: str = "check") -> None:
        super().__init__(detail)
        self.step = step


class BundleInvalid(VerificationError):
    """The evidence does not prove what it claims; ``step`` names the check that failed."""

    code = "bundle-invalid"
    diagnostics = "Do not trust the good's evidence: the step named failed."

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(detail, step=step)


class UntrustedRegistry(VerificationError):
    """No pinned trust root names the registry (chain and contract) the evidence is from:
    pin its trust root with ``tracemark trust add`` after comparing its fingerprint out of
    band, or pass ``--trust FILE`` for one run."""

    code = "untrusted-registry"
    diagnostics = "Pin the registry's trust root (tracemark trust add) or pass --trust FILE."

    def __init__(self, detail: str) -> None:
        super().__init__(detail, step="trust")


class NotYetEvidence(VerificationError):
    """Everything checked holds, but the chain does not make it evidence yet; ``report`` is
    what was proved so far. Check again later."""

    code = "not-yet-evidence"
    diagnostics = "Check again later: what was checked holds, the chain has not settled it."

    def __init__(self, detail: str, report: Any) -> None:
        super().__init__(detail, step="chain")
        self.report = report


class NotAnchoredYet(NotYetEvidence):
    """The anchor contract holds no root for the head yet."""

    code = "not-anchored"
    diagnostics = "Check again after the next anchor (minutes, as the registry batches)."


class NotFinalYet(NotYetEvidence):
    """The contract holds the head's root, but not yet at the depth the trust root asks: a
    reorganisation could still remove it."""

    code = "not-final"
    diagnostics = "Check again once the anchor is as deep as the trust root asks."


__all__ = [
    "BundleInvalid",
    "NotAnchoredYet",
    "NotFinalYet",
    "NotYetEvidence",
    "UntrustedRegistry",
    "VerificationError",
]
