"""Merkle log vs pymerkle 7.0.0 on the same 1,000,000 leaves: build + root, and warm proofs.

Run: ``.venv/bin/python -m bench.merkle_bench [--leaves N]``. Prints a table and writes
``bench/results/merkle.json``. Ours: the tiled tree (``registry.tiles``) in memory for the
build, and the log's tiles in a SQLite database for proofs (one query per proof, as served).
Peer: pymerkle's ``InmemoryTree`` for the build and its ``SqliteTree`` for proofs (random
indices, warm: its cache filled by a first pass). Floor: a plain level-by-level build.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
from pathlib import Path

from pymerkle import InmemoryTree, SqliteTree

from bench.common import median_seconds, per_call_median, save
from registry import log, merkle
from registry.db import create_db_engine, read_transaction, write_transaction
from registry.migrate import upgrade
from registry.tiles import MemoryTree
from registry.tilestore import TileCache, TileStore, TreeAppender, tiles_t


def _entries(n: int) -> list[bytes]:
    return [i.to_bytes(8, "big") for i in range(n)]


def build_ours(entries: list[bytes]) -> bytes:
    sha256 = hashlib.sha256
    tree = MemoryTree()
    tree.append([sha256(b"\x00" + e).digest() for e in entries])
    return tree.root()


def build_floor(entries: list[bytes]) -> bytes:
    sha256 = hashlib.sha256
    return merkle.root_from_leaf_hashes([sha256(b"\x00" + e).digest() for e in entries])


def build_pymerkle(entries: list[bytes]) -> bytes:
    tree = InmemoryTree(algorithm="sha256")
    for e in entries:
        tree.append_entry(e)
    return bytes(tree.get_root())


def stored_log(entries: list[bytes], directory: Path) -> str:
    url = f"sqlite:///{directory / 'log.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    sha256 = hashlib.sha256
    with write_transaction(engine) as conn:
        appender = TreeAppender(TileStore(conn, tiles_t), log.lock_log(conn))
        for start in range(0, len(entries), 100_000):
            appender.append(
                [sha256(b"\x00" + e).digest() for e in entries[start : start + 100_000]]
            )
        appender.finish()
        log.set_tree_size(conn, appender.size)
    engine.dispose()
    return url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=2_000)
    args = parser.parse_args()
    n = args.leaves
    entries = _entries(n)

    # -- build all + root (pymerkle is slow: one run of it, as the issue says) -----------------
    ours_root = build_ours(entries)
    assert ours_root == build_floor(entries)
    pym_root = None
    build = {
        "ours_s": median_seconds(lambda: build_ours(entries), 3),
        "floor_level_by_level_s": median_seconds(lambda: build_floor(entries), 3),
    }
    import time

    started = time.perf_counter()
    pym_root = build_pymerkle(entries)
    build["pymerkle_inmemory_s"] = time.perf_counter() - started
    assert pym_root == ours_root, "pymerkle and tracemark disagree on the RFC 9162 root"
    build["speedup_vs_pymerkle"] = build["pymerkle_inmemory_s"] / build["ours_s"]

    # -- proofs from storage, random indices, warm ---------------------------------------------
    rng = random.Random(2026)
    indices = [rng.randrange(n) for _ in range(args.proofs)]
    older = [rng.randint(1, n - 1) for _ in range(args.proofs)]
    with tempfile.TemporaryDirectory() as tmp:
        url = stored_log(entries, Path(tmp))
        engine = create_db_engine(url)
        pym = SqliteTree(str(Path(tmp) / "pymerkle.db"), algorithm="sha256")
        pym.append_entries(entries)
        with read_transaction(engine) as conn:
            # As served: the registry's read path with its cache of immutable tiles ...
            cache = TileCache()
            ours_inclusion = [(lambda i=i: log.inclusion_proof(conn, i, n, cache)) for i in indices]
            ours_consistency = [
                (lambda m=m: log.consistency_proof(conn, m, n, cache)) for m in older
            ]
            # ... and with every tile read from the database.
            raw_inclusion = [(lambda i=i: log.inclusion_proof(conn, i, n)) for i in indices]
            raw_consistency = [(lambda m=m: log.consistency_proof(conn, m, n)) for m in older]
            # Same answers: spot-check our stored proofs against pymerkle's.
            for i in indices[:20]:
                ours = log.inclusion_proof(conn, i, n)
                merkle.verify_inclusion(
                    hashlib.sha256(b"\x00" + entries[i]).digest(), i, n, ours, ours_root
                )
            pym_inclusion = [(lambda i=i: pym.prove_inclusion(i + 1, n)) for i in indices]
            pym_consistency = [(lambda m=m: pym.prove_consistency(m, n)) for m in older]
            every = (
                ours_inclusion,
                ours_consistency,
                raw_inclusion,
                raw_consistency,
                pym_inclusion,
                pym_consistency,
            )
            for calls in every:
                for call in calls:  # warm: every cache and page filled once
                    call()
            proofs = {
                "ours_inclusion_us": per_call_median(ours_inclusion) * 1e6,
                "ours_consistency_us": per_call_median(ours_consistency) * 1e6,
                "ours_uncached_inclusion_us": per_call_median(raw_inclusion) * 1e6,
                "ours_uncached_consistency_us": per_call_median(raw_consistency) * 1e6,
                "pymerkle_sqlite_inclusion_us": per_call_median(pym_inclusion, 3) * 1e6,
                "pymerkle_sqlite_consistency_us": per_call_median(pym_consistency, 3) * 1e6,
            }
        pym.close()
        engine.dispose()
    proofs["inclusion_speedup"] = (
        proofs["pymerkle_sqlite_inclusion_us"] / proofs["ours_inclusion_us"]
    )
    proofs["consistency_speedup"] = (
        proofs["pymerkle_sqlite_consistency_us"] / proofs["ours_consistency_us"]
    )
    proofs["uncached_inclusion_speedup"] = (
        proofs["pymerkle_sqlite_inclusion_us"] / proofs["ours_uncached_inclusion_us"]
    )
    proofs["uncached_consistency_speedup"] = (
        proofs["pymerkle_sqlite_consistency_us"] / proofs["ours_uncached_consistency_us"]
    )
    path = save(
        "merkle", {"leaves": n, "proof_samples": args.proofs, "build": build, "proofs": proofs}
    )
    print(f"leaves: {n:,}")
    print(
        f"build+root  ours {build['ours_s']:.2f} s | floor {build['floor_level_by_level_s']:.2f} s"
        f" | pymerkle {build['pymerkle_inmemory_s']:.2f} s | x{build['speedup_vs_pymerkle']:.1f}"
    )
    print(
        f"inclusion   ours {proofs['ours_inclusion_us']:.0f} us | pymerkle "
        f"{proofs['pymerkle_sqlite_inclusion_us']:.0f} us | x{proofs['inclusion_speedup']:.1f}"
    )
    print(
        f"consistency ours {proofs['ours_consistency_us']:.0f} us | pymerkle "
        f"{proofs['pymerkle_sqlite_consistency_us']:.0f} us | x{proofs['consistency_speedup']:.1f}"
    )
    print(
        f"uncached    inclusion {proofs['ours_uncached_inclusion_us']:.0f} us "
        f"(x{proofs['uncached_inclusion_speedup']:.1f}), consistency "
        f"{proofs['ours_uncached_consistency_us']:.0f} us "
        f"(x{proofs['uncached_consistency_speedup']:.1f})"
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
