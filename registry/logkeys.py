"""The log's note keys: the Ed25519 and ML-DSA-44 keys that sign its checkpoints.

They live in the data dir beside the registry's EIP-712 key (``registry.keyring``), as 32-byte
seeds in 0600 files created on first use. They are a separate set from the EIP-712 registry
keys (which sign heads, receipts and attestations and rotate by logged hand-overs): the trust
root names both, and the checkpoint is signed over the same size and root as the head.

Ed25519 is the signature the C2SP ecosystem requires of a public log (tlog-tiles); the
ML-DSA-44 line is the post-quantum one tlog-checkpoint recommends, in the timestamped
``subtree/v1`` cosignature format with the origin as its name.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from registry.cosignature import MLDSA44Cosigner
from registry.keyring import parse_key_text, read_secret, write_secret
from registry.note import Ed25519Signer, NoteSigner, NoteVerifier, vkey

ED25519_KEY_FILE = "checkpoint-ed25519.key"
MLDSA44_KEY_FILE = "checkpoint-mldsa44.key"
SEED_SIZE = 32


def _load_or_create_seed(path: Path) -> bytes:
    if not path.exists():
        write_secret(path, secrets.token_bytes(SEED_SIZE).hex().encode() + b"\n")
    return parse_key_text(read_secret(path).decode(), size=SEED_SIZE, what=str(path))


@dataclass(frozen=True)
class LogNoteKeys:
    """The log's origin and the keys that sign its checkpoints: Ed25519 first, then ML-DSA-44."""

    origin: str
    ed25519: Ed25519Signer
    mldsa44: MLDSA44Cosigner

    @property
    def signers(self) -> tuple[NoteSigner, ...]:
        return (self.ed25519, self.mldsa44)

    def verifiers(self) -> tuple[NoteVerifier, ...]:
        return (self.ed25519.verifier(), self.mldsa44.verifier())

    def vkeys(self) -> tuple[str, ...]:
        return tuple(vkey(verifier) for verifier in self.verifiers())

    @classmethod
    def from_seeds(cls, origin: str, ed25519_seed: bytes, mldsa44_seed: bytes) -> LogNoteKeys:
        return cls(
            origin=origin,
            ed25519=Ed25519Signer(
                origin, ed25519.Ed25519PrivateKey.from_private_bytes(ed25519_seed)
            ),
            mldsa44=MLDSA44Cosigner(origin, mldsa.MLDSA44PrivateKey.from_seed_bytes(mldsa44_seed)),
        )


def load_log_note_keys(data_dir: Path, origin: str) -> LogNoteKeys:
    """The log's note keys from ``data_dir``, created (0600) on first use."""
    return LogNoteKeys.from_seeds(
        origin,
        _load_or_create_seed(data_dir / ED25519_KEY_FILE),
        _load_or_create_seed(data_dir / MLDSA44_KEY_FILE),
    )


def default_log_origin(public_url: str) -> str:
    """The origin a log names itself by when none is configured: its URL without the scheme,
    and the static API's prefix (tlog-tiles: "the scheme-less URL prefix of the log")."""
    bare = public_url.split("://", 1)[-1].rstrip("/")
    return f"{bare}/tlog"


__all__ = [
    "ED25519_KEY_FILE",
    "MLDSA44_KEY_FILE",
    "LogNoteKeys",
    "default_log_origin",
    "load_log_note_keys",
]
