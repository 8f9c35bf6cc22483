"""Checkpoints and witnesses for the evidence tests (issue 15): the log's real note keys, real
witnesses' cosigners (Ed25519 cosignature/v1 and ML-DSA-44 subtree/v1) and a trust root
naming them with a tlog-policy text. Nothing is mocked: every line is a real signature."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from registry.checkpoint import Checkpoint
from registry.cosignature import CosignerV1, MLDSA44Cosigner
from registry.logkeys import LogNoteKeys
from registry.note import Note, NoteSigner, parse_note, sign_note, vkey
from registry.treehead import TreeHead
from verifier.trust import TrustRoot

ORIGIN = "registry.test/tlog"


def log_keys(origin: str = ORIGIN) -> LogNoteKeys:
    return LogNoteKeys.from_seeds(origin, os.urandom(32), os.urandom(32))


@dataclass
class Witnesses:
    """Three witnesses (two Ed25519, one ML-DSA-44) and the log's keys."""

    log: LogNoteKeys = field(default_factory=log_keys)
    cosigners: dict[str, NoteSigner] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.cosigners:
            self.cosigners = {
                "w1": CosignerV1("witness.test/w1", ed25519.Ed25519PrivateKey.generate()),
                "w2": CosignerV1("witness.test/w2", ed25519.Ed25519PrivateKey.generate()),
                "w3": MLDSA44Cosigner("witness.test/w3", mldsa.MLDSA44PrivateKey.generate()),
            }

    def policy(self, quorum: str = "2") -> str:
        """The tlog-policy text: the three witnesses, ``quorum`` of them (or ``none``)."""
        lines = [
            f"witness {name} {vkey(signer.verifier())}"  # type: ignore[attr-defined]
            for name, signer in self.cosigners.items()
        ]
        if quorum == "none":
            return "\n".join([*lines, "quorum none"]) + "\n"
        return "\n".join([*lines, f"group all-of-us {quorum} w1 w2 w3", "quorum all-of-us"]) + "\n"

    def transparency(self, quorum: str = "2") -> dict[str, Any]:
        return {
            "log_origin": self.log.origin,
            "log_vkeys": list(self.log.vkeys()),
            "witness_policy": self.policy(quorum),
        }

    def root(self, base: TrustRoot, quorum: str = "2") -> TrustRoot:
        """``base`` with this log's keys and policy."""
        return TrustRoot.model_validate(
            {**base.document(), "transparency": self.transparency(quorum)}
        )

    def checkpoint(self, head: TreeHead, *cosigners: str, root: bytes | None = None) -> str:
        """The head's checkpoint signed by the log, cosigned by the named witnesses."""
        text = Checkpoint(self.log.origin, head.tree_size, root or head.root).text()
        note = sign_note(text, self.log.signers)
        return cosign(note, *(self.cosigners[name] for name in cosigners))


def cosign(note: Note, *cosigners: NoteSigner) -> str:
    return note.with_signatures(*(c.sign(note.text) for c in cosigners)).to_bytes().decode()


def flip_signature_byte(checkpoint: str, line: int, byte: int = -1) -> str:
    """The checkpoint with one byte of its ``line``-th signature flipped (key id kept)."""
    note = parse_note(checkpoint)
    signatures = list(note.signatures)
    target = signatures[line]
    flipped = bytearray(target.signature)
    flipped[byte] ^= 0x01
    signatures[line] = type(target)(target.name, target.key_id, bytes(flipped))
    return Note(note.text, tuple(signatures)).to_bytes().decode()


def unknown_line(name: str = "stranger.test/key") -> str:
    """A signature line from a key nobody knows (to be ignored, never verified)."""
    blob = base64.b64encode(os.urandom(4 + 64)).decode()
    return f"\u2014 {name} {blob}\n"
