"""Bulk ingest of 10^6 codes on PostgreSQL against ``COPY`` of the same rows (issue 16, item 7).

Run: ``.venv/bin/python -m bench.pg_ingest_bench --postgres URL [--codes N] [--rounds R]
[--baseline REV]``. Each round runs in a process of its own, in a schema of its own (dropped
afterwards), bounded by ROUND_TIMEOUT:

- ours: the registry's bulk path, as ``bench.ingest_bench`` times it (read the codes file,
  normalise + HMAC, items root, one signature; then ``Registry.register_batch``: signature
  check, lookups, entries, tiles, the state map, the signed head), state map on;
- then, in the same process and schema, the floors on the very rows ours wrote (read back
  from ``entries``, the ten columns a batch writes): one binary ``COPY`` into an unindexed
  table (the issue's floor), and one into a copy of ``entries`` with its indexes and
  reference check (what the table itself costs, whoever writes it; since migration 0030 a
  statement trigger on PostgreSQL, and the row foreign keys it replaced as a step beside);
- with ``--baseline REV``: the same ingest with ``registry/`` as of git revision REV
  (``git archive``, first on PYTHONPATH), interleaved, for a before/after in one run.

Writes ``bench/results/pg_ingest.json`` (``pg_ingest-N.json`` for other sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import save
from bench.ingest_bench import run_ours, write_codes
from bench.processcpu import cpu_seconds

#: A round past this is killed (a regressed path must not hang the bench): 10^6 codes took
#: 50-90 s on this 2-core machine.
ROUND_TIMEOUT = 900
#: The columns a bulk batch writes into ``entries`` (registry.batches._COLUMNS).
COLUMNS = (
    "leaf_index, kind, good_type, fingerprint, actor, payload_hash, timestamp, record_id, "
    "position, product_id"
)
TYPES = ["int8", "int2", "int2", "bytea", "bytea", "bytea", "int8", "int8", "int4", "int4"]


def _schema_url(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    # The schema's name is the connections' application name too: server_cpu finds them.
    return f"{url}{separator}options=-csearch_path%3D{schema}&application_name={schema}"


def _backends_cpu(conn: Any, application_name: str) -> dict[int, float]:
    pids = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)
    ).fetchall()
    cpu = {pid: cpu_seconds(pid) for (pid,) in pids}
    return {pid: c for pid, c in cpu.items() if c is not None}


@contextmanager
def server_cpu(url: str, application_name: str) -> Iterator[dict[str, float]]:
    """The CPU the database server's backends named ``application_name`` spent in the block
    (``server_cpu_s``): the server's share of the ingest, whatever else loads the machine.
    Only for a server on this machine (its processes are read from /proc)."""
    import psycopg

    metered: dict[str, float] = {}
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = _backends_cpu(conn, application_name)
        yield metered
        after = _backends_cpu(conn, application_name)
    if after:
        metered["server_cpu_s"] = sum(c - before.get(pid, 0.0) for pid, c in after.items())


def _copy(conn: Any, table: str, rows: list[tuple[Any, ...]]) -> dict[str, float]:
    from psycopg.adapt import PyFormat

    backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    conn.commit()
    server_before = cpu_seconds(backend)
    cpu_before = time.process_time()
    started = time.perf_counter()
    with conn.cursor() as cursor:
        # The floor packs bytea as fast as ours does (registry.pgbulk: the C dumper of bytes).
        cursor.adapters.register_dumper(bytes, cursor.adapters.get_dumper(bytes, PyFormat.BINARY))
        with cursor.copy(f"COPY {table} ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(TYPES)
            for row in rows:
                copy.write_row(row)
    conn.commit()
    took = {"s": time.perf_counter() - started, "client_cpu_s": time.process_time() - cpu_before}
    server_after = cpu_seconds(backend)
    if server_before is not None and server_after is not None:
        took["server_cpu_s"] = server_after - server_before
    return took


def floors(url: str, schema: str) -> dict[str, float]:
    """COPY the rows ours wrote into an unindexed table, and into a copy of ``entries``."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, options=f"-csearch_path={schema}") as conn:
        rows = conn.execute(f"SELECT {COLUMNS} FROM entries ORDER BY leaf_index").fetchall()
        conn.execute(
            "CREATE TABLE floor_bare (leaf_index bigint, kind smallint, good_type smallint, "
            "fingerprint bytea, actor bytea, payload_hash bytea, timestamp bigint, "
            "record_id bigint, position integer, product_id integer)"
        )
        conn.execute(
            "CREATE TABLE floor_entries (LIKE entries INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
        # The steps between: what the rule "one REGISTER per good" costs alone (its UNIQUE
        # index on random 32-byte keys), and entries' indexes without its foreign keys.
        conn.execute("CREATE TABLE floor_unique_good (LIKE floor_bare)")
        conn.execute(
            "CREATE UNIQUE INDEX ON floor_unique_good (good_type, fingerprint) WHERE kind = 1"
        )
        conn.execute(
            "CREATE TABLE floor_entries_no_fk (LIKE entries INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
        # entries' shape as migration 0030 made it: its indexes and the statement trigger
        # that checks the rows' references (the function is entries' own, table-agnostic).
        conn.execute(
            "CREATE TRIGGER floor_entries_references AFTER INSERT ON floor_entries "
            "REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT "
            "EXECUTE FUNCTION entries_check_references()"
        )
        # ... and as it was before 0030: two row foreign keys, an RI trigger each a row.
        conn.execute(
            "CREATE TABLE floor_entries_row_fks (LIKE entries INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
        conn.execute(
            "ALTER TABLE floor_entries_row_fks "
            "ADD FOREIGN KEY (record_id) REFERENCES signed_records (id), "
            "ADD FOREIGN KEY (product_id) REFERENCES products (id)"
        )
        conn.commit()
        steps = {
            "copy_unindexed": "floor_bare",
            "copy_unique_good_only": "floor_unique_good",
            "copy_entries_indexes_no_fk": "floor_entries_no_fk",
            "copy_into_entries_shape": "floor_entries",
            "copy_entries_row_fks": "floor_entries_row_fks",
        }
        measured: dict[str, float] = {"rows": len(rows)}
        for name, table in steps.items():
            took = _copy(conn, table, rows)
            measured.update({f"{name}_{k}": v for k, v in took.items()})
    return measured


def child(codes: Path, url: str, with_floors: bool) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    import registry

    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result: dict[str, Any] = run_ours(
                codes,
                Path(tmp),
                _schema_url(url, schema),
                meter=lambda: server_cpu(url, schema),
            )
        result["registry_from"] = str(Path(registry.__file__).parent)
        if with_floors:
            result.update(floors(url, schema))
        return result
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def measure(
    codes: Path, url: str, *, baseline: Path | None = None, timeout: float = ROUND_TIMEOUT
) -> dict[str, Any]:
    env = dict(os.environ)
    here = Path(__file__).resolve().parent.parent
    if baseline is not None:
        # ``-m`` puts the working directory first on sys.path: run from the old registry/'s
        # folder, with this tree (bench/, the other packages) after it.
        env["PYTHONPATH"] = os.pathsep.join([str(baseline), str(here)])
    role = "baseline" if baseline is not None else "ours"
    done = subprocess.run(
        [sys.executable, "-m", "bench.pg_ingest_bench", "--child", role, str(codes), url],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=baseline if baseline is not None else here,
    )
    result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    # Each round as it ends: a long run on a loaded machine keeps what it measured.
    print(json.dumps({"role": role, **result}), file=sys.stderr, flush=True)
    return result


def export_registry(rev: str, into: Path) -> Path:
    """``registry/`` (and the migrations it finds next to it) as of git revision ``rev``."""
    archive = into / "registry.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", rev, "registry", "migrations"], check=True, stdout=out)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def cpu_summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Medians of the CPU each side spent (this process, the server's backends), and what
    they bound: on an idle machine with a core for each, the wall time is at least the larger
    of the two; the ratio of those bounds is the ratio a quiet machine could show at best."""
    keys = (
        "registry_cpu_s",
        "server_cpu_s",
        "copy_unindexed_client_cpu_s",
        "copy_unindexed_server_cpu_s",
        "copy_unique_good_only_server_cpu_s",
        "copy_entries_indexes_no_fk_server_cpu_s",
        "copy_into_entries_shape_server_cpu_s",
        "copy_entries_row_fks_server_cpu_s",
    )
    if not all(key in run for run in runs for key in keys):
        return {}
    cpu = {key: _median(runs, key) for key in keys}
    ours = max(cpu["registry_cpu_s"], cpu["server_cpu_s"])
    floor = max(cpu["copy_unindexed_client_cpu_s"], cpu["copy_unindexed_server_cpu_s"])
    return {
        **{f"cpu_{key}": value for key, value in cpu.items()},
        "cpu_bound_ratio": ours / floor,
        "cpu_total_ratio": (cpu["registry_cpu_s"] + cpu["server_cpu_s"])
        / (cpu["copy_unindexed_client_cpu_s"] + cpu["copy_unindexed_server_cpu_s"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", metavar="URL", required=False)
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", metavar="REV", help="also time registry/ as of REV")
    parser.add_argument("--child", nargs=3, metavar=("ROLE", "CODES", "URL"))
    parser.add_argument(
        "--timeout", type=float, default=ROUND_TIMEOUT, help="seconds a round may take"
    )
    args = parser.parse_args()
    if args.child:
        role, codes, url = args.child
        print(json.dumps(child(Path(codes), url, with_floors=role == "ours")))
        return
    if not args.postgres:
        parser.error(
            "--postgres URL is required (e.g. postgresql+psycopg://postgres@127.0.0.1/test)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        codes = Path(tmp) / "codes.csv"
        write_codes(codes, args.codes)
        baseline = export_registry(args.baseline, Path(tmp)) if args.baseline else None
        ours: list[dict[str, Any]] = []
        before: list[dict[str, Any]] = []
        for _ in range(args.rounds):  # interleaved, so machine noise hits every side
            ours.append(measure(codes, args.postgres, timeout=args.timeout))
            if baseline is not None:
                before.append(
                    measure(codes, args.postgres, baseline=baseline, timeout=args.timeout)
                )
    registry_s = _median(ours, "registry_ingest_s")
    bare = _median(ours, "copy_unindexed_s")
    shaped = _median(ours, "copy_into_entries_shape_s")
    unique_only = _median(ours, "copy_unique_good_only_s")
    no_fk = _median(ours, "copy_entries_indexes_no_fk_s")
    row_fks = _median(ours, "copy_entries_row_fks_s")
    data: dict[str, Any] = {
        "codes": args.codes,
        "rounds": args.rounds,
        "load_average": os.getloadavg(),
        "ours_registry_ingest_s": registry_s,
        "ours_total_s": _median(ours, "total_s"),
        "ours_client_fingerprint_s": _median(ours, "client_fingerprint_s"),
        "peak_rss_mb": _median(ours, "peak_rss_mb"),
        "floor_copy_unindexed_s": bare,
        "copy_into_entries_shape_s": shaped,
        "ratio_registry_to_copy": registry_s / bare,
        "ratio_entries_shape_to_copy": shaped / bare,
        "copy_unique_good_only_s": unique_only,
        "copy_entries_indexes_no_fk_s": no_fk,
        "copy_entries_row_fks_s": row_fks,
        **cpu_summary(ours),
        "runs": ours,
    }
    if before:
        data["baseline"] = {
            "rev": args.baseline,
            "registry_ingest_s": _median(before, "registry_ingest_s"),
            "runs": before,
        }
        for key in ("registry_cpu_s", "server_cpu_s"):
            if all(key in run for run in before):
                data["baseline"][f"cpu_{key}"] = _median(before, key)
    name = "pg_ingest" if args.codes == 1_000_000 else f"pg_ingest-{args.codes}"
    path = save(name, data)
    print(f"codes: {args.codes:,} (median of {args.rounds})")
    print(f"ours: registry {registry_s:.1f} s (end to end {data['ours_total_s']:.1f} s)")
    print(f"COPY into an unindexed table {bare:.2f} s -> ratio {registry_s / bare:.1f}x")
    print(f"COPY into a table with the one-REGISTER UNIQUE index only {unique_only:.2f} s")
    print(f"COPY into entries' indexes without its foreign keys {no_fk:.2f} s")
    print(f"COPY into entries' shape (indexes, references) {shaped:.2f} s ({shaped / bare:.1f}x)")
    print(f"COPY into entries' indexes with the row foreign keys (before 0030) {row_fks:.2f} s")
    if "cpu_bound_ratio" in data:
        print(
            f"CPU: ours client {data['cpu_registry_cpu_s']:.1f} s + server "
            f"{data['cpu_server_cpu_s']:.1f} s; floor client "
            f"{data['cpu_copy_unindexed_client_cpu_s']:.2f} s + server "
            f"{data['cpu_copy_unindexed_server_cpu_s']:.2f} s; "
            f"bound ratio {data['cpu_bound_ratio']:.1f}x, total {data['cpu_total_ratio']:.1f}x"
        )
    if before:
        print(f"baseline {args.baseline}: registry {data['baseline']['registry_ingest_s']:.1f} s")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
