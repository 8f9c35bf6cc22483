"""Signed notes (C2SP signed-note): text signed by one or more keys, each signature one line.

A checkpoint (``registry.checkpoint``) is a note; the registry signs it with its log keys and
witnesses add cosignatures (C2SP tlog-cosignature) as further lines. Three signature types
are spoken, each a ``NoteSigner``/``NoteVerifier`` pair: ``0x01`` Ed25519 over the note text
(signed-note, the log's own signature), here; ``0x04`` timestamped Ed25519 ``cosignature/v1``
and ``0x06`` timestamped ML-DSA-44 ``subtree/v1``, in ``registry.cosignature``. Vkeys of all
three are read here (``parse_vkey``).

A verifier checks only the lines whose (key name, key id) it knows and ignores the rest, as
the spec requires; a known key's bad signature rejects the whole note.

NOTE: pure (cryptography only): the verifier kit, the witness and the monitor use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from registry.errors import InvalidInput

SIG_ED25519 = 0x01
SIG_COSIGNATURE_V1 = 0x04
SIG_MLDSA44_SUBTREE = 0x06

ED25519_PUBLIC_SIZE = 32
ED25519_SIGNATURE_SIZE = 64

MAX_SIGNATURES = 64
"""Signature lines a note may carry (the spec asks verifiers to accept at least 16)."""

MAX_NOTE_BYTES = 1 << 20
"""A note's size limit: 64 ML-DSA-44 lines are ~210 KB; anything near a megabyte is abuse."""

_DASH = "\u2014 "
# Every ASCII control character but newline (signed-note forbids them).
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")


class NoteError(InvalidInput):
    """A note, signature line, vkey or checkpoint is malformed, or a known key's signature
    does not verify."""

    code = "invalid-note"
    diagnostics = "Send the note exactly as signed: text, a blank line, signature lines."


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: ``— <name> base64(key id || signature)``."""

    name: str
    key_id: int
    #: The signature bytes after the 4-byte key id.
    signature: bytes

    def line(self) -> str:
        blob = struct.pack(">I", self.key_id) + self.signature
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A note's text (ending in a newline) and its signature lines, in order."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def to_bytes(self) -> bytes:
        lines = "".join(signature.line() for signature in self.signatures)
        return (self.text + "\n" + lines).encode()

    def with_signatures(self, *more: NoteSignature) -> Note:
        """This note with ``more`` lines appended; a line it already has is not repeated."""
        kept = list(self.signatures)
        for signature in more:
            if signature not in kept:
                kept.append(signature)
        return Note(self.text, tuple(kept))


def _check_text(text: str) -> None:
    # NOTE: a regex, not a generator over the characters: a note with an ML-DSA-44 line is
    # ~3.4 KB and the per-character loop was half of a witness's parsing (~0.2 ms).
    if _CONTROL.search(text):
        raise NoteError("a note must not contain control characters other than newline")


def _check_name(name: str) -> None:
    if not name or "+" in name or any(char.isspace() for char in name):
        raise NoteError("a key name must be non-empty, without spaces or '+'")


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not standard base64") from None


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_DASH):
        raise NoteError("a signature line must start with an em dash and a space")
    name, _, blob_text = line[len(_DASH) :].partition(" ")
    _check_name(name)
    blob = _b64(blob_text, "a signature")
    if len(blob) < 5:
        raise NoteError("a signature must hold a 4-byte key id and a signature")
    return NoteSignature(name, struct.unpack(">I", blob[:4])[0], blob[4:])


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_NOTE_BYTES:
        raise NoteError(f"a note must be at most {MAX_NOTE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("a note must be valid UTF-8") from None
    _check_text(text)
    return text


def parse_signature_lines(data: bytes | str) -> tuple[NoteSignature, ...]:
    """Signature lines alone (a witness's answer): each ends in a newline."""
    text = _decode(data)
    if not text.endswith("\n"):
        raise NoteError("signature lines must end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"at most {MAX_SIGNATURES} signature lines")
    return tuple(_parse_signature_line(line) for line in lines)


def parse_note(data: bytes | str) -> Note:
    """A signed note; ``NoteError`` names what is malformed. Signatures are not checked."""
    text = _decode(data)
    # The text ends at the last blank line: "\n\n" then the signature block.
    cut = text.rfind("\n\n")
    if cut < 0:
        raise NoteError("a note must have a text, a blank line and signature lines")
    body, block = text[: cut + 1], text[cut + 2 :]
    if not block:
        raise NoteError("a note must carry at least one signature")
    return Note(body, parse_signature_lines(block))


def key_id(name: str, sig_type: int, public_key: bytes) -> int:
    """SHA-256(name || 0x0A || type || public key)[:4], big-endian (signed-note)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()
    return int(struct.unpack(">I", digest[:4])[0])


class NoteVerifier(Protocol):
    name: str
    key_id: int
    sig_type: int
    public_key: bytes

    def verify(self, text: str, signature: bytes) -> bool:
        """Whether ``signature`` (without the key id) signs ``text`` under this key."""
        ...


class NoteSigner(Protocol):
    name: str
    key_id: int

    def sign(self, text: str) -> NoteSignature: ...


class NoteKey:
    """The identity shared by a signer and verifier: name, type, public key, key id."""

    sig_type: int

    def __init__(self, name: str, public_key: bytes) -> None:
        _check_name(name)
        self.name = name
        self.public_key = public_key
        self.key_id = key_id(name, self.sig_type, public_key)


class Ed25519Verifier(NoteKey):
    sig_type = SIG_ED25519

    def __init__(self, name: str, public_key: bytes) -> None:
        if len(public_key) != ED25519_PUBLIC_SIZE:
            raise NoteError("an Ed25519 public key is 32 bytes")
        super().__init__(name, public_key)
        self._key = ed25519.Ed25519PublicKey.from_public_bytes(public_key)

    def verify(self, text: str, signature: bytes) -> bool:
        return ed25519_valid(self._key, signature, text.encode())


class Ed25519Signer(NoteKey):
    sig_type = SIG_ED25519

    def __init__(self, name: str, private_key: ed25519.Ed25519PrivateKey) -> None:
        super().__init__(name, private_key.public_key().public_bytes_raw())
        self._private = private_key

    def sign(self, text: str) -> NoteSignature:
        return NoteSignature(self.name, self.key_id, self._private.sign(text.encode()))

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self.name, self.public_key)


def ed25519_valid(key: ed25519.Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    if len(signature) != ED25519_SIGNATURE_SIZE:
        return False
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _verifier_types() -> dict[int, Callable[[str, bytes], NoteVerifier]]:
    # NOTE: the cosignature types live in registry.cosignature, which builds on this module.
    from registry.cosignature import CosignatureV1Verifier, MLDSA44CosignatureVerifier

    return {
        SIG_ED25519: Ed25519Verifier,
        SIG_COSIGNATURE_V1: CosignatureV1Verifier,
        SIG_MLDSA44_SUBTREE: MLDSA44CosignatureVerifier,
    }


def parse_vkey(text: str) -> NoteVerifier:
    """A verifier key ``<name>+<hex key id>+<base64(type || public key)>`` (signed-note)."""
    name, plus, rest = text.strip().partition("+")
    hex_id, plus2, material_text = rest.partition("+")
    if not plus or not plus2 or len(hex_id) != 8 or hex_id != hex_id.lower():
        raise NoteError("a vkey is <name>+<8 lowercase hex digits>+<base64 key>")
    try:
        claimed = int(hex_id, 16)
    except ValueError:
        raise NoteError("a vkey's key id is not hex") from None
    material = _b64(material_text, "a vkey's key")
    types = _verifier_types()
    if not material or material[0] not in types:
        raise NoteError("a vkey's signature type must be 0x01, 0x04 or 0x06")
    verifier = types[material[0]](name, material[1:])
    if verifier.key_id != claimed:
        raise NoteError("a vkey's key id does not match its name and key")
    return verifier


def vkey(verifier: NoteVerifier) -> str:
    material = base64.b64encode(bytes([verifier.sig_type]) + verifier.public_key).decode()
    return f"{verifier.name}+{verifier.key_id:08x}+{material}"


def verify_note(note: Note, verifiers: Iterable[NoteVerifier]) -> tuple[NoteVerifier, ...]:
    """The known keys whose signatures on ``note`` verify, in the note's order.

    Lines from unknown keys (name and id not both known) are ignored; a known key's line that
    fails rejects the note, and so does a note no known key signed (signed-note).
    """
    known = {(verifier.name, verifier.key_id): verifier for verifier in verifiers}
    verified: list[NoteVerifier] = []
    for signature in note.signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        if not verifier.verify(note.text, signature.signature):
            raise NoteError(f"the signature of {signature.name} ({signature.key_id:08x}) fails")
        if verifier not in verified:
            verified.append(verifier)
    if not verified:
        raise NoteError("the note carries no signature from a known key")
    return tuple(verified)


def sign_note(text: str, signers: Iterable[NoteSigner]) -> Note:
    """``text`` (ending in a newline) signed by each of ``signers``, in order."""
    if not text.endswith("\n"):
        raise NoteError("a note's text must end in a newline")
    _check_text(text)
    if "\n\n" in "\n" + text:
        # NOTE: allowed by the spec, but every text signed here is a checkpoint, which has none.
        raise NoteError("a signed text here must not contain empty lines")
    return Note(text, tuple(signer.sign(text) for signer in signers))


__all__ = [
    "MAX_SIGNATURES",
    "SIG_COSIGNATURE_V1",
    "SIG_ED25519",
    "SIG_MLDSA44_SUBTREE",
    "Ed25519Signer",
    "Ed25519Verifier",
    "Note",
    "NoteError",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "key_id",
    "parse_note",
    "parse_signature_lines",
    "parse_vkey",
    "sign_note",
    "verify_note",
]
