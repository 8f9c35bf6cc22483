"""A witness's view of the log against the monitor's: the same checkpoint, an older or newer one
joined by a consistency proof built from the log's tiles, and the split views that no proof can
join (each log-signed, so each an alarm with both notes)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from bench.staticserver import serving_directory
from registry.checkpoint import Checkpoint
from registry.errors import InvalidProof
from registry.merkle import root_from_leaf_hashes, verify_consistency
from registry.note import sign_note
from registry.tlogtiles import TileRef
from tests.verifier.tlogfixture import (
    ORIGIN,
    level_nodes,
    log_keys,
    random_leaves,
    write_log,
)
from verifier.tiledtree import LogInconsistent
from verifier.tlogclient import TlogClient
from verifier.witnesswatch import check_witness, consistency_from_tiles, monitoring_path

ACTOR = bytes.fromhex("b0" * 20)


def test_consistency_proofs_from_tiles_verify_and_a_changed_tile_fails() -> None:
    leaves = random_leaves(70_100, ACTOR)
    levels = level_nodes(leaves)
    roots = {}

    def fetch(refs: Sequence[TileRef]) -> list[bytes]:
        return [
            b"".join(levels[ref.level or 0][ref.index * 256 : ref.index * 256 + ref.width])
            for ref in refs
        ]

    sizes = [1, 2, 3, 255, 256, 257, 1000, 65_535, 65_536, 65_537, 70_000, 70_100]
    for size in sizes:
        roots[size] = root_from_leaf_hashes(levels[0][:size])
    for small in sizes:
        for large in sizes:
            if small <= large:
                proof = consistency_from_tiles(small, large, fetch)
                verify_consistency(small, large, proof, roots[small], roots[large])
    # One hash changed in the tiles: the proof no longer joins the two roots.
    levels[0][999] = os.urandom(32)
    with pytest.raises(InvalidProof):
        verify_consistency(
            1000, 70_100, consistency_from_tiles(1000, 70_100, fetch), roots[1000], roots[70_100]
        )


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.keys = log_keys()
        self.log_dir, self.witness_dir = tmp_path / "log", tmp_path / "witness"
        self.log_dir.mkdir()
        self.witness_dir.mkdir()
        self.leaves: list[bytes] = []

    def grow(self, count: int) -> tuple[Checkpoint, bytes]:
        self.leaves += random_leaves(count, ACTOR)
        checkpoint = write_log(self.log_dir, self.leaves, self.keys)
        return checkpoint, (self.log_dir / "checkpoint").read_bytes()

    def cosigned(self, note: bytes) -> None:
        path = self.witness_dir / monitoring_path(ORIGIN)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(note)

    def signed(self, checkpoint: Checkpoint, keys: object = None) -> bytes:
        signers = (keys or self.keys).signers  # type: ignore[attr-defined]
        return sign_note(checkpoint.text(), signers).to_bytes()


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


@pytest.fixture
def clients(world: World) -> Iterator[tuple[TlogClient, TlogClient]]:
    with (
        serving_directory(world.log_dir) as log_url,
        serving_directory(world.witness_dir) as witness_url,
        TlogClient(log_url) as log,
        TlogClient(witness_url) as witness,
    ):
        yield log, witness


def _check(
    world: World, clients: tuple[TlogClient, TlogClient], ours: Checkpoint, note: bytes
) -> str:
    log, witness = clients
    view = check_witness(witness, log, world.keys.verifiers(), ours, note)
    return view.status


def test_the_witness_views_that_agree(world: World, clients: tuple[TlogClient, TlogClient]) -> None:
    old, old_note = world.grow(300)
    assert _check(world, clients, old, old_note) == "not-cosigned"
    world.cosigned(old_note)
    assert _check(world, clients, old, old_note) == "same"
    new, new_note = world.grow(70_000)
    # The witness cosigned 300, the monitor verified 70,300: joined by the tiles.
    assert _check(world, clients, new, new_note) == "behind"
    # The witness is ahead of the monitor (which verified 300): joined by the tiles of 70,300.
    world.cosigned(new_note)
    assert _check(world, clients, old, old_note) == "ahead"


def test_a_witness_note_not_signed_by_the_log_is_refused(
    world: World, clients: tuple[TlogClient, TlogClient]
) -> None:
    ours, note = world.grow(10)
    world.cosigned(world.signed(Checkpoint(ORIGIN, 10, os.urandom(32)), log_keys()))
    assert _check(world, clients, ours, note) == "refused"


@pytest.mark.parametrize("size", [300, 100, 1000], ids=["same-size", "smaller", "larger"])
def test_a_split_view_shown_to_the_witness_is_an_alarm(
    world: World, clients: tuple[TlogClient, TlogClient], size: int
) -> None:
    ours, note = world.grow(300)
    if size > 300:
        world.grow(size - 300)  # the log's tiles of the larger size exist
    # The log signed another tree for the witness than the one it showed the monitor.
    world.cosigned(world.signed(Checkpoint(ORIGIN, size, os.urandom(32))))
    with pytest.raises(LogInconsistent) as raised:
        _check(world, clients, ours, note)
    assert raised.value.kind == "split-view"
    assert raised.value.evidence[0] == note
