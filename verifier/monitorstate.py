"""A monitor's state directory: the last verified checkpoint, the tree's right edge, the goods.

``state.json`` names the log (prefix, origin, the vkeys pinned at the first run), the watched
creators, the last checkpoint verified (its whole note), the tree's right edge at its size and
how many records of ``goods.bin`` (fingerprint || creator, one per good a watched creator
registered) belong to it. A step appends its goods to ``goods.bin``, syncs them, then replaces
``state.json`` in one rename: a crash before the rename leaves the previous state, whose count
ignores (and the next open cuts off) the records it never claimed. A lock file keeps a second
monitor off the same directory.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Final

from registry.checkpoint import Checkpoint, open_checkpoint
from registry.errors import ConfigurationError, StorageBusy
from registry.note import NoteError, NoteVerifier, parse_vkey
from verifier.tiledtree import TreeEdge

STATE_FORMAT: Final = "tracemark-monitor-state/v1"
STATE_FILE: Final = "state.json"
GOODS_FILE: Final = "goods.bin"
LOCK_FILE: Final = "lock"

ADDRESS_SIZE: Final = 20
GOOD_RECORD: Final = 32 + ADDRESS_SIZE
"""A watched good in ``goods.bin``: its fingerprint, then the watched creator who registered it."""

MAX_STATE_BYTES: Final = 4 * 1024 * 1024
"""Largest ``state.json`` read (a checkpoint note, 8 edge tiles of 8 KiB, a few keys).
Threat: a damaged or planted file read whole into memory."""


@dataclass(frozen=True)
class LogIdentity:
    """Which log a state follows: fixed at the first run, checked at every later one."""

    prefix: str
    origin: str
    vkeys: tuple[str, ...]
    creators: tuple[bytes, ...]

    def verifiers(self) -> tuple[NoteVerifier, ...]:
        return tuple(parse_vkey(text) for text in self.vkeys)


@dataclass(frozen=True)
class MonitorState:
    """What a monitor verified: ``checkpoint`` (its ``note`` bytes), the ``edge`` at its size,
    and ``goods`` records of ``goods.bin``."""

    log: LogIdentity
    note: bytes | None
    checkpoint: Checkpoint | None
    edge: TreeEdge
    goods: int


class StateDir:
    """An open, locked state directory. ``load`` then ``commit`` after each verified step."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._lock: IO[bytes] = (path / LOCK_FILE).open("ab")
        except OSError as exc:
            raise ConfigurationError(f"cannot use {path} as the state: {exc.strerror}") from None
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise StorageBusy(f"another monitor is using the state in {path}") from None

    def close(self) -> None:
        self._lock.close()  # releases the lock

    def __enter__(self) -> StateDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------------

    def load(self, given: LogIdentity) -> MonitorState:
        """The state saved here, checked against the log the caller names; a new one if none.

        An empty origin, list of vkeys or of creators in ``given`` means "as saved" (a new
        state's origin: the prefix without its scheme); anything else must equal what was
        saved: the pinned log never changes under a monitor (its prefix may: a mirror), and a
        creator added later would miss the goods registered before (start a new state).
        """
        file = self.path / STATE_FILE
        if not file.exists():
            if not given.vkeys:
                raise ConfigurationError("the first run needs the log's --vkey")
            # tlog-tiles: the origin SHOULD be the prefix without its scheme.
            first = replace(given, origin=given.origin or given.prefix.split("://", 1)[-1])
            first.verifiers()  # a bad vkey is refused before anything is written
            return MonitorState(first, None, None, TreeEdge(0), 0)
        document = self._read_json(file)
        try:
            saved = LogIdentity(
                prefix=str(document["prefix"]),
                origin=str(document["origin"]),
                vkeys=tuple(str(v) for v in document["vkeys"]),
                creators=tuple(bytes.fromhex(c[2:]) for c in document["creators"]),
            )
            note = document["checkpoint"]
            levels = tuple(base64.b64decode(level, validate=True) for level in document["edge"])
            goods = int(document["goods"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{file} is damaged ({exc})") from None
        for name, differs in (
            ("origin", bool(given.origin) and given.origin != saved.origin),
            ("vkeys", bool(given.vkeys) and sorted(given.vkeys) != sorted(saved.vkeys)),
            ("creators", bool(given.creators) and set(given.creators) != set(saved.creators)),
        ):
            if differs:
                raise ConfigurationError(
                    f"this state follows other {name} than asked; use a new --state directory"
                )
        log = LogIdentity(given.prefix, saved.origin, saved.vkeys, saved.creators)
        checkpoint = None
        note_bytes = None
        size = 0
        if note is not None:
            note_bytes = str(note).encode()
            try:
                checkpoint, _ = open_checkpoint(note_bytes, log.verifiers(), origin=log.origin)
            except NoteError as exc:
                raise ConfigurationError(
                    f"{file} holds a checkpoint that does not verify: {exc.detail}"
                ) from None
            size = checkpoint.size
        try:
            edge = TreeEdge(size, levels)
        except ValueError as exc:
            raise ConfigurationError(f"{file} is damaged: {exc}") from None
        if checkpoint is not None and edge.root() != checkpoint.root:
            raise ConfigurationError(f"{file} is damaged: its edge is not its checkpoint's tree")
        self._cut_goods(goods)
        return MonitorState(log, note_bytes, checkpoint, edge, goods)

    def _read_json(self, file: Path) -> dict[str, Any]:
        with file.open("rb") as stream:
            data = stream.read(MAX_STATE_BYTES + 1)
        if len(data) > MAX_STATE_BYTES:
            raise ConfigurationError(f"{file} is larger than {MAX_STATE_BYTES:,} bytes")
        try:
            document = json.loads(data)
        except ValueError:
            raise ConfigurationError(f"{file} is not JSON") from None
        if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
            raise ConfigurationError(f"{file} is not a {STATE_FORMAT} file")
        return document

    def _cut_goods(self, count: int) -> None:
        # Records past the count were appended by a step that never committed.
        file = self.path / GOODS_FILE
        size = file.stat().st_size if file.exists() else 0
        if size < count * GOOD_RECORD:
            raise ConfigurationError(f"{file} holds fewer goods than {STATE_FILE} counts")
        if size > count * GOOD_RECORD:
            os.truncate(file, count * GOOD_RECORD)

    def goods(self, count: int) -> dict[bytes, bytes]:
        """fingerprint -> creator of the first ``count`` records of ``goods.bin``."""
        file = self.path / GOODS_FILE
        if not count:
            return {}
        with file.open("rb") as stream:
            data = stream.read(count * GOOD_RECORD)
        return {
            data[o : o + 32]: data[o + 32 : o + GOOD_RECORD]
            for o in range(0, len(data), GOOD_RECORD)
        }

    # -- writing -------------------------------------------------------------------------------

    def commit(
        self,
        old: MonitorState,
        note: bytes,
        checkpoint: Checkpoint,
        edge: TreeEdge,
        new_goods: Sequence[tuple[bytes, bytes]],
    ) -> MonitorState:
        """Save a verified step: the goods first (synced), then the state in one rename."""
        if new_goods:
            with (self.path / GOODS_FILE).open("ab") as stream:
                stream.write(b"".join(fingerprint + creator for fingerprint, creator in new_goods))
                stream.flush()
                os.fsync(stream.fileno())
        state = MonitorState(old.log, note, checkpoint, edge, old.goods + len(new_goods))
        document = {
            "format": STATE_FORMAT,
            "prefix": state.log.prefix,
            "origin": state.log.origin,
            "vkeys": list(state.log.vkeys),
            "creators": ["0x" + creator.hex() for creator in state.log.creators],
            "checkpoint": note.decode(),
            "size": checkpoint.size,
            "edge": [base64.b64encode(level).decode() for level in edge.levels],
            "goods": state.goods,
        }
        temporary = self.path / (STATE_FILE + ".tmp")
        with temporary.open("wb") as stream:
            stream.write(json.dumps(document, indent=1).encode())
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, self.path / STATE_FILE)
        directory = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)
        return state


__all__ = ["GOOD_RECORD", "LogIdentity", "MonitorState", "StateDir"]
