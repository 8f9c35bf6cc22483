"""10^7 goods on PostgreSQL (issue 16): bulk ingest against ``COPY``, verify and inclusion
proof latency, index probes and CPU per verification, and the database's bytes per good.

Run: ``.venv/bin/python -m bench.pg_scale_bench --postgres URL [--batches 10]
[--codes 1000000] [--requests 1000] [--rounds 3] [--workdir DIR] [--keep]
[--serve-only]``. One run, in a database of its own (``tracemark_scale_<pid>`` on URL's
server, dropped at the end unless ``--keep``):

1. Ingest, in a child process (its memory, the state map's included, its own):
   ``--batches`` bulk batches of ``--codes`` fresh codes each, through
   ``Registry.register_batch`` as ``bench.pg_ingest_bench`` (and ``tracemark
   register-codes``) drives it: fingerprints, one signature, then the registry's bulk path
   (timed: signature check, lookups, entries by COPY, tiles, the state map, the signed head).
   After each batch the rows it wrote are read back and ``COPY``'d into an unindexed table
   (the floor, same run, same database) and the WAL it wrote is read from
   ``pg_current_wal_lsn()``. Each batch's row goes to ``DIR/batches.jsonl`` when it commits.
2. Finish: the floor's table dropped, ``ANALYZE``, ``pg_total_relation_size`` of every table
   and ``pg_relation_size`` of every index; a sample of registered goods at random leaf
   indices; platform keys.
3. Serve: ``tracemark serve --role api`` on that database (embedded anvil as its chain, no
   anchoring: known goods answer ``pending_anchor``). One keep-alive client, one request
   after another (latency, not throughput), interleaved in ``--rounds`` rounds: ``GET
   /livez`` with a key (the peer: same server, connection and auth, no database), ``POST
   /v1/verify`` by fingerprint (9 in 10 a sampled registered good, 1 in 10 an unknown one;
   every answer checked), ``GET /v1/log/proof/inclusion`` of a random leaf at the newest
   size. CPU seconds of the API process and of its PostgreSQL backends (``/proc``) over the
   verify phases; then one more verify phase between PostgreSQL's own counters (index scans,
   blocks hit and read, per verification).

``--serve-only --workdir DIR`` runs steps 2-3 again on a kept database, also one whose ingest
was stopped part-way (the batches it committed). Writes ``bench/results/pg_scale.json``
(``pg_scale-N.json`` for other sizes) with the git commit measured.

The parts: ``bench.pgscaleingest`` (steps 1-2), ``bench.pgscaleserve`` (step 3); this module
runs them (the ingest as its own child, ``--child``) and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import save
from bench.pgscaleingest import _dsn, _with_database, finish, ingest
from bench.pgscaleserve import serve_and_measure

#: The ingest step past this is killed (a regressed path must not hang the bench).
STEP_TIMEOUT = 4 * 3600
HERE = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", metavar="URL")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--codes", type=int, default=1_000_000, help="codes per batch")
    parser.add_argument("--requests", type=int, default=1000, help="per phase and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep the data dir and ingest.json here")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument(
        "--serve-only", action="store_true", help="measure the kept database of --workdir again"
    )
    parser.add_argument(
        "--child", nargs=5, metavar=("DATA_DIR", "URL", "BATCHES", "CODES", "PROGRESS")
    )
    args = parser.parse_args()
    if args.child:
        data_dir, url, batches, codes, progress = args.child
        ingest(Path(data_dir), url, int(batches), int(codes), Path(progress))
        return
    if not args.postgres:
        parser.error("--postgres URL is required (postgresql+psycopg://postgres@127.0.0.1/test)")
    if args.workdir is None:
        with tempfile.TemporaryDirectory() as tmp:
            run(args, Path(tmp))
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        run(args, args.workdir)


def run(args: argparse.Namespace, workdir: Path) -> None:
    """Ingest (unless ``--serve-only``), finish, serve and measure, drop the database
    (unless ``--keep``: then ``--serve-only --workdir`` measures the same database again,
    also after an ingest stopped part-way: the batches it committed)."""
    import psycopg

    saved, progress, data_dir = workdir / "run.json", workdir / "batches.jsonl", workdir / "data"
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True
    ).stdout.strip()
    if not args.serve_only:
        database = f"tracemark_scale_{os.getpid()}"
        with psycopg.connect(_dsn(args.postgres), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {database}")
        plan = {
            "commit": commit,
            "database": database,
            "codes_per_batch": args.codes,
            "batches_wanted": args.batches,
        }
        saved.write_text(json.dumps(plan))
        started = time.perf_counter()
        child = [
            sys.executable,
            "-m",
            "bench.pg_scale_bench",
            "--child",
            str(data_dir),
            _with_database(args.postgres, database),
            str(args.batches),
            str(args.codes),
            str(progress),
        ]
        try:
            subprocess.run(child, check=True, timeout=STEP_TIMEOUT, cwd=HERE)
        except BaseException:
            if not args.keep:
                _drop(args.postgres, database)
            raise
        saved.write_text(json.dumps(plan | {"ingest_wall_s": time.perf_counter() - started}))
    meta = json.loads(saved.read_text())
    meta["batches"] = [json.loads(line) for line in progress.read_text().splitlines()]
    url = _with_database(args.postgres, meta["database"])
    finished = workdir / "finish.json"
    if not finished.exists():
        finished.write_text(json.dumps(finish(url)))
    meta |= json.loads(finished.read_text())
    meta["serving_commit"] = commit  # with --serve-only, later than the ingest's
    try:
        serving = serve_and_measure(data_dir, url, meta, args.requests, args.rounds)
    finally:
        if not args.keep:
            _drop(args.postgres, meta["database"])
    report(meta, serving)


def _drop(url: str, database: str) -> None:
    import psycopg

    with psycopg.connect(_dsn(url), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def report(meta: dict[str, Any], serving: dict[str, Any]) -> None:
    batches = meta["batches"]
    goods = len(batches) * meta["codes_per_batch"]
    total_ingest = sum(b["registry_ingest_s"] for b in batches)
    total_copy = sum(b["copy_unindexed_s"] for b in batches)
    tables = [s for s in meta["sizes"] if s["kind"] == "table"]
    data: dict[str, Any] = {
        "commit": meta["commit"],
        "serving_commit": meta["serving_commit"],
        "goods": goods,
        "batches_of": meta["codes_per_batch"],
        "tree_size": meta["tree_size"],
        "batches_wanted": meta["batches_wanted"],
        "batches_done": len(batches),
        "ingest_wall_s": meta.get("ingest_wall_s"),
        "registry_ingest_s": total_ingest,
        "copy_unindexed_s": total_copy,
        "ratio_registry_to_copy": total_ingest / total_copy,
        "goods_per_s": goods / total_ingest,
        "first_batch": batches[0],
        "last_batch": batches[-1],
        "batches": batches,
        "database_bytes": meta["database_bytes"],
        "bytes_per_good": meta["database_bytes"] / goods,
        "floor_table_bytes_per_row": meta["floor_table_bytes"] / goods,
        "tables_bytes_per_good": {t["name"]: t["bytes"] / goods for t in tables},
        "sizes": meta["sizes"],
        "serving": serving,
    }
    # Named by the run's plan: a 10^7 run stopped part-way says so in batches_done.
    planned = meta["batches_wanted"] * meta["codes_per_batch"]
    name = "pg_scale" if planned == 10_000_000 else f"pg_scale-{planned}"
    path = save(name, data)
    first, last = batches[0], batches[-1]
    print(f"commit {meta['commit']}; {goods:,} goods in {len(batches)} batches")
    print(
        f"ingest {total_ingest:.0f} s ({goods / total_ingest:,.0f} goods/s), COPY unindexed "
        f"{total_copy:.1f} s: {total_ingest / total_copy:.1f}x"
    )
    print(
        f"batch 1: {first['goods_per_s']:,.0f} goods/s ({first['ratio_registry_to_copy']:.1f}x); "
        f"batch {len(batches)}: {last['goods_per_s']:,.0f} goods/s "
        f"({last['ratio_registry_to_copy']:.1f}x)"
    )
    print(f"database {meta['database_bytes'] / goods:.0f} B/good")
    for t in tables[:8]:
        print(f"  {t['name']}: {t['bytes'] / goods:.1f} B/good")
    for name_ in ("livez", "verify", "inclusion_proof"):
        s = serving[name_]
        print(f"{name_}: p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms")
    c = serving["verify_cpu"]
    print(
        f"CPU per verify: api {c['api_cpu_ms_per_verify']:.2f} ms, "
        f"db {c['db_cpu_ms_per_verify']:.2f} ms; errors {serving['error_count']}"
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
