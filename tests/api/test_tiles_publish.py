"""``tracemark tiles publish DIR``: the files equal what ``/tlog`` serves byte for byte, a plain
static server over them is a log a client verifies, runs are incremental and atomic (the
checkpoint last), and bad directories are refused without a change (SQLite and PostgreSQL)."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from registry.checkpoint import open_checkpoint
from registry.creator import CreatorKeys
from registry.service import Registry
from registry.settings import load_settings
from registry.tlogpublish import FULL_TILE_BYTES
from registry.tlogtiles import TileRef, checkpoint_tiles, root_from_tiles, root_tiles
from tests.api.test_cli import Cli
from tests.api.test_tlog_routes import ORIGIN, ROOMY, grow, log_keys, publish_latest
from tests.conftest import Clock


@pytest.fixture
def opened(tmp_path: Path, db_url: str, clock: Clock) -> Registry:
    """A registry opened as the CLI opens it (its data dir, this database)."""
    return Registry.open(
        load_settings(data_dir=tmp_path / "data", database_url=db_url), clock=clock
    )


@pytest.fixture
def cli(tmp_path: Path, db_url: str, opened: Registry) -> Cli:
    runner = Cli(tmp_path)
    runner.env["TRACEMARK_DATABASE_URL"] = db_url
    return runner


def published_files(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def assert_served_equal(registry: Registry, files: dict[str, bytes]) -> None:
    client = TestClient(create_app(registry, limits=ROOMY, telemetry_interval=0.05))
    for name, data in files.items():
        answer = client.get("/tlog/" + name, headers={"Accept-Encoding": "identity"})
        assert answer.status_code == 200, name
        assert answer.content == data, name


@functools.cache
def _quiet_handler(directory: str) -> type[http.server.SimpleHTTPRequestHandler]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=directory, **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """``python -m http.server`` over directory, on a free loopback port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _quiet_handler(str(directory)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def verify_over_http(base: str, registry: Registry) -> int:
    """What a client does: open the checkpoint with the log's keys, compute its root from the
    tiles a plain web server sends. Returns the verified size."""

    def fetch(path: str) -> bytes:
        with urllib.request.urlopen(f"{base}/{path}", timeout=10) as answer:
            return bytes(answer.read())

    checkpoint, _ = open_checkpoint(
        fetch("checkpoint"), log_keys(registry).verifiers(), origin=ORIGIN
    )
    tiles = {ref: fetch(ref.path()) for ref in root_tiles(checkpoint.size)}
    assert root_from_tiles(checkpoint.size, tiles) == checkpoint.root
    return checkpoint.size


def test_publish_writes_what_the_api_serves_and_a_static_server_is_a_verifiable_log(
    opened: Registry, creator: CreatorKeys, clock: Clock, cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "www"
    size = grow(opened, creator, clock, 300, "A")
    publish_latest(opened)
    report = cli.json("tiles", "publish", out)
    expected = {"checkpoint", *(ref.path() for ref in checkpoint_tiles(size))}
    files = published_files(out)
    assert set(files) == expected  # nothing else (no temporary file left behind)
    assert report == {
        "tree_size": size,
        "written": len(expected),
        "kept": 0,
        "directory": str(out),
    }
    assert_served_equal(opened, files)
    with static_server(out) as base:
        assert verify_over_http(base, opened) == size

    # The log grows: the full tiles are kept, the new partials written, the old ones stay.
    first_full = out / TileRef(0, 0, 256).path()
    first_full.write_bytes(b"K" * FULL_TILE_BYTES)  # a kept file is not even read again
    size2 = grow(opened, creator, clock, 250, "B")
    publish_latest(opened)
    line = cli("tiles", "publish", out).stdout
    full_before = sum(ref.is_full for ref in checkpoint_tiles(size))
    new = [ref.path() for ref in checkpoint_tiles(size2)]
    assert line == (
        f"published size {size2:,} to {out}: {len(new) - full_before + 1:,} files written, "
        f"{full_before:,} full ones kept\n"
    )
    assert first_full.read_bytes() == b"K" * FULL_TILE_BYTES
    first_full.unlink()  # written again by the next run
    cli("tiles", "publish", out)
    files = published_files(out)
    assert set(files) == expected | {"checkpoint", *new}
    assert_served_equal(opened, files)
    with static_server(out) as base:
        assert verify_over_http(base, opened) == size2


def test_a_failed_run_leaves_the_previous_checkpoint_and_no_half_file(
    opened: Registry, creator: CreatorKeys, clock: Clock, cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "www"
    grow(opened, creator, clock, 10, "A")
    publish_latest(opened)
    cli("tiles", "publish", out)
    before = published_files(out)
    size = grow(opened, creator, clock, 300, "B")
    publish_latest(opened)
    # A tile's place is taken by a directory: that write fails, the checkpoint is not moved.
    (out / TileRef(0, 1, size - 256).path()).mkdir(parents=True)
    error = cli.error("tiles", "publish", out, expect=3)
    assert error.startswith("error: cannot write") and "tile/0/001.p/" in error
    after = published_files(out)
    assert after["checkpoint"] == before["checkpoint"]
    assert not [name for name in after if "/.tmp-" in name or name.startswith(".tmp-")]
    # A truncated full tile (a crash without its flush) is not taken for a published one.
    (out / TileRef(0, 1, size - 256).path()).rmdir()
    cli("tiles", "publish", out)
    truncated = out / TileRef(0, 0, 256).path()
    truncated.write_bytes(truncated.read_bytes()[:100])
    assert cli.json("tiles", "publish", out)["kept"] == 1  # the full bundle; the tile rewritten
    assert_served_equal(opened, published_files(out))


def test_refusals_change_nothing(
    opened: Registry, creator: CreatorKeys, clock: Clock, cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "www"
    assert "no checkpoint" in cli.error("tiles", "publish", out, expect=4)
    assert not out.exists()
    size = grow(opened, creator, clock, 3, "A")
    publish_latest(opened)
    cli("tiles", "publish", out)
    checkpoint = out / "checkpoint"
    original = checkpoint.read_bytes()
    # A directory holding a newer checkpoint of this log: never moved backwards.
    newer = original.replace(f"\n{size}\n".encode(), f"\n{size + 1000}\n".encode(), 1)
    checkpoint.write_bytes(newer)
    assert "not moving it backwards" in cli.error("tiles", "publish", out, expect=5)
    # Another log's checkpoint, or something that is not one: not overwritten.
    checkpoint.write_bytes(original.replace(ORIGIN.encode(), b"example.com/other", 1))
    assert "example.com/other" in cli.error("tiles", "publish", out, expect=5)
    checkpoint.write_bytes(b"not a checkpoint")
    assert "is not a checkpoint" in cli.error("tiles", "publish", out, expect=3)
    assert checkpoint.read_bytes() == b"not a checkpoint"
    checkpoint.write_bytes(original)
    assert json.loads(cli("tiles", "publish", out, "--json").stdout)["tree_size"] == size


@pytest.mark.slow
def test_publish_across_the_level_two_boundary(
    opened: Registry, creator: CreatorKeys, clock: Clock, cli: Cli, tmp_path: Path
) -> None:
    """65,535 leaves (a bulk batch and its commitment), then 65,537: the level-1 tile becomes
    full and a level-2 tile appears; files, API and a static server agree."""
    out = tmp_path / "www"
    assert grow(opened, creator, clock, 65_534, "A") == 65_535
    publish_latest(opened)
    cli("tiles", "publish", out)
    assert grow(opened, creator, clock, 1, "B") == 65_537
    publish_latest(opened)
    report = cli.json("tiles", "publish", out)
    assert report["kept"] == 2 * 255  # the level-0 tiles and bundles full at 65,535
    files = published_files(out)
    assert {"tile/1/000", "tile/2/000.p/1", "tile/1/000.p/255", "tile/0/256.p/1"} <= set(files)
    assert_served_equal(opened, files)
    with static_server(out) as base:
        assert verify_over_http(base, opened) == 65_537
