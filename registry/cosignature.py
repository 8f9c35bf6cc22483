"""Cosignatures (C2SP tlog-cosignature): a cosigner's timestamped statement on a checkpoint.

Two types, each a signer and a verifier of ``registry.note``'s protocols, whose signature is
``u64 timestamp || signature`` (``timestamped_signature``):

- ``0x04`` Ed25519 ``cosignature/v1``: over ``cosignature/v1``, ``time N`` and the checkpoint
  text; a witness's classic line;
- ``0x06`` ML-DSA-44 ``subtree/v1``: over (label, cosigner name, time, origin, 0, size,
  root), extension lines not signed; post-quantum, and it names its cosigner. The log signs
  its own checkpoints with this type too (tlog-checkpoint recommends it), its origin as the
  name.

NOTE: pure (cryptography only): the witness, the registry's witnessing and the verifier use it.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from registry.note import (
    ED25519_PUBLIC_SIZE,
    ED25519_SIGNATURE_SIZE,
    SIG_COSIGNATURE_V1,
    SIG_MLDSA44_SUBTREE,
    NoteError,
    NoteKey,
    NoteSignature,
    ed25519_valid,
)

if TYPE_CHECKING:
    from registry.checkpoint import Checkpoint

MLDSA44_PUBLIC_SIZE = 1312
MLDSA44_SIGNATURE_SIZE = 2420

_MAX_TIMESTAMP = (1 << 63) - 1
_SUBTREE_LABEL = b"subtree/v1\n\x00"


def cosignature_timestamp(signature: bytes) -> int:
    """The POSIX time a timestamped cosignature (types 0x04, 0x06) was made at."""
    if len(signature) < 8:
        raise NoteError("a cosignature must start with an 8-byte timestamp")
    return int(struct.unpack(">Q", signature[:8])[0])


def cosignature_v1_message(text: str, timestamp: int) -> bytes:
    """What an Ed25519 ``cosignature/v1`` signs: a header, the time, the checkpoint text."""
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def subtree_v1_message(cosigner: str, timestamp: int, checkpoint: Checkpoint) -> bytes:
    """What an ML-DSA-44 ``subtree/v1`` cosignature signs for a whole checkpoint (start 0)."""
    name, origin = cosigner.encode(), checkpoint.origin.encode()
    if not 1 <= len(name) <= 255 or not 1 <= len(origin) <= 255:
        raise NoteError("a cosigner name and a log origin must be 1 to 255 bytes")
    return b"".join(
        (
            _SUBTREE_LABEL,
            bytes([len(name)]),
            name,
            struct.pack(">Q", timestamp),
            bytes([len(origin)]),
            origin,
            struct.pack(">QQ", 0, checkpoint.size),
            checkpoint.root,
        )
    )


def _checkpoint_of(text: str) -> Checkpoint:
    from registry.checkpoint import Checkpoint

    return Checkpoint.parse(text)


def _now() -> int:
    return int(time.time())


class _TimestampedVerifier(NoteKey):
    """A cosignature verifier: ``u64 timestamp || signature`` over a message that binds the
    time (tlog-cosignature's ``timestamped_signature``); subclasses give the message."""

    signature_size: int

    def _message(self, text: str, timestamp: int) -> bytes:
        raise NotImplementedError

    def _valid(self, signature: bytes, message: bytes) -> bool:
        raise NotImplementedError

    def verify(self, text: str, signature: bytes) -> bool:
        if len(signature) != 8 + self.signature_size:
            return False
        timestamp = cosignature_timestamp(signature)
        if timestamp > _MAX_TIMESTAMP:
            return False
        return self._valid(signature[8:], self._message(text, timestamp))


class _TimestampedSigner(NoteKey):
    """A cosigner: signs ``_message(text, now)`` and prefixes the time it used."""

    key_type: type[ed25519.Ed25519PrivateKey] | type[mldsa.MLDSA44PrivateKey]

    def __init__(
        self,
        name: str,
        private_key: ed25519.Ed25519PrivateKey | mldsa.MLDSA44PrivateKey,
        clock: Callable[[], int] = _now,
    ) -> None:
        if not isinstance(private_key, self.key_type):
            raise NoteError(f"a {type(self).__name__} signs with a {self.key_type.__name__}")
        super().__init__(name, private_key.public_key().public_bytes_raw())
        self._private = private_key
        self._clock = clock

    def _message(self, text: str, timestamp: int) -> bytes:
        raise NotImplementedError

    def sign(self, text: str) -> NoteSignature:
        timestamp = self._clock()
        signed = self._private.sign(self._message(text, timestamp))
        return NoteSignature(self.name, self.key_id, struct.pack(">Q", timestamp) + signed)


class CosignatureV1Verifier(_TimestampedVerifier):
    """A witness's timestamped Ed25519 cosignature (type 0x04) on a checkpoint."""

    sig_type = SIG_COSIGNATURE_V1
    signature_size = ED25519_SIGNATURE_SIZE

    def __init__(self, name: str, public_key: bytes) -> None:
        if len(public_key) != ED25519_PUBLIC_SIZE:
            raise NoteError("an Ed25519 public key is 32 bytes")
        super().__init__(name, public_key)
        self._key = ed25519.Ed25519PublicKey.from_public_bytes(public_key)

    def _message(self, text: str, timestamp: int) -> bytes:
        return cosignature_v1_message(text, timestamp)

    def _valid(self, signature: bytes, message: bytes) -> bool:
        return ed25519_valid(self._key, signature, message)


class CosignerV1(_TimestampedSigner):
    sig_type = SIG_COSIGNATURE_V1
    key_type = ed25519.Ed25519PrivateKey

    def _message(self, text: str, timestamp: int) -> bytes:
        _checkpoint_of(text)  # a cosignature is a statement about a checkpoint, nothing else
        return cosignature_v1_message(text, timestamp)

    def verifier(self) -> CosignatureV1Verifier:
        return CosignatureV1Verifier(self.name, self.public_key)


class MLDSA44CosignatureVerifier(_TimestampedVerifier):
    """A timestamped ML-DSA-44 ``subtree/v1`` cosignature (type 0x06) on a whole checkpoint.
    Extension lines are not signed by this type (tlog-cosignature)."""

    sig_type = SIG_MLDSA44_SUBTREE
    signature_size = MLDSA44_SIGNATURE_SIZE

    def __init__(self, name: str, public_key: bytes) -> None:
        if len(public_key) != MLDSA44_PUBLIC_SIZE:
            raise NoteError("an ML-DSA-44 public key is 1312 bytes")
        super().__init__(name, public_key)
        self._key = mldsa.MLDSA44PublicKey.from_public_bytes(public_key)

    def _message(self, text: str, timestamp: int) -> bytes:
        return subtree_v1_message(self.name, timestamp, _checkpoint_of(text))

    def _valid(self, signature: bytes, message: bytes) -> bool:
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class MLDSA44Cosigner(_TimestampedSigner):
    sig_type = SIG_MLDSA44_SUBTREE
    key_type = mldsa.MLDSA44PrivateKey

    def _message(self, text: str, timestamp: int) -> bytes:
        return subtree_v1_message(self.name, timestamp, _checkpoint_of(text))

    def verifier(self) -> MLDSA44CosignatureVerifier:
        return MLDSA44CosignatureVerifier(self.name, self.public_key)


__all__ = [
    "CosignatureV1Verifier",
    "CosignerV1",
    "MLDSA44CosignatureVerifier",
    "MLDSA44Cosigner",
    "cosignature_timestamp",
    "cosignature_v1_message",
    "subtree_v1_message",
]
