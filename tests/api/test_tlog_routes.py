"""The static read API (C2SP tlog-tiles) over HTTP: the published checkpoint, tiles and entry
bundles equal to a tree recomputed from the entries' own leaves, partial tiles growing into
full ones, a client computing the checkpoint's root from the tiles alone, and every bad path or
tile beyond the checkpoint answered 404 problem+json (SQLite and PostgreSQL)."""

from __future__ import annotations

import gzip

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.app import create_app
from api.ratelimit import Limit, RateLimits
from api.routes.tlog import accepts_gzip
from registry import log
from registry.checkpoint import Checkpoint, open_checkpoint
from registry.checkpoints import (
    SignedCheckpoint,
    checkpoint_at,
    checkpoints_t,
    latest_published_checkpoint,
    publish_checkpoint,
    store_checkpoint,
)
from registry.creator import CreatorKeys
from registry.db import read_transaction, write_transaction
from registry.logkeys import LogNoteKeys
from registry.merkle import hash_leaf, root_from_leaf_hashes
from registry.service import Registry
from registry.tlogtiles import (
    TileRef,
    checkpoint_tiles,
    parse_bundle,
    root_from_tiles,
    root_tiles,
    split_tile,
)
from tests.conftest import Clock
from tests.registry.test_registration import _batch, _batch_request, _codes

PROBLEM = "application/problem+json"
ORIGIN = "127.0.0.1:8000/tlog"
ROOMY = RateLimits(anonymous=Limit(1000, 1000))


def grow(registry: Registry, creator: CreatorKeys, clock: Clock, codes: int, tag: str) -> int:
    """A bulk batch of ``codes`` codes through the registry's own path; the new log size."""
    batch = _batch(creator, _codes(codes, prefix=tag))
    clock.advance(1)
    registry.register_batch(
        _batch_request(creator, batch, clock(), tag.lower()), batch.fingerprints()
    )
    head = registry.latest_tree_head()
    assert head is not None
    return head.tree_size


def publish_latest(registry: Registry) -> SignedCheckpoint:
    """The checkpoint of the latest head, published (the registry signs one with each head and
    publishes it at once without a witness policy; this makes sure of both)."""
    with write_transaction(registry.engine) as conn:
        head = log.latest_tree_head(conn)
        assert head is not None
        stored = checkpoint_at(conn, head.tree_size)
        if stored is None:
            store_checkpoint(
                conn,
                registry.checkpoint_signer,
                size=head.tree_size,
                root=head.root,
                now=head.timestamp,
            )
        elif not stored.published:
            publish_checkpoint(conn, head.tree_size, (), now=head.timestamp)
    with read_transaction(registry.engine) as conn:
        published = latest_published_checkpoint(conn)
    assert published is not None and published.checkpoint.size == head.tree_size
    assert published.checkpoint.root == head.root
    return published


def log_keys(registry: Registry) -> LogNoteKeys:
    keys = registry.checkpoint_signer.keys
    assert keys.origin == ORIGIN
    return keys


def reference_tiles(registry: Registry, size: int) -> dict[TileRef, bytes]:
    """Every tile and bundle of size, recomputed from scratch from the entries' leaf data."""
    leaves = [registry.entry_at(i).leaf_data() for i in range(size)]
    rows = {0: [hash_leaf(leaf) for leaf in leaves]}
    level = 0
    while len(rows[level]) >= 256:
        below = rows[level]
        rows[level + 1] = [
            root_from_leaf_hashes(below[i : i + 256]) for i in range(0, len(below) - 255, 256)
        ]
        level += 1
    expected = {}
    for ref in checkpoint_tiles(size):
        begin = ref.index * 256
        if ref.is_entries:
            framed = [len(leaf).to_bytes(2, "big") + leaf for leaf in leaves[begin : ref.end]]
            expected[ref] = b"".join(framed)
        else:
            expected[ref] = b"".join(rows[ref.level or 0][begin : ref.end])
    return expected


@pytest.fixture
def client(registry: Registry) -> TestClient:
    return TestClient(create_app(registry, limits=ROOMY, telemetry_interval=0.05))


def get(client: TestClient, ref: TileRef, **headers: str) -> bytes:
    answer = client.get("/tlog/" + ref.path(), headers=headers)
    assert answer.status_code == 200, (ref.path(), answer.text)
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    return answer.content


def test_served_tiles_are_the_tree_recomputed_and_partials_grow_into_full_tiles(
    registry: Registry, creator: CreatorKeys, clock: Clock, client: TestClient
) -> None:
    served: dict[TileRef, bytes] = {}
    for codes, tag in [(200, "A"), (60, "B"), (1, "C"), (300, "D")]:
        size = grow(registry, creator, clock, codes, tag)
        published = publish_latest(registry)
        answer = client.get("/tlog/checkpoint")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"
        assert answer.headers["cache-control"] == "public, max-age=2"
        assert answer.content == published.to_bytes()
        expected = reference_tiles(registry, size)
        for ref, data in expected.items():
            assert get(client, ref) == data, ref.path()
        # The tiles of every earlier checkpoint are still served, byte for byte: a partial
        # one is now a prefix of the wider (or full) tile it grew into.
        for ref, data in served.items():
            assert get(client, ref) == data, ref.path()
            grown = next(t for t in expected if (t.level, t.index) == (ref.level, ref.index))
            assert expected[grown].startswith(data)
        served.update(expected)
    assert size > 512 and any(t.level == 1 for t in served)


def test_a_client_verifies_the_checkpoint_from_the_served_tiles_alone(
    registry: Registry, creator: CreatorKeys, clock: Clock, client: TestClient
) -> None:
    grow(registry, creator, clock, 700, "R")
    publish_latest(registry)
    checkpoint, _ = open_checkpoint(
        client.get("/tlog/checkpoint").content, log_keys(registry).verifiers(), origin=ORIGIN
    )
    fetched = {ref: get(client, ref) for ref in root_tiles(checkpoint.size)}
    assert root_from_tiles(checkpoint.size, fetched) == checkpoint.root
    # And each entry hashes to its place in the level-0 tile.
    last = TileRef(None, (checkpoint.size - 1) // 256, (checkpoint.size - 1) % 256 + 1)
    entries = parse_bundle(get(client, last), last)
    level0 = split_tile(get(client, TileRef(0, last.index, last.width)), TileRef(0, 0, last.width))
    assert [hash_leaf(entry) for entry in entries] == level0
    # A flipped bit in one tile gives another root.
    ref, data = next(iter(fetched.items()))
    fetched[ref] = bytes([data[0] ^ 1]) + data[1:]
    assert root_from_tiles(checkpoint.size, fetched) != checkpoint.root


def test_nothing_beyond_the_published_checkpoint_is_served(
    registry: Registry, creator: CreatorKeys, clock: Clock, client: TestClient
) -> None:
    assert client.get("/tlog/checkpoint").status_code == 404
    first = grow(registry, creator, clock, 300, "P")
    published = publish_latest(registry)
    # The log grows, but its next checkpoint is held back (a witness quorum not reached).
    second = grow(registry, creator, clock, 300, "Q")
    with write_transaction(registry.engine) as conn:
        if checkpoint_at(conn, second) is not None:
            conn.execute(
                update(checkpoints_t)
                .where(checkpoints_t.c.tree_size == second)
                .values(published_at=None)
            )
    assert client.get("/tlog/checkpoint").content == published.to_bytes()
    width = first % 256
    beyond = [
        TileRef(0, first // 256, width + 1),  # one hash more than the checkpoint has
        TileRef(0, first // 256, 256),  # full in the log, not in the checkpoint
        TileRef(None, first // 256, 256),
        TileRef(0, first // 256 + 1, 1),
        TileRef(1, 0, 2),
        TileRef(2, 0, 1),
    ]
    for ref in beyond:
        answer = client.get("/tlog/" + ref.path())
        assert answer.status_code == 404, ref.path()
        assert answer.headers["content-type"] == PROBLEM
        assert "beyond the published checkpoint" in answer.json()["detail"]
    assert (
        get(client, TileRef(0, first // 256, width))
        == reference_tiles(registry, first)[TileRef(0, first // 256, width)]
    )


BAD_PATHS = [
    "tile/00/000.p/2",
    "tile/64/000.p/2",
    "tile/0/000.p/0",
    "tile/0/000.p/256",
    "tile/0/000.p/02",
    "tile/0/0.p/2",
    "tile/0/x000/000.p/2",
    "tile/0/000/000.p/2",
    "tile/0/000.p/2/",
    "tile/0/000.p",
    "tile/entries/000.p/0",
    "tile/entries/00.p/2",
    "tile/entries/",
    "tile/",
    "tiles/0/000.p/2",
    "checkpoint/",
]


def test_bad_paths_are_404_problems_and_nothing_else(
    registry: Registry, creator: CreatorKeys, clock: Clock, client: TestClient
) -> None:
    assert grow(registry, creator, clock, 1, "Z") == 2  # the code and its state commitment
    publish_latest(registry)
    for good in ("tile/0/000.p/2", "tile/entries/000.p/2", "tile/0/000.p/1"):
        assert client.get("/tlog/" + good).status_code == 200, good
    for path in BAD_PATHS:
        answer = client.get("/tlog/" + path)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.headers["content-type"] == PROBLEM
    # A path longer than any tile's is refused at the door, before it is parsed (THREAT 40:
    # every parameter declares its cap), as invalid input rather than as a missing tile.
    for path in ("tile/0/" + "x001/" * 20 + "000", "tile/entries/" + "x001/" * 20 + "000"):
        answer = client.get("/tlog/" + path)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.headers["content-type"] == PROBLEM


def test_entry_bundles_are_gzipped_when_accepted(
    registry: Registry, creator: CreatorKeys, clock: Clock, client: TestClient
) -> None:
    size = grow(registry, creator, clock, 300, "G")
    publish_latest(registry)
    ref = TileRef(None, 0, 256)
    plain = reference_tiles(registry, size)[ref]
    with client.stream("GET", "/tlog/" + ref.path(), headers={"Accept-Encoding": "gzip"}) as raw:
        assert raw.headers["content-encoding"] == "gzip"
        assert raw.headers["vary"] == "Accept-Encoding"
        body = b"".join(raw.iter_raw())
    assert gzip.decompress(body) == plain and len(body) < len(plain)
    for header in ("identity", "gzip;q=0", "br"):
        answer = client.get("/tlog/" + ref.path(), headers={"Accept-Encoding": header})
        assert "content-encoding" not in answer.headers and answer.content == plain
    # Tiles (random hashes) are never compressed.
    answer = client.get("/tlog/tile/0/000", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in answer.headers


def test_accept_encoding_parsing() -> None:
    assert accepts_gzip("gzip") and accepts_gzip("br, GZIP;q=0.5") and accepts_gzip("*")
    assert accepts_gzip("identity, *;q=0.1")
    assert not accepts_gzip(None) and not accepts_gzip("") and not accepts_gzip("identity")
    assert not accepts_gzip("gzip;q=0") and not accepts_gzip("*;q=0")
    assert not accepts_gzip("gzip;q=0, *") and not accepts_gzip("gzip;q=zero")


def test_anonymous_readers_are_rate_limited_like_the_other_public_reads(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    grow(registry, creator, clock, 1, "L")
    publish_latest(registry)
    tight = TestClient(create_app(registry, limits=RateLimits(anonymous=Limit(0.001, 2))))
    statuses = [tight.get("/tlog/tile/0/000.p/2").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_the_checkpoint_is_the_latest_published_one_verified_by_the_log_keys(
    registry: Registry, creator: CreatorKeys, clock: Clock, client: TestClient
) -> None:
    size = grow(registry, creator, clock, 5, "K")
    publish_latest(registry)
    body = client.get("/tlog/checkpoint").content
    checkpoint, note = open_checkpoint(body, log_keys(registry).verifiers(), origin=ORIGIN)
    head = registry.latest_tree_head()
    assert head is not None
    assert (checkpoint.size, checkpoint.root) == (size, head.root)
    assert Checkpoint.parse(note.text) == checkpoint
