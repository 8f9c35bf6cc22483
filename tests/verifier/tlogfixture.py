"""A tlog-tiles directory written from a list of leaves by a naive reference (tests only): what
a monitor test serves when it needs a log it can fault at will (split views, rollbacks, edited
tiles). The log as the registry publishes it is ``tracemark tiles publish``'s."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from registry.checkpoint import Checkpoint
from registry.fingerprints import GoodType
from registry.leaf import EntryKind, encode_leaf
from registry.logkeys import LogNoteKeys
from registry.merkle import hash_leaf, root_from_leaf_hashes
from registry.note import sign_note, vkey
from registry.tlogtiles import TileRef, checkpoint_tiles, encode_bundle

ORIGIN = "127.0.0.1/tlog-test"


def log_keys(origin: str = ORIGIN) -> LogNoteKeys:
    return LogNoteKeys.from_seeds(origin, os.urandom(32), os.urandom(32))


def vkeys(keys: LogNoteKeys) -> list[str]:
    return [vkey(verifier) for verifier in keys.verifiers()]


def leaf(
    kind: EntryKind, fingerprint: bytes, actor: bytes, timestamp: int = 1_700_000_000
) -> bytes:
    return encode_leaf(kind, GoodType.CODE, fingerprint, actor, os.urandom(32), timestamp)


def random_leaves(count: int, actor: bytes) -> list[bytes]:
    prefix = encode_leaf(EntryKind.REGISTER, GoodType.CODE, bytes(32), actor, bytes(32), 1)[:96]
    tail = encode_leaf(EntryKind.REGISTER, GoodType.CODE, bytes(32), actor, bytes(32), 1)[128:]
    # Distinct fingerprints (so distinct leaves) without a full encode per leaf.
    return [prefix + hashlib.sha256(os.urandom(8)).digest() + tail for _ in range(count)]


def level_nodes(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Each tile level's complete nodes: level 0 the leaf hashes, level L+1 the MTH of each
    256 nodes of level L (tlog-tiles: MTH(D[(n*256+i)*256**l : (n*256+i+1)*256**l]))."""
    levels = [[hash_leaf(data) for data in leaves]]
    while len(levels[-1]) >= 256:
        below = levels[-1]
        levels.append(
            [root_from_leaf_hashes(below[i : i + 256]) for i in range(0, len(below) - 255, 256)]
        )
    return levels


def write_log(
    directory: Path, leaves: Sequence[bytes], keys: LogNoteKeys, *, origin: str = ORIGIN
) -> Checkpoint:
    """Write the checkpoint, tiles and bundles of the tree of ``leaves`` under ``directory``
    (files of an earlier write kept: tiles never change); the checkpoint."""
    levels = level_nodes(leaves)
    for ref in checkpoint_tiles(len(leaves)):
        path = directory / ref.path()
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        begin = ref.index * 256
        if ref.level is None:
            path.write_bytes(encode_bundle(leaves[begin : begin + ref.width]))
        else:
            path.write_bytes(b"".join(levels[ref.level][begin : begin + ref.width]))
    checkpoint = Checkpoint(origin, len(leaves), root_from_leaf_hashes(levels[0]))
    write_checkpoint(directory, checkpoint, keys)
    return checkpoint


def write_checkpoint(directory: Path, checkpoint: Checkpoint, keys: LogNoteKeys) -> bytes:
    note = sign_note(checkpoint.text(), keys.signers).to_bytes()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "checkpoint").write_bytes(note)
    return note


def tile_file(directory: Path, ref: TileRef) -> Path:
    return directory / ref.path()
