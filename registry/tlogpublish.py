"""The log as static files (C2SP tlog-tiles): the published checkpoint and every tile and entry
bundle it needs, laid out as their URLs below a directory any web server or CDN can serve.

Incremental: a full tile or bundle never changes, so one already there (at its exact size) is
kept; the partial ones of this size are written again. Every file is written to a temporary
name, flushed to disk and renamed over its place, and the checkpoint goes last: a reader never
sees a checkpoint whose tiles are missing, nor half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from sqlalchemy import Engine

from registry.checkpoint import Checkpoint
from registry.db import read_transaction
from registry.errors import Conflict, InvalidInput, NotFound
from registry.leaf import LEAF_SIZE
from registry.merkle import HASH_SIZE
from registry.note import NoteError, parse_note
from registry.tiles import TILE_WIDTH
from registry.tlogread import READ_CHUNK, latest_published, read_bundles, read_tiles
from registry.tlogtiles import TileRef, checkpoint_tiles

CHECKPOINT_FILE = "checkpoint"
#: A full tile's bytes (spec: exactly 8,192) and a full bundle's (each entry is one leaf).
FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE
FULL_BUNDLE_BYTES = TILE_WIDTH * (2 + LEAF_SIZE)
#: Largest existing checkpoint file read back (a note with many cosignatures is a few KiB).
MAX_CHECKPOINT_BYTES = 1 << 20


@dataclass(frozen=True)
class Published:
    """What one run wrote: the checkpoint's size, files written (the checkpoint included) and
    full tiles and bundles already present and kept."""

    tree_size: int
    written: int
    kept: int
    directory: Path


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        _replace(path, data)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None


def _replace(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            # NOTE: flushed before the rename: after a crash a full tile present at its size
            # is kept for ever, so it must never be a renamed file whose bytes were lost.
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _present(path: Path, ref: TileRef) -> bool:
    """A full resource already published: it exists at its one possible size."""
    expected = FULL_BUNDLE_BYTES if ref.is_entries else FULL_TILE_BYTES
    try:
        return path.stat().st_size == expected
    except OSError:  # missing, or a part of the path is not a directory: written (or refused)
        return False


def _previous_size(directory: Path, origin: str) -> int | None:
    """The size of the checkpoint already in directory (None if none), refusing another log's."""
    path = directory / CHECKPOINT_FILE
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_CHECKPOINT_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if len(data) > MAX_CHECKPOINT_BYTES:
            raise NoteError("it is too large")
        previous = Checkpoint.parse(parse_note(data).text)
    except NoteError as exc:
        raise InvalidInput(f"{path} is not a checkpoint ({exc.detail}): not overwriting") from None
    if previous.origin != origin:
        raise Conflict(f"{path} is the checkpoint of {previous.origin!r}, not {origin!r}")
    return previous.size


def _chunks(refs: Sequence[TileRef]) -> Iterator[list[TileRef]]:
    for _, same_level in groupby(refs, key=lambda ref: ref.level):
        level = list(same_level)
        for start in range(0, len(level), READ_CHUNK):
            yield level[start : start + READ_CHUNK]


def publish(engine: Engine, directory: Path) -> Published:
    """Write the latest published checkpoint and what it needs below directory."""
    written = kept = 0
    with read_transaction(engine) as conn:
        found = latest_published(conn)
        if found is None:
            raise NotFound("the log has published no checkpoint yet")
        size, note = found
        checkpoint = Checkpoint.parse(parse_note(note).text)
        previous = _previous_size(directory, checkpoint.origin)
        if previous is not None and previous > size:
            raise Conflict(
                f"{directory / CHECKPOINT_FILE} is at size {previous:,}, newer than the "
                f"log's published {size:,}: not moving it backwards"
            )
        wanted = []
        for ref in checkpoint_tiles(size):
            if ref.is_full and _present(directory / ref.path(), ref):
                kept += 1
            else:
                wanted.append(ref)
        # One snapshot for every read: the tiles and bundles of exactly this size.
        for chunk in _chunks(wanted):
            read = read_bundles if chunk[0].is_entries else read_tiles
            for ref, data in zip(chunk, read(conn, chunk), strict=True):
                _write_atomically(directory / ref.path(), data)
                written += 1
    _write_atomically(directory / CHECKPOINT_FILE, note)
    return Published(tree_size=size, written=written + 1, kept=kept, directory=directory)
