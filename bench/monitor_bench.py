"""Issue 15: a monitor catching up on 10^6 entries from the static API on loopback, against
the floor of reading the same tile and bundle bytes from local files and hashing them.

The log is the registry's own: 10^6 codes in one bulk batch (and the state commitment after
them), written by ``registry.tlogpublish`` (what ``tracemark tiles publish`` runs), built once
and kept under the system's temporary directory (``--rebuild`` to build again). It is served
by ``bench.staticserver`` (the standard library's file server, HTTP/1.1) in a process of its
own. Each round, interleaved:

- ``monitor``: ``verifier.monitor.Monitor.step`` from an empty state directory: the
  checkpoint and its Ed25519 and ML-DSA-44 signatures, every entry bundle and tile fetched
  over HTTP, the bundles hashed to their level-0 tiles, the tiles hashed up to the signed
  root, the leaves scanned for a watched creator, the state saved;
- ``floor``: one Python process reading the same files (bundles and every tile) and doing
  the hashing only: each leaf hashed, compared with its tile, each full tile's 255 interior
  hashes, the root; no HTTP, no signature, no scan, no state.

``python -m bench.monitor_bench [--entries N] [--rounds R] [--rebuild]``; results in
``bench/results/monitor.json``. Target: the monitor within 2x the floor.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import save, sign_code_batch
from registry.tlogtiles import encode_index

ORIGIN = "bench.tracemark.example/tlog"
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
BUILD_TIMEOUT = 1800.0
"""Seconds a build may take (10^6 codes: ~1 minute of ingest, ~1 of publishing)."""


def _cache(entries: int) -> Path:
    return Path(tempfile.gettempdir()) / "tracemark-bench" / f"monitor-{entries}"


def build(entries: int, rebuild: bool) -> dict[str, Any]:
    """The published log of ``entries`` codes (cached), and what a monitor needs to follow it."""
    cache = _cache(entries)
    meta = cache / "meta.json"
    if meta.exists() and not rebuild:
        loaded: dict[str, Any] = json.loads(meta.read_text())
        return loaded
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    started = time.perf_counter()
    from eth_account import Account

    from registry.codesfile import prepare_code_batch
    from registry.creator import CreatorKeys
    from registry.db import create_db_engine
    from registry.eip712 import DEV_DOMAIN
    from registry.logkeys import LogNoteKeys
    from registry.migrate import upgrade
    from registry.service import Registry
    from registry.tlogpublish import publish

    codes = cache / "codes.txt"
    rng = random.Random(15)
    with codes.open("w") as out:
        for _ in range(entries):
            code = "".join(rng.choices(ALPHABET, k=16))
            out.write(f"{code[:4]}-{code[4:8]}-{code[8:12]}-{code[12:]}\n")
    keys = LogNoteKeys.from_seeds(ORIGIN, os.urandom(32), os.urandom(32))
    engine = create_db_engine(f"sqlite:///{cache / 'registry.db'}")
    upgrade(engine)
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=os.urandom(32),
        note_keys=keys,
    )
    creator = CreatorKeys(Account.create(), os.urandom(32))
    with codes.open(newline="") as source:
        batch = prepare_code_batch(source, creator.require_code_key())
    request = sign_code_batch(registry, creator, batch, product="bench-card", new_product=True)
    registry.register_batch(request, batch.fingerprints())
    published = publish(engine, cache / "published")
    engine.dispose()
    (cache / "registry.db").unlink()
    data = {
        "entries": entries,
        "tree_size": published.tree_size,
        "origin": ORIGIN,
        "vkeys": list(keys.vkeys()),
        "creator": creator.address,
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    meta.write_text(json.dumps(data))
    return data


# -- the floor ------------------------------------------------------------------------------------


def floor(directory: Path, tree_size: int) -> bytes:
    """Read every bundle and tile of the tree and hash them to its root, in this process."""
    sha256 = hashlib.sha256
    record = 226
    count = tree_size
    level = 0
    nodes_above: list[bytes] = []
    edges: list[list[bytes]] = []
    # Level 0: the bundles' leaves, hashed and compared with their tiles.
    for index in range((count + 255) // 256):
        width = min(256, count - index * 256)
        name = _path(index, width)
        bundle = bytearray((directory / "tile" / "entries" / name).read_bytes())
        tile = (directory / "tile" / "0" / name).read_bytes()
        bundle[1::record] = bytes(width)
        view = memoryview(bundle)
        hashes = [sha256(view[o : o + 225]).digest() for o in range(1, len(bundle), record)]
        if b"".join(hashes) != tile:
            raise SystemExit(f"floor: bundle {index} does not hash to its tile")
        if width == 256:
            nodes_above.append(_mth(hashes))
        else:
            edges.append(hashes)
    if count % 256 == 0:
        edges.append([])
    # The levels above: each tile read and compared with the nodes computed below.
    while count >> (8 * (level + 1)):
        level += 1
        count_here = tree_size >> (8 * level)
        below, nodes_above = nodes_above, []
        for index in range((count_here + 255) // 256):
            width = min(256, count_here - index * 256)
            tile = (directory / "tile" / str(level) / _path(index, width)).read_bytes()
            part = below[index * 256 : index * 256 + width]
            if b"".join(part) != tile:
                raise SystemExit(f"floor: tile {level}/{index} differs")
            if width == 256:
                nodes_above.append(_mth(part))
            else:
                edges.append(part)
        if count_here % 256 == 0:
            edges.append([])
    subtrees = []
    for hashes in reversed(edges):
        begin = 0
        for bit in reversed(range(9)):
            if len(hashes) & (1 << bit):
                subtrees.append(_mth(hashes[begin : begin + (1 << bit)]))
                begin += 1 << bit
    root = subtrees[-1]
    for left in reversed(subtrees[:-1]):
        root = sha256(b"\x01" + left + root).digest()
    return root


def _mth(hashes: list[bytes]) -> bytes:
    sha256 = hashlib.sha256
    row = hashes
    while len(row) > 1:
        # zip drops an odd last node: promoted unchanged below (RFC 6962's shape).
        pairs = zip(row[::2], row[1::2], strict=False)
        parents = [sha256(b"\x01" + a + b).digest() for a, b in pairs]
        if len(row) & 1:
            parents.append(row[-1])
        row = parents
    return row[0]


def _path(index: int, width: int) -> str:
    """A tile's or bundle's name below its level: the spec's encoding, ``registry.tlogtiles``."""
    return encode_index(index) + ("" if width == 256 else f".p/{width}")


# -- the monitor ----------------------------------------------------------------------------------


def monitor_once(url: str, meta: dict[str, Any], workdir: Path, creator: str) -> dict[str, Any]:
    from registry.eip712 import address_bytes
    from verifier.monitor import Monitor
    from verifier.monitorstate import LogIdentity, StateDir
    from verifier.tlogclient import TlogClient

    state = workdir / "state"
    shutil.rmtree(state, ignore_errors=True)
    started = time.perf_counter()
    with TlogClient(url) as client, StateDir(state) as state_dir:
        identity = LogIdentity(
            client.prefix, meta["origin"], tuple(meta["vkeys"]), (address_bytes(creator),)
        )
        follower = Monitor(client, state_dir, state_dir.load(identity), ())
        report = follower.step(lambda report: None)
    elapsed = time.perf_counter() - started
    assert report.checkpoint.size == meta["tree_size"]
    return {"seconds": elapsed, "goods_added": report.goods_added}


def _serve(directory: Path) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.staticserver", str(directory), "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()  # "serving DIR on 127.0.0.1:PORT"
    if not line:
        server.kill()
        raise SystemExit("the static file server did not start")
    return server, "http://" + line.rsplit(" ", 1)[1].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        build(args.entries, args.rebuild)
        return
    if args.rebuild or not (_cache(args.entries) / "meta.json").exists():
        # The build in a process of its own, killed past BUILD_TIMEOUT.
        command = [sys.executable, "-m", "bench.monitor_bench", "--build-only"]
        command += ["--entries", str(args.entries), *(["--rebuild"] if args.rebuild else [])]
        subprocess.run(command, check=True, timeout=BUILD_TIMEOUT)
    meta = build(args.entries, rebuild=False)
    directory = _cache(args.entries) / "published"
    elsewhere = "0x" + "ab" * 20  # a creator with no goods in this log
    floors: list[float] = []
    monitors: list[float] = []
    own: list[float] = []
    server, url = _serve(directory)
    try:
        with tempfile.TemporaryDirectory() as name:
            workdir = Path(name)
            monitor_once(url, meta, workdir, elsewhere)  # untimed: warms the page cache
            for _ in range(args.rounds):
                started = time.perf_counter()
                floor(directory, meta["tree_size"])
                floors.append(time.perf_counter() - started)
                monitors.append(monitor_once(url, meta, workdir, elsewhere)["seconds"])
            # Informational: watching the creator of every entry (10^6 goods recorded).
            own.append(monitor_once(url, meta, workdir, meta["creator"])["seconds"])
    finally:
        server.terminate()
        server.wait(timeout=10)
    floor_median = statistics.median(floors)
    monitor_median = statistics.median(monitors)
    result = {
        "entries": args.entries,
        "tree_size": meta["tree_size"],
        "build_seconds": meta["build_seconds"],
        "rounds": args.rounds,
        "load_average": list(os.getloadavg()),
        "monitor_seconds_median": round(monitor_median, 3),
        "monitor_seconds": [round(s, 3) for s in monitors],
        "floor_seconds_median": round(floor_median, 3),
        "floor_seconds": [round(s, 3) for s in floors],
        "ratio": round(monitor_median / floor_median, 2),
        "target_ratio": 2.0,
        "monitor_watching_every_good_seconds": [round(s, 3) for s in own],
    }
    # A smaller trial run never overwrites the 10^6 result the README quotes.
    path = save("monitor" if args.entries == 1_000_000 else f"monitor-{args.entries}", result)
    print(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
