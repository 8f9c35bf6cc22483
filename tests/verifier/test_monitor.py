"""The monitor against a log served by a plain static file server on loopback: catching up,
following, watched goods, and every alarm (split view, rollback, rewritten history, edited
tiles) leaving the state where it was; restarts from the state directory."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.staticserver import serving_directory
from registry.attestations import platform_key_subject
from registry.checkpoint import Checkpoint
from registry.errors import ConfigurationError, StorageBusy
from registry.leaf import NO_GOOD, EntryKind, encode_leaf, subject_fingerprint
from registry.logkeys import LogNoteKeys
from registry.merkle import root_from_leaf_hashes
from registry.tlogtiles import TileRef, checkpoint_tiles, encode_bundle
from tests.verifier.tlogfixture import (
    ORIGIN,
    leaf,
    level_nodes,
    log_keys,
    random_leaves,
    vkeys,
    write_checkpoint,
    write_log,
)
from verifier.monitor import CheckpointInvalid, Monitor, StepReport
from verifier.monitorstate import GOOD_RECORD, LogIdentity, StateDir
from verifier.tiledtree import (
    EdgeExtension,
    LogInconsistent,
    TreeEdge,
    bundle_leaf_hashes,
    parse_bundle,
)
from verifier.tlogclient import TlogClient

ALICE = bytes.fromhex("a1" * 20)  # the watched creator
BOB = bytes.fromhex("b0" * 20)  # another creator
REGISTRY = bytes.fromhex("12" * 20)  # the actor of TRANSFER entries


# -- the edge, without HTTP --------------------------------------------------------------------


def _extend(edge: TreeEdge, leaves: list[bytes], levels: list[list[bytes]], size: int) -> TreeEdge:
    extension = EdgeExtension(edge, size)
    for index, width in extension.level0:
        bundle = parse_bundle(encode_bundle(leaves[index * 256 : index * 256 + width]), width)
        tile = b"".join(levels[0][index * 256 : index * 256 + width])
        extension.add_level0(index, tile, bundle_leaf_hashes(bundle))
    return extension.finish(
        lambda wanted: [b"".join(levels[lv][n * 256 : n * 256 + w]) for lv, n, w in wanted]
    )


def test_the_edge_follows_every_tile_boundary() -> None:
    leaves = random_leaves(65_537 + 300, ALICE)
    levels = level_nodes(leaves)
    sizes = [1, 2, 255, 256, 257, 511, 512, 513, 65_535, 65_536, 65_537, 65_537 + 300]
    edge = TreeEdge(0)
    for size in sizes:
        edge = _extend(edge, leaves, levels, size)
        assert edge.root() == root_from_leaf_hashes(levels[0][:size])
    # The spec's example of 70,000 leaves: partial tiles of 112, 17 and 1 hashes.
    more = random_leaves(70_000 - len(leaves), ALICE)
    leaves += more
    edge = _extend(edge, leaves, level_nodes(leaves), 70_000)
    assert [len(level) // 32 for level in edge.levels] == [112, 17, 1]


def test_catching_up_in_one_step_equals_following_step_by_step() -> None:
    leaves = random_leaves(1_000, ALICE)
    levels = level_nodes(leaves)
    stepped = TreeEdge(0)
    for size in (3, 256, 700, 1_000):
        stepped = _extend(stepped, leaves, levels, size)
    assert stepped == _extend(TreeEdge(0), leaves, levels, 1_000)


def test_a_tile_that_rewrites_the_verified_edge_is_a_fork() -> None:
    leaves = random_leaves(300, ALICE)
    edge = _extend(TreeEdge(0), leaves, level_nodes(leaves), 100)
    forked = leaves[:50] + random_leaves(250, ALICE)
    with pytest.raises(LogInconsistent) as raised:
        _extend(edge, forked, level_nodes(forked), 300)
    assert raised.value.kind == "fork"


def test_a_bundle_with_another_leaf_size_is_refused() -> None:
    with pytest.raises(LogInconsistent, match="224"):
        parse_bundle(encode_bundle([bytes(224), bytes(223)]), 2)
    with pytest.raises(LogInconsistent):
        parse_bundle(encode_bundle([bytes(224)]) + b"\x00", 1)


# -- a log on loopback --------------------------------------------------------------------------


class Log:
    """A log written by the reference (``tlogfixture``) into a served directory."""

    def __init__(self, directory: Path, keys: LogNoteKeys) -> None:
        self.directory, self.keys = directory, keys
        self.leaves: list[bytes] = []

    def append(self, *leaves: bytes) -> Checkpoint:
        self.leaves += leaves
        return write_log(self.directory, self.leaves, self.keys)


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return Log(tmp_path / "log", log_keys())


@pytest.fixture
def url(log: Log) -> Iterator[str]:
    log.directory.mkdir()
    with serving_directory(log.directory) as served:
        yield served


def _monitor(url: str, log: Log, state: Path, **given: object) -> tuple[Monitor, StateDir]:
    client = TlogClient(url)
    state_dir = StateDir(state)
    identity = LogIdentity(
        prefix=client.prefix,
        origin=ORIGIN,
        vkeys=tuple(given.get("vkeys", vkeys(log.keys))),  # type: ignore[arg-type]
        creators=tuple(given.get("creators", (ALICE,))),  # type: ignore[arg-type]
    )
    goods = given.get("goods", ())
    platforms = given.get("platforms", ())
    monitor = Monitor(client, state_dir, state_dir.load(identity), goods, platforms)  # type: ignore[arg-type]
    return monitor, state_dir


def _step(monitor: Monitor) -> StepReport:
    return monitor.step(lambda report: None)


def test_catch_up_follow_and_report_a_conflict(url: str, log: Log, tmp_path: Path) -> None:
    good = os.urandom(32)
    log.append(*random_leaves(700, BOB), leaf(EntryKind.REGISTER, good, ALICE))
    monitor, state_dir = _monitor(url, log, tmp_path / "state")
    report = _step(monitor)
    assert (report.old_size, report.checkpoint.size, report.events) == (0, 701, ())
    assert report.goods_added == 1
    # Following: Bob's claim on Alice's good, a transfer and a revocation are reported.
    log.append(
        *random_leaves(10, BOB),
        leaf(EntryKind.CONFLICT, good, BOB),
        leaf(EntryKind.TRANSFER, good, REGISTRY),
        leaf(EntryKind.REVOKE, good, ALICE),
        leaf(EntryKind.CONFLICT, os.urandom(32), BOB),  # not Alice's: not reported
    )
    report = _step(monitor)
    assert (report.old_size, report.checkpoint.size) == (701, 715)
    assert [(e.event, e.leaf_index, e.owner) for e in report.events] == [
        ("CONFLICT", 711, ALICE),
        ("TRANSFER", 712, ALICE),
        ("REVOKE", 713, ALICE),
    ]
    assert report.events[0].to_json()["actor"].lower() == "0x" + BOB.hex()
    # Nothing new: the same checkpoint is a step with nothing in it.
    assert _step(monitor).events == ()
    state_dir.close()


def test_a_register_and_its_conflict_in_one_bundle(url: str, log: Log, tmp_path: Path) -> None:
    good, platform_good = os.urandom(32), os.urandom(32)
    identity = subject_fingerprint(EntryKind.CREATOR_IDENTITY, ALICE)
    log.append(
        leaf(EntryKind.REGISTER, good, ALICE),
        leaf(EntryKind.CONFLICT, good, BOB),
        leaf(EntryKind.REGISTER, platform_good, BOB),
        leaf(EntryKind.CONFLICT, os.urandom(32), ALICE),
        subject_leaf(EntryKind.CREATOR_IDENTITY, identity),
        subject_leaf(
            EntryKind.CREATOR_IDENTITY, subject_fingerprint(EntryKind.CREATOR_IDENTITY, BOB)
        ),
        subject_leaf(EntryKind.KEY_HANDOVER, os.urandom(32)),
        leaf(EntryKind.TRANSFER, platform_good, REGISTRY),
    )
    monitor, state_dir = _monitor(url, log, tmp_path / "state", goods=[platform_good])
    events = _step(monitor).events
    assert [(e.event, e.leaf_index, e.owner) for e in events] == [
        ("CONFLICT", 1, ALICE),
        ("REGISTER", 2, None),
        ("CONFLICT", 3, ALICE),
        ("CREATOR_IDENTITY", 4, ALICE),
        ("KEY_HANDOVER", 6, None),
        ("TRANSFER", 7, None),
    ]
    assert events[2].reason.startswith("your claim")
    state_dir.close()


def test_a_key_enrolled_in_a_watched_platforms_name(url: str, log: Log, tmp_path: Path) -> None:
    """Every PLATFORM_KEY entry (kind 10) in a watched platform's name is reported, whoever
    enrolled it; another platform's are not."""
    log.append(
        subject_leaf(EntryKind.PLATFORM_KEY, platform_key_subject("cardhub")),
        subject_leaf(EntryKind.PLATFORM_KEY, platform_key_subject("keyshop")),
        *random_leaves(5, BOB),
    )
    monitor, state_dir = _monitor(url, log, tmp_path / "state", platforms=["cardhub"])
    events = _step(monitor).events
    assert [(e.event, e.leaf_index, e.owner) for e in events] == [("PLATFORM_KEY", 0, None)]
    assert "platform cardhub" in events[0].reason
    # Following: a rotation later in the log is reported too.
    log.append(subject_leaf(EntryKind.PLATFORM_KEY, platform_key_subject("cardhub")))
    assert [(e.event, e.leaf_index) for e in _step(monitor).events] == [("PLATFORM_KEY", 7)]
    state_dir.close()
    unwatched, other_state = _monitor(url, log, tmp_path / "other")
    assert _step(unwatched).events == ()
    other_state.close()


def subject_leaf(kind: EntryKind, fingerprint: bytes) -> bytes:
    return encode_leaf(kind, NO_GOOD, fingerprint, REGISTRY, os.urandom(32), 1_700_000_000)


def test_a_split_view_is_an_alarm_and_moves_nothing(url: str, log: Log, tmp_path: Path) -> None:
    first = log.append(*random_leaves(300, BOB))
    monitor, state_dir = _monitor(url, log, tmp_path / "state")
    _step(monitor)
    saved = (tmp_path / "state" / "state.json").read_bytes()
    # The log key signs another root for the same size (a fault only a test can inject).
    write_checkpoint(log.directory, Checkpoint(ORIGIN, 300, os.urandom(32)), log.keys)
    with pytest.raises(LogInconsistent) as raised:
        _step(monitor)
    assert raised.value.kind == "split-view"
    assert (tmp_path / "state" / "state.json").read_bytes() == saved
    # A new monitor from the same state sees it too: the first checkpoint was kept.
    state_dir.close()
    again, state_dir = _monitor(url, log, tmp_path / "state")
    assert again.state.checkpoint == first
    with pytest.raises(LogInconsistent, match="different roots"):
        _step(again)
    state_dir.close()


def test_a_rollback_is_an_alarm(url: str, log: Log, tmp_path: Path) -> None:
    log.append(*random_leaves(300, BOB))
    older = Checkpoint(ORIGIN, 100, root_from_leaf_hashes(level_nodes(log.leaves[:100])[0]))
    monitor, state_dir = _monitor(url, log, tmp_path / "state")
    _step(monitor)
    write_checkpoint(log.directory, older, log.keys)
    with pytest.raises(LogInconsistent) as raised:
        _step(monitor)
    assert raised.value.kind == "rollback"
    state_dir.close()


def test_a_changed_tile_is_refused(url: str, log: Log, tmp_path: Path) -> None:
    log.append(*random_leaves(600, BOB))
    path = log.directory / TileRef(0, 1, 256).path()
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    monitor, state_dir = _monitor(url, log, tmp_path / "state")
    with pytest.raises(LogInconsistent) as raised:
        _step(monitor)
    assert raised.value.kind == "tiles"
    assert not (tmp_path / "state" / "state.json").exists()
    state_dir.close()


def test_a_changed_upper_tile_is_refused(url: str, log: Log, tmp_path: Path) -> None:
    log.append(*random_leaves(600, BOB))
    path = log.directory / TileRef(1, 0, 2).path()
    path.write_bytes(path.read_bytes()[:32] + os.urandom(32))
    monitor, state_dir = _monitor(url, log, tmp_path / "state")
    with pytest.raises(LogInconsistent, match="tile 1/0"):
        _step(monitor)
    state_dir.close()


def test_rewritten_history_is_an_alarm(url: str, log: Log, tmp_path: Path) -> None:
    log.append(*random_leaves(300, BOB))
    monitor, state_dir = _monitor(url, log, tmp_path / "state")
    _step(monitor)
    # Another tree, consistent in itself, that replaces leaf 10: its tiles and bundles are
    # all rewritten and its checkpoint is signed by the log key.
    shutil.rmtree(log.directory / "tile")
    log.leaves[10] = leaf(EntryKind.REGISTER, os.urandom(32), BOB)
    log.append(*random_leaves(300, BOB))
    with pytest.raises(LogInconsistent) as raised:
        _step(monitor)
    assert raised.value.kind == "fork"
    state_dir.close()


def test_a_checkpoint_under_another_key_is_refused(url: str, log: Log, tmp_path: Path) -> None:
    log.append(*random_leaves(3, BOB))
    monitor, state_dir = _monitor(url, log, tmp_path / "state", vkeys=vkeys(log_keys())[:1])
    with pytest.raises(CheckpointInvalid):
        _step(monitor)
    state_dir.close()


def test_a_restart_continues_from_the_state(url: str, log: Log, tmp_path: Path) -> None:
    good = os.urandom(32)
    log.append(leaf(EntryKind.REGISTER, good, ALICE), *random_leaves(400, BOB))
    monitor, state_dir = _monitor(url, log, tmp_path / "state")
    _step(monitor)
    state_dir.close()
    log.append(leaf(EntryKind.CONFLICT, good, BOB))
    # Without --vkey and --creator: the saved ones.
    again, state_dir = _monitor(url, log, tmp_path / "state", vkeys=(), creators=())
    report = _step(again)
    assert report.old_size == 401
    assert [(e.event, e.leaf_index) for e in report.events] == [("CONFLICT", 401)]
    state_dir.close()


def test_a_step_that_fails_before_saving_leaves_no_trace(
    url: str, log: Log, tmp_path: Path
) -> None:
    log.append(leaf(EntryKind.REGISTER, os.urandom(32), ALICE))
    monitor, state_dir = _monitor(url, log, tmp_path / "state")
    _step(monitor)
    saved = (tmp_path / "state" / "state.json").read_bytes()
    good = os.urandom(32)
    log.append(leaf(EntryKind.REGISTER, good, ALICE), leaf(EntryKind.CONFLICT, good, BOB))

    def crash(report: StepReport) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        monitor.step(crash)
    assert (tmp_path / "state" / "state.json").read_bytes() == saved
    # A crash after the goods were appended but before the state was replaced: cut off.
    with (tmp_path / "state" / "goods.bin").open("ab") as stream:
        stream.write(os.urandom(GOOD_RECORD))
    state_dir.close()
    again, state_dir = _monitor(url, log, tmp_path / "state")
    assert (tmp_path / "state" / "goods.bin").stat().st_size == GOOD_RECORD
    assert [e.event for e in _step(again).events] == ["CONFLICT"]
    state_dir.close()


def test_the_state_is_pinned_and_locked(url: str, log: Log, tmp_path: Path) -> None:
    log.append(*random_leaves(2, BOB))
    monitor, state_dir = _monitor(url, log, tmp_path / "state")
    _step(monitor)
    with pytest.raises(StorageBusy):
        StateDir(tmp_path / "state")
    state_dir.close()
    with pytest.raises(ConfigurationError, match="creators"):
        _monitor(url, log, tmp_path / "state", creators=(BOB,))
    with pytest.raises(ConfigurationError, match="vkeys"):
        _monitor(url, log, tmp_path / "state", vkeys=vkeys(log_keys()))
    with pytest.raises(ConfigurationError, match="vkey"):
        _monitor(url, log, tmp_path / "fresh", vkeys=())


@pytest.mark.slow
def test_catching_up_on_a_hundred_thousand_entries(url: str, log: Log, tmp_path: Path) -> None:
    goods = [os.urandom(32) for _ in range(3)]
    bulk = random_leaves(100_000 - 3, ALICE)
    log.append(*(leaf(EntryKind.REGISTER, g, ALICE) for g in goods), *bulk)
    monitor, state_dir = _monitor(url, log, tmp_path / "state")
    report = _step(monitor)
    assert (report.checkpoint.size, report.goods_added, report.events) == (100_000, 100_000, ())
    log.append(*random_leaves(5, BOB), leaf(EntryKind.CONFLICT, goods[1], BOB))
    report = _step(monitor)
    assert [(e.event, e.leaf_index) for e in report.events] == [("CONFLICT", 100_005)]
    state_dir.close()


FLIPS = 20
"""Random bit flips tried in each resource a catch-up reads."""


@pytest.mark.parametrize("start", [0, 300])
def test_any_flipped_byte_of_any_resource_is_caught(start: int) -> None:
    leaves = random_leaves(600, ALICE)
    levels = level_nodes(leaves)
    served: dict[TileRef, bytes] = {}
    for ref in checkpoint_tiles(600):
        begin = ref.index * 256
        served[ref] = (
            encode_bundle(leaves[begin : begin + ref.width])
            if ref.level is None
            else b"".join(levels[ref.level][begin : begin + ref.width])
        )
    edge = _extend(TreeEdge(0), leaves, levels, start) if start else TreeEdge(0)
    root = root_from_leaf_hashes(levels[0])

    fetched: set[TileRef] = set()

    def catch_up(resources: dict[TileRef, bytes]) -> TreeEdge:
        def get(ref: TileRef) -> bytes:
            fetched.add(ref)
            return resources[ref]

        extension = EdgeExtension(edge, 600)
        for index, width in extension.level0:
            bundle = parse_bundle(get(TileRef(None, index, width)), width)
            tile = get(TileRef(0, index, width))
            extension.add_level0(index, tile, bundle_leaf_hashes(bundle))
        grown = extension.finish(lambda wanted: [get(TileRef(*w)) for w in wanted])
        if grown.root() != root:
            raise LogInconsistent("tiles", "root")
        return grown

    assert catch_up(served).root() == root
    # Every resource the catch-up reads (from 300: not bundle 0 nor tile 0/0, verified before).
    assert len(fetched) == (7 if start == 0 else 5)
    rng = random.Random(start)
    flipped = 0
    for ref in sorted(fetched, key=lambda r: (r.level is not None, r.level or 0, r.index)):
        data = served[ref]
        for _ in range(FLIPS):
            position = rng.randrange(len(data))
            mutated = bytearray(data)
            mutated[position] ^= 1 << rng.randrange(8)
            with pytest.raises(LogInconsistent):
                catch_up({**served, ref: bytes(mutated)})
            flipped += 1
    assert flipped == len(fetched) * FLIPS
