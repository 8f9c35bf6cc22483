"""The root exception of tracemark and the registry's family of errors.

Every error carries a stable machine-readable ``code`` (later mapped to a problem+json ``type``
by ``api/errors.py`` only) and a ``detail`` that says what to fix. A detail never contains a
code, a code key, a private key or an API key: callers pass descriptions, never secrets.
"""

from __future__ import annotations


class TracemarkError(Exception):
    """Root of every error tracemark raises on purpose."""

    code: str = "tracemark-error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(TracemarkError):
    """The caller sent something malformed; fix the input and try again."""

    code = "invalid-input"


class MalformedCode(InvalidInput):
    """A code (PIN, activation key) is empty, too long or contains forbidden characters."""

    code = "malformed-code"


class InvalidFingerprint(InvalidInput):
    """A fingerprint is not 32 bytes of 0x-hex."""

    code = "invalid-fingerprint"


class InvalidRoyaltyPolicy(InvalidInput):
    """A royalty policy breaks a rule (recipients, basis points, sum <= 10,000)."""

    code = "invalid-royalty-policy"


class InvalidProof(TracemarkError):
    """A Merkle inclusion or consistency proof does not verify."""

    code = "invalid-proof"


class ProofOutOfRange(InvalidInput):
    """A proof was requested for an index or tree size the log does not have."""

    code = "proof-out-of-range"


class SignatureError(InvalidInput):
    """A signature is malformed, malleable, expired, replayed or from the wrong signer."""

    code = "bad-signature"


class MalformedSignature(SignatureError):
    """Not 65 bytes r||s||v with v in {27, 28} and low s."""

    code = "malformed-signature"


class WrongSigner(SignatureError):
    """The recovered address is not the claimed signer (or is the zero address)."""

    code = "wrong-signer"


class ExpiredDeadline(SignatureError):
    """The signed deadline has passed."""

    code = "expired-deadline"


class NonceReused(SignatureError):
    """The (signer, nonce) pair was already used."""

    code = "nonce-reused"


class NotFound(TracemarkError):
    """The thing asked for does not exist (or the caller may not know it exists)."""

    code = "not-found"


class UnknownProduct(NotFound):
    """No product with that (creator, slug)."""

    code = "unknown-product"


class Conflict(TracemarkError):
    """The request contradicts the registry's state (already revoked, other owner, ...)."""

    code = "conflict"


class StorageBusy(TracemarkError):
    """The database is locked by another writer; retry shortly (maps to 503 + Retry-After)."""

    code = "storage-busy"


class ConfigurationError(TracemarkError):
    """Settings, keys or the data directory are missing or inconsistent."""

    code = "configuration-error"


class LogCorrupt(TracemarkError):
    """The stored log contradicts itself; restore from a backup and investigate."""

    # NOTE: raised by ``registry.audit`` (which re-exports it); defined here so the CLI can map
    # it to exit 9 without importing the database layer.
    code = "log-corrupt"
