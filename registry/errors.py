"""The root exception of tracemark and the registry's family of errors.

Every error carries a stable machine-readable ``code`` (later mapped to a problem+json ``type``
by ``api/errors.py`` only) and a ``detail`` that says what to fix. A detail never contains a
code, a code key, a private key or an API key: callers pass descriptions, never secrets.

Each class also says, as class attributes read by ``api/errors.py`` and nothing else, how the
API answers it (``http_status``) and, as sigstore-python's errors do, what the user does next
(``diagnostics``, one line). A subclass inherits both unless it says otherwise, so an error
is answered as the nearest class that names a status: no ordered list to keep in step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class TracemarkError(Exception):
    """Root of every error tracemark raises on purpose."""

    code: str = "tracemark-error"
    #: The status of the problem+json answer. A 5xx other than 503 is answered as a generic
    #: server error: the detail is logged, never sent.
    http_status: int = 500
    #: What the user does next, in one line.
    diagnostics: str = "Read the detail; if it names nothing you can fix, report it with it."
    #: The ``tracemark`` command's exit status (README, "Exit codes"); 1 is "a bug".
    exit_code: int = 1

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(TracemarkError):
    """The caller sent something malformed; fix the input and try again."""

    code = "invalid-input"
    http_status = 400
    diagnostics = "Fix the input the detail names and send it again."
    exit_code = 3


class MalformedCode(InvalidInput):
    """A code (PIN, activation key) is empty, too long or contains forbidden characters."""

    code = "malformed-code"
    diagnostics = "Send the code as printed: non-empty, printable, within the length limit."


class InvalidFingerprint(InvalidInput):
    """A fingerprint is not 32 bytes of 0x-hex."""

    code = "invalid-fingerprint"
    diagnostics = "Send the fingerprint as 0x and 64 hex digits (tracemark fingerprint)."


class InvalidRoyaltyPolicy(InvalidInput):
    """A royalty policy breaks a rule (recipients, basis points, sum <= 10,000)."""

    code = "invalid-royalty-policy"
    diagnostics = "Name each recipient once, with basis points summing to at most 10,000."


class InvalidProof(TracemarkError):
    """A Merkle inclusion or consistency proof does not verify."""

    code = "invalid-proof"
    http_status = 400
    diagnostics = "Do not trust the statement: fetch the proof again from the registry."


class ProofOutOfRange(InvalidInput):
    """A proof was requested for an index or tree size the log does not have."""

    code = "proof-out-of-range"
    diagnostics = "Ask for an index and tree size within the current signed tree head."


class SignatureError(InvalidInput):
    """A signature is malformed, malleable, expired, replayed or from the wrong signer."""

    code = "bad-signature"
    diagnostics = "Sign the message again with the right key before its deadline."
    exit_code = 6


class MalformedSignature(SignatureError):
    """Not 65 bytes r||s||v with v in {27, 28} and low s."""

    code = "malformed-signature"


class WrongSigner(SignatureError):
    """The recovered address is not the claimed signer (or is the zero address)."""

    code = "wrong-signer"


class ExpiredDeadline(SignatureError):
    """The signed deadline has passed."""

    code = "expired-deadline"
    diagnostics = "Sign the message again with a later deadline."


class NonceReused(SignatureError):
    """The (signer, nonce) pair was already used."""

    code = "nonce-reused"
    http_status = 409
    diagnostics = "Sign the message again with a fresh nonce."


class NoPlatformKey(SignatureError):
    """A platform signed a statement but has no attestation key enrolled to check it by."""

    code = "no-platform-key"
    diagnostics = "Have the operator enroll your attestation key: tracemark platform-keys enroll."


class RotationUnconsented(SignatureError):
    """A platform replaced its attestation key without the consent of the key in force."""

    code = "rotation-unconsented"
    # The operator may still enroll a key for a platform that lost its own (the log says so).
    diagnostics = "Have the key in force sign PlatformKeyRotation, or ask the operator to enroll."


class NotFound(TracemarkError):
    """The thing asked for does not exist (or the caller may not know it exists)."""

    code = "not-found"
    http_status = 404
    diagnostics = "Check the identifier (good type, fingerprint, id) and your credentials."
    exit_code = 4


class UnknownProduct(NotFound):
    """No product with that (creator, slug)."""

    code = "unknown-product"


class Conflict(TracemarkError):
    """The request contradicts the registry's state (already revoked, other owner, ...)."""

    code = "conflict"
    http_status = 409
    diagnostics = "Read the current state (the detail says what it is) before trying again."
    exit_code = 5


class StorageBusy(TracemarkError):
    """The database is locked by another writer; retry shortly (maps to 503 + Retry-After)."""

    code = "storage-busy"
    http_status = 503
    diagnostics = "Retry in a moment: nothing was changed."
    exit_code = 7


class LeaseLost(StorageBusy):
    """This process no longer holds its singleton role's lease (``registry.lease``): the
    work it was about to commit is not committed; the holder now does it.

    A kind of busy (exit 7, 503): nothing was changed and another process has the work.
    Loops that handle both catch this one first (``registry/sequencer.py``)."""

    code = "lease-lost"
    diagnostics = "Nothing to do: another process holds the role and does the work."


class ConfigurationError(TracemarkError):
    """Settings, keys or the data directory are missing or inconsistent."""

    code = "configuration-error"
    diagnostics = "Fix the settings, keys or data directory the detail names, then restart."
    exit_code = 8


class IdempotencyKeyReused(InvalidInput):
    """The Idempotency-Key was already used for a different request (422)."""

    code = "idempotency-key-reused"
    http_status = 422
    diagnostics = "Use a new Idempotency-Key for a new request; resend a retry unchanged."


class LogCorrupt(TracemarkError):
    """The stored log contradicts itself; restore from a backup and investigate."""

    # NOTE: raised by ``registry.audit`` (which re-exports it); defined here so the CLI can map
    # it to exit 9 without importing the database layer.
    code = "log-corrupt"
    diagnostics = "Stop writing, restore the database from a backup, and investigate."
    exit_code = 9


def describe_validation(error: ValidationError, *, most: int | None = None) -> str:
    """Pydantic's errors as "where: what", joined by "; ", never echoing the input (it may be
    untrusted, or a secret); ``most`` keeps only the first few."""
    problems = []
    for item in error.errors(include_url=False, include_input=False)[:most]:
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]
        ).lstrip(".")
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)
