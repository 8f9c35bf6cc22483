"""Scoring a whole market's credit (issue 18 item 1's benchmark): every platform's and
seller's ``credit/v2`` score, against the floor of one SQL aggregate pass over the same rows.

Run: ``.venv/bin/python -m bench.credit_bench`` (10^6 transfers, each with a royalty line,
1 % refused attempts, 0.5 % refunded orders; SQLite, in process) or ``--n 100000``.

The rows are written straight into the tables (synthetic, with the database's foreign-key
checks off): the benchmark is the read, not the writing. Ours:
``registry.creditfacts.all_inputs`` (two grouped passes over the facts: by platform, by
seller party) then ``credit_score`` for every subject. The floor, in the same run,
interleaved: one ``GROUP BY kind`` aggregate over the very same facts (every row read once,
nothing per subject, no formula). Medians of the rounds; the ratio is ours / floor.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, func, insert, literal, select, union_all

from bench.common import save
from registry.credit import credit_score
from registry.creditfacts import _facts_query, all_inputs
from registry.migrate import upgrade
from registry.orderviews import orders_t
from registry.transfers import attempts_t, royalty_lines_t, transfers_t

DAY = 86_400
START = 1_790_000_000
PLATFORMS = 50
SELLERS = 20_000
CHUNK = 20_000


def _fill(engine: object, n: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    sellers = [(f"p{rng.randrange(PLATFORMS)}", rng.randbytes(32)) for _ in range(SELLERS)]
    counts = {"transfers": 0, "royalty_lines": 0, "attempts": 0, "orders": 0}
    with engine.begin() as conn:  # type: ignore[attr-defined]
        for base in range(0, n, CHUNK):
            transfers, lines, attempts, orders = [], [], [], []
            for i in range(base + 1, min(n, base + CHUNK) + 1):
                sp, sr = sellers[rng.randrange(SELLERS)]
                at = START + rng.randrange(120 * DAY)
                fp = rng.randbytes(32)
                transfers.append(
                    {
                        "id": i, "entry_id": i, "good_type": 2, "fingerprint": fp,
                        "creator": b"\x01" * 20, "platform": sp, "seller_platform": sp,
                        "seller_ref": sr, "buyer_platform": sp, "buyer_ref": rng.randbytes(32),
                        "price": "1000", "currency": "CNY", "final": False,
                        "request_hash": b"\x00" * 32, "receipt_signature": b"\x00" * 65,
                        "leaf_index": i, "created_at": at,
                    }
                )  # fmt: skip
                lines.append(
                    {
                        "id": i, "transfer_id": i, "creator": b"\x01" * 20, "bps": 500,
                        "amount": "50", "currency": "CNY", "platform": sp, "good_type": 2,
                        "fingerprint": fp, "created_at": at, "status": "due",
                    }
                )  # fmt: skip
                if rng.random() < 0.01:
                    attempts.append(
                        {
                            "at": at + 60, "platform": sp, "good_type": 2, "fingerprint": fp,
                            "seller_platform": sp, "seller_ref": sr, "buyer_platform": sp,
                            "buyer_ref": rng.randbytes(32), "final": False,
                            "reason": rng.choice(("double-sale", "not-the-holder", "consumed")),
                        }
                    )  # fmt: skip
                if rng.random() < 0.005:
                    orders.append(
                        {
                            "platform": sp, "good_type": 2, "fingerprint": fp,
                            "seller_platform": sp, "seller_ref": sr, "buyer_platform": sp,
                            "buyer_ref": rng.randbytes(32), "buyer_commitment": b"\x00" * 32,
                            "buyer_salt": b"\x00" * 16, "price": "1000", "currency": "CNY",
                            "confirm_window": 3600, "state": "refunded", "sequence": 3,
                            "created_at": at, "reserved_until": at + 600,
                            "updated_at": at + 3600, "request_hash": b"\x00" * 32,
                        }
                    )  # fmt: skip
            conn.execute(insert(transfers_t), transfers)
            conn.execute(insert(royalty_lines_t), lines)
            if attempts:
                conn.execute(insert(attempts_t), attempts)
            if orders:
                conn.execute(insert(orders_t), orders)
            counts["transfers"] += len(transfers)
            counts["royalty_lines"] += len(lines)
            counts["attempts"] += len(attempts)
            counts["orders"] += len(orders)
    return counts


def _ours(engine: object, as_of: int) -> tuple[float, int]:
    started = time.perf_counter()
    with engine.connect() as conn:  # type: ignore[attr-defined]
        every = all_inputs(conn, as_of=as_of, overdue_after=30 * DAY)
    scores = [credit_score(inputs) for inputs in every.values()]
    return time.perf_counter() - started, len(scores)


def _floor(engine: object, as_of: int) -> tuple[float, int]:
    started = time.perf_counter()
    facts = _facts_query(as_of, 30 * DAY).subquery()
    with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(
            select(facts.c.kind, func.count(), func.min(facts.c.at)).group_by(facts.c.kind)
        ).all()
    return time.perf_counter() - started, sum(int(r[1]) for r in rows)


def _raw(engine: object, as_of: int) -> tuple[float, int]:
    """The floor as credit/v1 had it: every transfer a sale, one ``GROUP BY kind`` over the
    union of the raw rows (credit/v2's floor above includes grouping sales by seller and good;
    the overdue branch here skips the payout join, a little cheaper than v1's)."""
    t, a, o, r = transfers_t.c, attempts_t.c, orders_t.c, royalty_lines_t.c
    facts = union_all(
        select(literal("sale").label("kind"), t.created_at.label("at")).where(
            t.created_at <= as_of
        ),
        select(a.reason.label("kind"), a.at).where(a.at <= as_of),
        select(literal("refund").label("kind"), o.updated_at.label("at")).where(
            o.state == "refunded", o.updated_at <= as_of
        ),
        select(literal("overdue").label("kind"), r.created_at.label("at")).where(
            r.status == "due", r.created_at <= as_of - 30 * DAY
        ),
    ).subquery()
    started = time.perf_counter()
    with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(
            select(facts.c.kind, func.count(), func.min(facts.c.at)).group_by(facts.c.kind)
        ).all()
    return time.perf_counter() - started, sum(int(row[1]) for row in rows)


def _grouped(engine: object, as_of: int) -> tuple[float, int]:
    """The second floor: the one aggregate pass ``all_inputs`` makes, by subject and kind,
    without anything after it (no tallies, no formula)."""
    started = time.perf_counter()
    f = _facts_query(as_of, 30 * DAY).subquery().c
    with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(
            select(
                f.platform, f.seller_platform, f.seller_ref, f.kind, func.count(), func.min(f.at)
            ).group_by(f.platform, f.seller_platform, f.seller_ref, f.kind)
        ).all()
    return time.perf_counter() - started, len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'credit.db'}")
        upgrade(engine)
        began = time.perf_counter()
        counts = _fill(engine, args.n, seed=7)
        filled = time.perf_counter() - began
        as_of = START + 160 * DAY
        ours: list[float] = []
        floor: list[float] = []
        grouped: list[float] = []
        raw: list[float] = []
        subjects = facts = groups = 0
        sides = ("ours", "floor", "grouped", "raw")
        for r in range(args.rounds):
            # Interleaved, the order rotating: no side always reads a warm cache.
            for side in sides[r % 4 :] + sides[: r % 4]:
                if side == "raw":
                    seconds, _ = _raw(engine, as_of)
                    raw.append(seconds)
                elif side == "ours":
                    seconds, subjects = _ours(engine, as_of)
                    ours.append(seconds)
                elif side == "grouped":
                    seconds, groups = _grouped(engine, as_of)
                    grouped.append(seconds)
                else:
                    seconds, facts = _floor(engine, as_of)
                    floor.append(seconds)
        engine.dispose()
    load = os.getloadavg()
    result = {
        "n_transfers": args.n,
        "rows": counts,
        "facts": facts,
        "subjects": subjects,
        "fill_s": round(filled, 1),
        "ours_s": [round(s, 3) for s in ours],
        "floor_s": [round(s, 3) for s in floor],
        "ours_median_s": round(statistics.median(ours), 3),
        "floor_median_s": round(statistics.median(floor), 3),
        "ratio": round(statistics.median(ours) / statistics.median(floor), 2),
        "groups": groups,
        "grouped_s": [round(s, 3) for s in grouped],
        "grouped_median_s": round(statistics.median(grouped), 3),
        "ratio_to_grouped": round(statistics.median(ours) / statistics.median(grouped), 2),
        "raw_s": [round(s, 3) for s in raw],
        "raw_median_s": round(statistics.median(raw), 3),
        "ratio_to_raw": round(statistics.median(ours) / statistics.median(raw), 2),
        "load_average": [round(x, 2) for x in load],
        "database": "sqlite (in process)",
    }
    print(result)
    if args.n >= 1_000_000:
        save("credit", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
