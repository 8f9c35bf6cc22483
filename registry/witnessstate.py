"""A witness's durable state: per log origin, the latest checkpoint it cosigned (tlog-witness).

One file per origin, ``<sha256(origin) hex>.checkpoint``, holding exactly the cosigned note the
monitoring endpoint serves (the log's verified signatures and the witness's cosignatures); the
size and root are read back from its text. A new record is written to a temporary file,
fsynced, renamed over the old one and the directory fsynced, so a crash leaves the old record
or the new one, never a torn one, and a record reported saved survives a power cut.

tlog-witness requires the check of the old size and the saving of the new state to be atomic
(its race: two requests checked against the same old size, the smaller saved last, rolling the
log back). ``WitnessState.locked(origin)`` is the per-origin lock a caller holds across both;
the state directory itself is owned by one process at a time (an exclusive ``flock`` taken at
open), so two witness processes can never race on the same files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from registry.checkpoint import Checkpoint
from registry.errors import ConfigurationError
from registry.note import Note, NoteError, parse_note

#: The lock file that makes one process the owner of a state directory.
LOCK_FILE: Final = "witness.lock"
#: The suffix of a record; its stem is the origin hash.
RECORD_SUFFIX: Final = ".checkpoint"
#: Largest record read back (a note of 16 ML-DSA-44 signatures is ~55 KB). Threat: a state
#: directory someone filled with a huge file makes the witness read it whole at start.
MAX_RECORD_BYTES: Final = 256 * 1024


def origin_hash(origin: str) -> str:
    """The lowercase hex SHA-256 of an origin: a record's file stem and the monitoring path."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CosignedCheckpoint:
    """The latest checkpoint a witness cosigned for one log, with the note it serves."""

    checkpoint: Checkpoint
    note: Note

    def to_bytes(self) -> bytes:
        return self.note.to_bytes()


class WitnessState:
    """The per-origin records of one witness, cached in memory, written through to disk."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._dir = state_dir
        self._lock_fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise ConfigurationError(
                f"the witness state {state_dir} is in use by another witness process"
            ) from None
        self._records: dict[str, CosignedCheckpoint] = {}
        self._locks: dict[str, threading.Lock] = {}
        # Guards the two dicts above; never held while a record is written.
        self._guard = threading.Lock()
        for path in sorted(state_dir.glob("*" + RECORD_SUFFIX)):
            record = _read_record(path)
            self._records[path.stem] = record

    @property
    def directory(self) -> Path:
        return self._dir

    def close(self) -> None:
        """Release the state directory (another process may then open it)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> WitnessState:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextlib.contextmanager
    def locked(self, origin: str) -> Iterator[None]:
        """Hold the origin's lock: the check of the old size and ``save`` happen inside it."""
        key = origin_hash(origin)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def get(self, origin: str) -> CosignedCheckpoint | None:
        """The latest cosigned checkpoint of ``origin``, or None if it never cosigned one."""
        return self._records.get(origin_hash(origin))

    def get_by_hash(self, hex_hash: str) -> CosignedCheckpoint | None:
        """As ``get``, by the origin's hex SHA-256 (the monitoring path's segment)."""
        return self._records.get(hex_hash)

    def save(self, record: CosignedCheckpoint) -> None:
        """Persist ``record`` as its origin's latest, durably, before returning.

        The caller holds ``locked(origin)``: the per-origin temporary file has one writer.
        """
        if self._lock_fd < 0:
            raise ConfigurationError("the witness state is closed")
        key = origin_hash(record.checkpoint.origin)
        final = self._dir / (key + RECORD_SUFFIX)
        temporary = self._dir / (key + RECORD_SUFFIX + ".tmp")
        data = record.to_bytes()
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, final)
        # The rename is durable only once the directory entry is.
        dir_fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        with self._guard:
            self._records[key] = record


def _read_record(path: Path) -> CosignedCheckpoint:
    """A record read back at start; a damaged one stops the witness (it must not forget)."""
    with path.open("rb") as stream:
        data = stream.read(MAX_RECORD_BYTES + 1)
    if len(data) > MAX_RECORD_BYTES:
        raise ConfigurationError(f"witness state {path} is larger than {MAX_RECORD_BYTES} bytes")
    try:
        note = parse_note(data)
        checkpoint = Checkpoint.parse(note.text)
    except NoteError as exc:
        raise ConfigurationError(f"witness state {path} is damaged: {exc.detail}") from None
    if origin_hash(checkpoint.origin) != path.stem:
        raise ConfigurationError(f"witness state {path} holds another origin's checkpoint")
    return CosignedCheckpoint(checkpoint, note)


__all__ = [
    "LOCK_FILE",
    "MAX_RECORD_BYTES",
    "RECORD_SUFFIX",
    "CosignedCheckpoint",
    "WitnessState",
    "origin_hash",
]
