"""The log's checkpoint (C2SP tlog-checkpoint): origin, tree size and root as a signed note.

Every tree head the registry signs (EIP-712 ``TreeHead``, ``registry.treehead``) is also a
checkpoint over the same size and root, signed with the log's note keys
(``registry.logkeys``), so that witnesses, monitors and the transparency world's tools can
follow the log in their own format.

NOTE: pure (cryptography only): the verifier kit, the witness and the monitor parse with it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from registry.merkle import HASH_SIZE, MAX_TREE_SIZE
from registry.note import Note, NoteError, NoteVerifier, parse_note, verify_note

MAX_ORIGIN_BYTES = 255
"""An origin longer than this cannot be named in an ML-DSA-44 cosignature (one length byte)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint's note text: origin, size, root, and (discouraged) extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or len(self.origin.encode()) > MAX_ORIGIN_BYTES:
            raise NoteError(f"a checkpoint origin must be 1 to {MAX_ORIGIN_BYTES} bytes")
        if "\n" in self.origin or any(ord(char) < 0x20 for char in self.origin):
            raise NoteError("a checkpoint origin must be one line of printable text")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteError("a checkpoint's tree size is out of range")
        if len(self.root) != HASH_SIZE:
            raise NoteError("a checkpoint's root hash is 32 bytes")
        for line in self.extensions:
            if not line or "\n" in line:
                raise NoteError("a checkpoint's extension lines must be non-empty single lines")

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """A checkpoint from its note text (ending in a newline); ``NoteError`` otherwise."""
        if not text.endswith("\n"):
            raise NoteError("a checkpoint's text must end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise NoteError("a checkpoint is an origin, a size and a root, each on its line")
        origin, size_text, root_text, *extensions = lines
        if not size_text.isascii() or not size_text.isdigit():
            raise NoteError("a checkpoint's tree size must be a decimal number")
        if size_text != str(int(size_text)):
            raise NoteError("a checkpoint's tree size must not have leading zeros")
        try:
            root = base64.b64decode(root_text, validate=True)
        except (binascii.Error, ValueError):
            raise NoteError("a checkpoint's root is not standard base64") from None
        checkpoint = cls(origin, int(size_text), root, tuple(extensions))
        if checkpoint.text() != text:
            raise NoteError("a checkpoint's root must be canonical base64")
        return checkpoint


def open_checkpoint(
    data: bytes | str, log_verifiers: Iterable[NoteVerifier], *, origin: str
) -> tuple[Checkpoint, Note]:
    """Parse a signed checkpoint, check it is ``origin``'s and signed by one of the log's keys.

    Returns the checkpoint and the whole note (cosignature lines included, unchecked: a
    witness policy checks those). ``NoteError`` names what failed.
    """
    note = parse_note(data)
    checkpoint = Checkpoint.parse(note.text)
    if checkpoint.origin != origin:
        raise NoteError(f"the checkpoint is for the log {checkpoint.origin!r}, not {origin!r}")
    verify_note(note, log_verifiers)
    return checkpoint, note


__all__ = ["MAX_ORIGIN_BYTES", "Checkpoint", "open_checkpoint"]
