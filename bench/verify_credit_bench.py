"""What the holder's credit costs a verify answer (issue 18 item 1), before and after, in one run.

Run: ``.venv/bin/python -m bench.verify_credit_bench [--db-url URL] [--rounds N]``. Writes
``bench/results/verify_credit_bench.json`` (``..._postgresql.json`` for a PostgreSQL URL).

- Data: the scenario generator's small market (``bench.scenario.SMALL``, seed 403) in a fresh
  SQLite file (or ``--db-url``: an empty PostgreSQL database), its credit scores written once
  by ``registry.creditscores.refresh_credit_scores`` (what the risk worker does every minute).
- Measured: the verify answer's database read and its answer built, ``GoodLookup.facts`` then
  ``api.verify_answers.holder_credit``, for every good a platform holds (most with a seller's
  score), in process (no HTTP: the statement is what changed). *after* is the statement as
  served (the two primary-key reads of the holder's scores); *before* is the same statement
  with the two scalar subqueries replaced by NULLs, i.e. what it read before this change.
  Interleaved rounds (alternating which goes first), medians of the per-lookup mean;
  ratio after / before.
- Also the credit pass itself (every platform's and seller's score, written where changed):
  the work moved off the hot path, timed once here (``bench/credit_bench.py`` times it at
  10^6 transfers).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import save
from bench.scenario import SMALL, run_scenario
from readmodels.authenticity import GoodLookup
from registry.balances import DAY, DEFAULT_OVERDUE_DAYS
from registry.creditscores import refresh_credit_scores
from registry.db import create_db_engine, read_transaction
from registry.fingerprints import GoodType
from registry.holding import holdings_t

SEED = 403
#: Each sample reads every held good this many times (a sample of ~0.1 s, not ~0.01 s).
REPEAT = 10
#: The two reads the change added to the verify statement (readmodels.authenticity).
ADDED = (
    "(SELECT cp.document FROM credit_platforms cp WHERE cp.platform = h.holder_platform)",
    "(SELECT cs.document FROM credit_sellers cs\n"
    "        WHERE cs.platform = h.holder_platform AND cs.seller_ref = h.holder_ref)",
)


def _lookups(engine: Any, before: bool) -> GoodLookup:
    lookup = GoodLookup(engine)
    if before:
        sql = lookup._sql  # the bench swaps the statement, nothing else
        for added in ADDED:
            assert added in sql, "the verify statement changed: update ADDED"
            sql = sql.replace(added, "NULL")
        # ... and the grouping column the seller's read needed.
        sql = sql.replace("h.holder_platform, h.holder_ref,", "h.holder_platform,")
        lookup._sql = sql
    return lookup


def _time(lookup: GoodLookup, goods: list[tuple[GoodType, bytes]]) -> float:
    from api.verify_answers import holder_credit

    started = time.perf_counter()
    for good_type, fingerprint in goods * REPEAT:
        facts = lookup.facts(good_type, fingerprint)
        assert facts is not None
        holder_credit(facts)
    return (time.perf_counter() - started) / (len(goods) * REPEAT)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db-url")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        run = run_scenario(SMALL, SEED, workdir=Path(workdir), db_url=args.db_url)
        url = args.db_url or f"sqlite:///{Path(workdir) / f'scenario-{SEED}.db'}"
        engine = create_db_engine(url)
        as_of = run.now + DAY
        started = time.perf_counter()
        report = refresh_credit_scores(
            engine, as_of=as_of, overdue_after=DEFAULT_OVERDUE_DAYS * DAY
        )
        credit_pass = time.perf_counter() - started
        h = holdings_t.c
        with read_transaction(engine) as conn:
            goods = [
                (GoodType(row.good_type), bytes(row.fingerprint))
                for row in conn.execute(holdings_t.select().order_by(h.fingerprint))
            ]
        after, before = _lookups(engine, False), _lookups(engine, True)
        with_seller = sum(
            1 for g in goods if (f := after.facts(*g)) is not None and f.seller_credit is not None
        )
        for lookup in (after, before):  # warm: connections, statement caches, pages
            _time(lookup, goods)
        samples: dict[str, list[float]] = {"before": [], "after": []}
        for round_ in range(args.rounds):
            # Alternating which goes first, so that neither always runs on a warmer cache.
            order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
            for name in order:
                samples[name].append(_time(before if name == "before" else after, goods))
        after.close()
        before.close()
        engine.dispose()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    result = {
        "database": engine.dialect.name,
        "market": {
            "goods_held": len(goods),
            "held_with_a_seller_score": with_seller,
            "credit_subjects": report.subjects,
        },
        "rounds": args.rounds,
        "lookup_us": {name: round(value * 1e6, 1) for name, value in medians.items()},
        "added_us": round((medians["after"] - medians["before"]) * 1e6, 1),
        "ratio_after_before": round(medians["after"] / medians["before"], 3),
        # Each round's after / before (the two ran back to back): drift cancels out.
        "paired_ratio_median": round(
            statistics.median(
                a / b for a, b in zip(samples["after"], samples["before"], strict=True)
            ),
            3,
        ),
        "credit_pass_seconds": round(credit_pass, 3),
        "samples_us": {k: [round(v * 1e6, 1) for v in vs] for k, vs in samples.items()},
    }
    name = "verify_credit_bench" + ("" if result["database"] == "sqlite" else "_postgresql")
    print(save(name, result))
    print(result["lookup_us"], result["paired_ratio_median"], result["market"])


if __name__ == "__main__":
    main()
