"""WAL written per verification on the API's side, before and after issue 16 item 3, on PostgreSQL.

Run: ``.venv/bin/python -m bench.telemetry_wal_bench --postgres URL [--goods N] [--events E]``.
In a schema of its own (dropped afterwards): ``N`` goods already counted (one platform
each), then ``E`` verifications of random goods, as flushes of 500, measured with
``pg_current_wal_lsn()`` after a ``CHECKPOINT`` (so first touches write full pages, as on a
busy server between checkpoints):

- before: each flush appends and upserts the counts in one transaction (the old API flush,
  ``registry.telemetry.record_verifications``'s append-and-fold in the API process);
- after, the API: each flush appends only (``append_verifications``);
- after, the telemetry role: one fold of the same events (``fold_verifications``), in
  another process in a deployment.

NOTE: WAL bytes, not time: what the issue's "~4 KiB of WAL per verification" is about.
Writes ``bench/results/telemetry_wal.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from registry.db import create_db_engine, write_transaction
from registry.migrate import upgrade
from registry.telemetry import (
    VerificationRecord,
    append_verifications,
    fold_all,
    record_verifications,
)

FLUSH = 500


def _lsn(engine: Engine) -> int:
    with engine.connect() as conn:
        lsn = str(conn.execute(text("SELECT pg_current_wal_lsn()")).scalar_one())
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def _checkpoint(admin: Engine) -> None:
    with admin.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("CHECKPOINT"))


def _batches(goods: list[bytes], events: int, at: int) -> list[list[VerificationRecord]]:
    rng = random.Random(at)
    rows = [
        VerificationRecord(at + i, "cardhub", 2, rng.choice(goods), "code", "authentic")
        for i in range(events)
    ]
    return [rows[i : i + FLUSH] for i in range(0, events, FLUSH)]


def run(url: str, goods_count: int, events: int) -> dict[str, object]:
    admin = create_engine(url)
    schema = f"walbench_{secrets.token_hex(4)}"
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in url else "?"
    engine = create_db_engine(f"{url}{sep}options=-csearch_path%3D{schema}")
    try:
        upgrade(engine)
        goods = [secrets.token_bytes(32) for _ in range(goods_count)]
        seed = [VerificationRecord(0, "cardhub", 2, g, "code", "authentic") for g in goods]
        for i in range(0, len(seed), 20_000):
            with write_transaction(engine) as conn:
                record_verifications(conn, seed[i : i + 20_000])

        def measure(step: object) -> float:
            _checkpoint(admin)
            start = _lsn(engine)
            step()  # type: ignore[operator]
            return (_lsn(engine) - start) / events

        def before() -> None:
            for batch in _batches(goods, events, 1_000):
                with write_transaction(engine) as conn:
                    record_verifications(conn, batch)

        def api_after() -> None:
            for batch in _batches(goods, events, 2_000_000):
                with write_transaction(engine) as conn:
                    append_verifications(conn, batch)

        def fold_after() -> None:
            with write_transaction(engine) as conn:
                fold_all(conn)

        result = {
            "goods": goods_count,
            "events": events,
            "flush": FLUSH,
            "wal_bytes_per_verification": {
                "before_api_append_and_upsert": round(measure(before), 1),
                "after_api_append_only": round(measure(api_after), 1),
                "after_telemetry_role_fold": round(measure(fold_after), 1),
            },
        }
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--goods", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    result = run(args.postgres, args.goods, args.events)
    out = Path(__file__).parent / "results" / "telemetry_wal.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
