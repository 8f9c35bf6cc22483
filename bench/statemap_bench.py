"""State map (issue 14) at 10^6 goods: build, proof size and proof time against the log's.

Run: ``.venv/bin/python -m bench.statemap_bench [--goods N] [--proofs P]``. Prints a table
and writes ``bench/results/statemap.json``. Ours: ``registry.statemaptree.StateMap`` in
memory, built by one apply() of every good, and its inclusion and absence proofs for random goods.
Peer (same run, same size): the RFC 9162 inclusion proof of a log of as many leaves,
computed in memory (``registry.tiles.MemoryTree``, the log's own proof algorithm over
``registry.merkle``'s plans), and ``merkle.verify_inclusion``. Bounded: N goods (default
10^6, about half a minute and ~1.3 GB on a 2-core machine), P proofs of each kind, and an
audit replay of R entries (default 10^5) over the built map against the floor of hashing as
many nodes in one Python process.

Expected sizes at larger maps are computed, not measured: a search for a key among n random
keys ends at depth log2(n) + c on average (c measured here, under 1 for a trie with leaf
shortcuts), every sibling on the way is non-empty with overwhelming probability, so a proof
is the 32-byte bitmap plus that many 32-byte siblings (plus the 64-byte neighbour leaf for
an absence proof that ends at one).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import statistics
import time

from bench.common import per_call_median, save
from registry import merkle
from registry.fingerprints import GoodType
from registry.statemap import MapProof, MapValue, map_keys, replay, verify_map_proof
from registry.statemaptree import StateMap
from registry.tiles import MemoryTree

SIBLING_JSON_BYTES = len(json.dumps("0x" + "00" * 32)) + 1
"""One sibling in the compact JSON form: quoted 0x-hex and a comma."""


def binary_size(proof: MapProof) -> int:
    """Bytes of the proof as raw binary: bitmap, siblings, the neighbour leaf if any."""
    return 32 + 32 * len(proof.siblings) + (64 if proof.neighbour_key is not None else 0)


def json_size(proof: MapProof) -> int:
    """Bytes of the proof's JSON form, compact."""
    return len(json.dumps(proof.to_json(), separators=(",", ":")))


def expected_bytes(goods: int, excess: float) -> dict[str, float]:
    """Computed mean inclusion proof size in a map of ``goods`` random keys."""
    siblings = math.log2(goods) + excess
    return {
        "siblings": round(siblings, 2),
        "binary_bytes": round(32 + 32 * siblings),
        "json_bytes": round(
            len('{"bitmap":"0x","siblings":[],"neighbour":null}')
            + 64
            + SIBLING_JSON_BYTES * siblings
        ),
        "rfc9162_inclusion_bytes_same_size": 32 * math.ceil(math.log2(goods)),
    }


def audit_replay(
    state_map: StateMap, before: dict[bytes, MapValue], keys: list[bytes], count: int, n: int
) -> dict[str, float]:
    """Replay ``count`` entries over the map (half to goods it holds, half to new ones) and
    time it against the floor: hashing as many nodes in one loop of hashlib calls."""
    rng, sha256 = random.Random(14), hashlib.sha256
    entries = []
    for j in range(count):
        key = keys[rng.randrange(n)] if j % 2 else sha256(b"new" + j.to_bytes(8, "big")).digest()
        entries.append((key, n + j, sha256(b"leaf" + (n + j).to_bytes(8, "big")).digest()))
    started = time.perf_counter()
    changed = replay(entries, before)
    state_map.apply((key, value.value_hash()) for key, value in changed.items())
    state_map.root()
    replay_s = time.perf_counter() - started
    # The nodes that replay hashed: a history link per entry, a value hash and a leaf per
    # changed good, and each interior on the changed goods' paths once.
    interiors = set()
    for key in changed:
        path = int.from_bytes(key, "big")
        for depth in range(state_map.prove(key).depth):
            interiors.add((depth, path >> (256 - depth)))
    nodes = len(entries) + 2 * len(changed) + len(interiors)
    blocks = [sha256(i.to_bytes(8, "big")).digest() * 2 for i in range(nodes)]
    started = time.perf_counter()
    for block in blocks:
        sha256(block).digest()
    floor_s = time.perf_counter() - started
    return {
        "entries": count,
        "goods_changed": len(changed),
        "nodes_hashed": nodes,
        "replay_s": replay_s,
        "floor_hash_nodes_s": floor_s,
        "ratio_to_floor": replay_s / floor_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--goods", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=2_000)
    parser.add_argument("--replay", type=int, default=100_000)
    args = parser.parse_args()
    n, rng = args.goods, random.Random(2026)
    sha256 = hashlib.sha256

    # -- build: one entry per good, as a fresh ingest of n codes ------------------------------
    leaf_hashes = [sha256(b"leaf" + i.to_bytes(8, "big")).digest() for i in range(n)]
    fingerprints = [sha256(i.to_bytes(8, "big")).digest() for i in range(n)]
    started = time.perf_counter()
    keys = map_keys(GoodType.CODE, fingerprints)
    keys_s = time.perf_counter() - started
    started = time.perf_counter()
    values = [MapValue.first(i, leaf_hashes[i]).value_hash() for i in range(n)]
    values_s = time.perf_counter() - started
    started = time.perf_counter()
    state_map = StateMap(zip(keys, values, strict=True))
    root = state_map.root()
    build_s = time.perf_counter() - started
    map_size = len(state_map)
    started = time.perf_counter()
    log_tree = MemoryTree()
    log_tree.append(leaf_hashes)
    log_root = log_tree.root()
    log_build_s = time.perf_counter() - started

    # -- proofs of random goods, and of random absent keys ------------------------------------
    sample = rng.sample(range(n), min(args.proofs, n))
    present = [keys[i] for i in sample]
    absent = [rng.randbytes(32) for _ in sample]
    inclusion = [state_map.prove(key) for key in present]
    absence = [state_map.prove(key) for key in absent]
    for i, key, proof in zip(sample[:50], present, inclusion, strict=False):
        verify_map_proof(root, key, values[i], proof)
    for key, proof in zip(absent[:50], absence, strict=False):
        verify_map_proof(root, key, None, proof)
    log_proofs = [log_tree.inclusion_proof(i) for i in sample]

    def sizes(proofs: list[MapProof]) -> dict[str, float]:
        return {
            "mean_siblings": statistics.fmean(len(p.siblings) for p in proofs),
            "max_siblings": max(len(p.siblings) for p in proofs),
            "median_binary_bytes": statistics.median(map(binary_size, proofs)),
            "median_json_bytes": statistics.median(map(json_size, proofs)),
            "max_json_bytes": max(map(json_size, proofs)),
        }

    size = {
        "inclusion": sizes(inclusion),
        "absence": sizes(absence),
        "rfc9162_inclusion_binary_bytes": statistics.median(32 * len(p) for p in log_proofs),
        "rfc9162_inclusion_json_bytes": statistics.median(
            len(json.dumps(["0x" + h.hex() for h in p], separators=(",", ":"))) for p in log_proofs
        ),
    }
    excess = size["inclusion"]["mean_siblings"] - math.log2(n)
    expected = {
        label: expected_bytes(count, excess)
        for label, count in (("10^6", 10**6), ("10^9", 10**9), ("2^32", 2**32))
    }

    # -- time: median per call over rounds, against the log's inclusion proof -----------------
    map_calls = [(lambda k=k: state_map.prove(k)) for k in present]
    log_calls = [(lambda i=i: log_tree.inclusion_proof(i)) for i in sample]
    verify_calls = [
        (lambda k=k, v=values[i], p=p: verify_map_proof(root, k, v, p))
        for i, k, p in zip(sample, present, inclusion, strict=True)
    ]
    log_verify_calls = [
        (lambda i=i, p=p: merkle.verify_inclusion(leaf_hashes[i], i, n, p, log_root))
        for i, p in zip(sample, log_proofs, strict=True)
    ]
    timing = {
        "map_prove_us": per_call_median(map_calls) * 1e6,
        "log_inclusion_proof_us": per_call_median(log_calls) * 1e6,
        "map_verify_us": per_call_median(verify_calls) * 1e6,
        "log_verify_inclusion_us": per_call_median(log_verify_calls) * 1e6,
    }
    ratios = {
        "proof_bytes_vs_log": size["inclusion"]["median_binary_bytes"]
        / size["rfc9162_inclusion_binary_bytes"],
        "prove_time_vs_log": timing["map_prove_us"] / timing["log_inclusion_proof_us"],
        "verify_time_vs_log": timing["map_verify_us"] / timing["log_verify_inclusion_us"],
    }
    before = {keys[i]: MapValue.first(i, leaf_hashes[i]) for i in range(n)}
    audit = audit_replay(state_map, before, keys, min(args.replay, n), n)
    path = save(
        "statemap",
        {
            "goods": n,
            "proof_samples": len(sample),
            "build": {
                "map_keys_s": keys_s,
                "first_values_and_value_hashes_s": values_s,
                "map_build_and_root_s": build_s,
                "log_build_and_root_s": log_build_s,
            },
            "size": size,
            "measured_excess_depth_over_log2": excess,
            "expected_inclusion_proof": expected,
            "timing": timing,
            "ratios_target_at_most_3": ratios,
            "audit_replay": audit,
        },
    )
    print(f"goods: {n:,} (map of {map_size:,} keys)")
    print(
        f"build  keys {keys_s:.1f} s | values {values_s:.1f} s | map apply+root {build_s:.1f} s"
        f" | log (MemoryTree) {log_build_s:.1f} s"
    )
    for kind in ("inclusion", "absence"):
        s = size[kind]
        print(
            f"{kind:9} proof  {s['mean_siblings']:.1f} siblings on average (max "
            f"{s['max_siblings']}) | binary {s['median_binary_bytes']:.0f} B | JSON "
            f"{s['median_json_bytes']:.0f} B (max {s['max_json_bytes']})"
        )
    print(
        f"log inclusion proof  binary {size['rfc9162_inclusion_binary_bytes']:.0f} B | JSON "
        f"{size['rfc9162_inclusion_json_bytes']:.0f} B"
        f" | map/log x{ratios['proof_bytes_vs_log']:.2f}"
    )
    for label, e in expected.items():
        print(
            f"expected at {label:5}  {e['siblings']:.1f} siblings | binary "
            f"{e['binary_bytes']} B | JSON {e['json_bytes']} B "
            f"(RFC 9162 inclusion {e['rfc9162_inclusion_bytes_same_size']} B)"
        )
    print(
        f"prove  map {timing['map_prove_us']:.1f} us | log {timing['log_inclusion_proof_us']:.1f}"
        f" us | x{ratios['prove_time_vs_log']:.2f}"
    )
    print(
        f"verify map {timing['map_verify_us']:.1f} us | log "
        f"{timing['log_verify_inclusion_us']:.1f} us | x{ratios['verify_time_vs_log']:.2f}"
    )
    print(
        f"audit  replay of {audit['entries']:,} entries ({audit['goods_changed']:,} goods) "
        f"{audit['replay_s']:.2f} s | floor, {audit['nodes_hashed']:,} nodes hashed "
        f"{audit['floor_hash_nodes_s']:.2f} s | x{audit['ratio_to_floor']:.1f}"
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
