"""The witness's add-checkpoint (c2sp.org/tlog-witness): every status the spec defines.

Pure protocol logic over bytes: no web framework. ``api/witnessapp.py`` is its HTTP front door
and ``registry/witnessconfig.py`` builds one from a config file. The steps of
``Witness.add_checkpoint`` follow the order of the spec's section "add-checkpoint"; the
numbered comments repeat them.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from registry.checkpoint import Checkpoint
from registry.errors import InvalidInput, InvalidProof
from registry.merkle import HASH_SIZE, MAX_TREE_SIZE, empty_root, verify_consistency
from registry.note import Note, NoteError, NoteSigner, NoteVerifier, parse_note, verify_note
from registry.witnessstate import CosignedCheckpoint, WitnessState

#: Most consistency proof lines a client may send (tlog-witness: "MUST NOT send more than 63").
MAX_PROOF_LINES: Final = 63
#: Largest checkpoint note accepted in a request. signed-note asks verifiers to take at least 16
#: signatures; an ML-DSA-44 cosignature line is ~3.3 KB, so 16 of them fit in ~55 KB. Threat: a
#: body of megabytes parsed and held per request.
MAX_CHECKPOINT_NOTE_BYTES: Final = 64 * 1024
#: Largest add-checkpoint body: the old size line, 63 proof lines, the empty line, the note.
MAX_ADD_CHECKPOINT_BYTES: Final = 32 + MAX_PROOF_LINES * 45 + 1 + MAX_CHECKPOINT_NOTE_BYTES

#: The media type of a 409's body (tlog-witness).
SIZE_MEDIA_TYPE: Final = "text/x.tlog.size"
#: The media type of every other body: signature lines, a checkpoint, a one-line reason.
TEXT_MEDIA_TYPE: Final = "text/plain; charset=utf-8"

_OLD_LINE = re.compile(rb"old (0|[1-9][0-9]{0,19})")
_ORIGIN_HASH = re.compile(r"[0-9a-f]{64}")

logger = logging.getLogger("tracemark.witness")


class Answer(NamedTuple):
    """An HTTP answer of the witness protocol: the status, its media type and its body."""

    status: int
    content_type: str
    body: bytes


def _text(status: int, reason: str) -> Answer:
    return Answer(status, TEXT_MEDIA_TYPE, reason.encode("utf-8") + b"\n")


@dataclass(frozen=True)
class AddCheckpointRequest:
    """A parsed add-checkpoint body: the old size, the consistency proof, the checkpoint note."""

    old_size: int
    consistency_proof: tuple[bytes, ...]
    note: bytes


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """The add-checkpoint body's three parts, or InvalidInput (the witness answers 400)."""
    if len(body) > MAX_ADD_CHECKPOINT_BYTES:
        raise InvalidInput(f"the body is larger than {MAX_ADD_CHECKPOINT_BYTES} bytes")
    # The old size and proof lines are never empty, so the first empty line ends them.
    end = body.find(b"\n\n")
    if end < 0:
        raise InvalidInput("the body has no empty line before the checkpoint")
    old_line, *proof_lines = body[:end].split(b"\n")
    match = _OLD_LINE.fullmatch(old_line)
    if match is None:
        raise InvalidInput("the first line is not 'old <size>' (decimal, no leading zeroes)")
    old_size = int(match.group(1))
    if old_size > MAX_TREE_SIZE:
        raise InvalidInput(f"the old size {old_size} is larger than 2^64 - 1")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise InvalidInput(f"{len(proof_lines)} proof lines, more than {MAX_PROOF_LINES}")
    proof = tuple(_proof_hash(i, line) for i, line in enumerate(proof_lines))
    note = body[end + 2 :]
    if len(note) > MAX_CHECKPOINT_NOTE_BYTES:
        raise InvalidInput(f"the checkpoint is larger than {MAX_CHECKPOINT_NOTE_BYTES} bytes")
    return AddCheckpointRequest(old_size, proof, note)


def _proof_hash(position: int, line: bytes) -> bytes:
    try:
        value = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"proof line {position} is not base64") from None
    if len(value) != HASH_SIZE or base64.b64encode(value) != line:
        raise InvalidInput(f"proof line {position} is not one base64 SHA-256 hash")
    return value


def format_add_checkpoint(old_size: int, consistency_proof: Sequence[bytes], note: bytes) -> bytes:
    """An add-checkpoint body (what a log sends): the client side of ``parse_add_checkpoint``."""
    lines = [f"old {old_size}\n".encode()]
    lines += [base64.b64encode(h) + b"\n" for h in consistency_proof]
    return b"".join(lines) + b"\n" + note


class Witness:
    """One witness: its cosigners, the logs it follows (origin -> the log's verifiers), its
    durable state. Thread-safe: requests for one origin are serialised by the state's lock."""

    def __init__(
        self,
        signers: Sequence[NoteSigner],
        logs: Mapping[str, Iterable[NoteVerifier]],
        state: WitnessState,
    ) -> None:
        if not signers:
            raise InvalidInput("a witness needs at least one cosigner")
        self._signers = tuple(signers)
        self._logs = {origin: tuple(verifiers) for origin, verifiers in logs.items()}
        for origin, verifiers in self._logs.items():
            if not verifiers:
                raise InvalidInput(f"the log {origin!r} has no verifier key")
        self._state = state

    @property
    def state(self) -> WitnessState:
        return self._state

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(self._logs)

    def add_checkpoint(self, body: bytes) -> Answer:
        """Answer one add-checkpoint request; a 200 is answered only once the state is saved."""
        # 1. Parse the body and the checkpoint: anything malformed is a 400.
        try:
            request = parse_add_checkpoint(body)
            note = parse_note(request.note)
            checkpoint = Checkpoint.parse(note.text)
        except InvalidInput as exc:
            return _text(400, exc.detail)
        # 2. An origin the witness does not follow: 404.
        verifiers = self._logs.get(checkpoint.origin)
        if verifiers is None:
            return _text(404, "unknown log origin")
        # 3. A signature of a trusted key must verify and none may fail (unknown keys are
        #    ignored): else 403.
        try:
            verified = verify_note(note, verifiers)
        except NoteError as exc:
            return _text(403, exc.detail)
        # 4. The old size may not exceed the checkpoint's: 400.
        if request.old_size > checkpoint.size:
            return _text(
                400, f"old size {request.old_size} is larger than the size {checkpoint.size}"
            )
        # Steps 5-8 and the save happen under the origin's lock: the spec's race (two requests
        # checked against the same old size, the smaller one saved last) cannot happen.
        with self._state.locked(checkpoint.origin):
            current = self._state.get(checkpoint.origin)
            current_size = current.checkpoint.size if current is not None else 0
            # 5. The old size must be the size last cosigned (0 if never): else 409.
            if request.old_size != current_size:
                return Answer(409, SIZE_MEDIA_TYPE, f"{current_size}\n".encode())
            # 6-8. Checks that make the checkpoint inconsistent: 422, never cosigned.
            refusal = _inconsistency(request, checkpoint, current)
            if refusal is not None:
                # A log-signed checkpoint inconsistent with what was cosigned may be proof of
                # misbehaviour (tlog-witness: the witness MAY log it).
                logger.warning(
                    "refused a log-signed checkpoint of %s at size %d (root %s): %s",
                    checkpoint.origin,
                    checkpoint.size,
                    base64.b64encode(checkpoint.root).decode(),
                    refusal,
                )
                return _text(422, refusal)
            # 9. Cosign, save the new state durably, then answer 200.
            cosignatures = [signer.sign(note.text) for signer in self._signers]
            known = {(v.name, v.key_id) for v in verified}
            log_signatures = [s for s in note.signatures if (s.name, s.key_id) in known]
            stored = Note(note.text, tuple(log_signatures)).with_signatures(*cosignatures)
            self._state.save(CosignedCheckpoint(checkpoint, stored))
        return Answer(200, TEXT_MEDIA_TYPE, "".join(s.line() for s in cosignatures).encode())

    def latest_checkpoint(self, origin_hex: str) -> Answer:
        """The monitoring endpoint: the latest cosigned checkpoint of the log whose origin
        hashes to ``origin_hex`` (lowercase hex SHA-256), or 404 if it never cosigned one."""
        record = self._state.get_by_hash(origin_hex) if _ORIGIN_HASH.fullmatch(origin_hex) else None
        if record is None:
            return _text(404, "no checkpoint cosigned for this origin")
        return Answer(200, TEXT_MEDIA_TYPE, record.to_bytes())


def _inconsistency(
    request: AddCheckpointRequest, checkpoint: Checkpoint, current: CosignedCheckpoint | None
) -> str | None:
    """Why the checkpoint may not be cosigned (a 422), or None."""
    # 6. A checkpoint of size 0 has the empty tree's root.
    if checkpoint.size == 0 and checkpoint.root != empty_root():
        return "a checkpoint of size 0 must have the root of the empty tree"
    # 7. From size 0 no proof is needed, and none may be sent.
    if request.old_size == 0 and request.consistency_proof:
        return "the consistency proof from size 0 must be empty"
    if current is None:
        return None
    # 8. The proof from the cosigned checkpoint to this one (equal sizes: equal roots).
    try:
        verify_consistency(
            current.checkpoint.size,
            checkpoint.size,
            request.consistency_proof,
            current.checkpoint.root,
            checkpoint.root,
        )
    except (InvalidProof, InvalidInput) as exc:
        cosigned = current.checkpoint.size
        return f"not consistent with the cosigned checkpoint of size {cosigned}: {exc.detail}"
    return None


__all__ = [
    "MAX_ADD_CHECKPOINT_BYTES",
    "MAX_CHECKPOINT_NOTE_BYTES",
    "MAX_PROOF_LINES",
    "SIZE_MEDIA_TYPE",
    "TEXT_MEDIA_TYPE",
    "AddCheckpointRequest",
    "Answer",
    "Witness",
    "format_add_checkpoint",
    "parse_add_checkpoint",
]
