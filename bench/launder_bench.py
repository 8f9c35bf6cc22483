"""The laundering rules (issue 18 item 2) scored per rule on labelled runs of
``bench.launderscenario``: precision, recall and counts on held-out seeds.

Run: ``.venv/bin/python -m bench.launder_bench`` (the held-out runs; writes
``bench/results/launder.json``; 1-3 min on the shared 2-core machine), ``--tuning`` (the
tuning runs instead, with every false positive and miss listed and a threshold grid: what the
generator and the proposals were adjusted on; never writes the result), ``--no-save``,
``--cache DIR`` (keep each run's records and reuse them), ``--incremental`` (also feed each
run to the risk worker's incremental engine an hour at a time and compare its laundering
signals with the full recompute's: ~15 s more a run, so not in ``make bench``).

Seeds: ``TUNING`` are the only runs looked at while the generator, and the thresholds it
proposes, were being adjusted; ``HELD_OUT`` were run only to measure, after that. The test
(``tests/bench/test_launder_scenario.py``) uses seeds of its own (``TEST_SEEDS``). Each run is
the scenario's small market (``bench.scenario.SMALL``, one of its parameter mixes) with the
laundering patterns on top, simulated into a fresh SQLite registry, read back by
``readmodels.marketreads.read_inputs`` and judged by ``readmodels.rules.evaluate``, the
product's own path; scored by ``bench.launderscore``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import pickle
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench.common import save
from bench.launderscenario import LAUNDER_RULES, LaunderParams
from bench.launderscore import (
    TARGET_PRECISION,
    TARGET_RECALL,
    LaunderRun,
    RuleScore,
    case_counts,
    run_launder,
    score_launder,
)
from bench.scenario import MIXES, SMALL, incremental_state, with_mix
from readmodels import launderrules, rules
from readmodels import signals as S

#: Looked at while adjusting the generator and the thresholds (``--tuning``).
TUNING = ((1101, "base"), (1102, "tuning-ip-bot"))
#: Never run while adjusting anything: the benchmark's result.
HELD_OUT = (
    (1201, "base"),
    (1202, "split-leak-busy-market"),
    (1203, "distributed-bot-insider-leak"),
)
#: The harness test's runs (neither of the above).
TEST_SEEDS = (1301, 1302)


def incremental_agrees(run: LaunderRun) -> bool:
    """Does the risk worker's incremental engine (``readmodels.riskstate``, fed the run an
    hour at a time as ``bench.scenario.incremental_state`` does) end with the laundering
    signals the full recompute raises? (~15 s a run.)"""
    sc = run.scenario
    state = incremental_state(sc, S.Thresholds())
    full = rules.evaluate(sc.inputs, S.Thresholds(), now=sc.now, since=sc.since)

    def ours(signals: Sequence[S.Signal]) -> list[tuple[str, str, str]]:
        return sorted(
            (s.code, s.subject.kind, s.subject.id) for s in signals if s.code in LAUNDER_RULES
        )

    return ours(state.all_signals()) == ours(full)


def evaluate_runs(runs: Sequence[LaunderRun], *, incremental: bool = False) -> dict[str, Any]:
    totals = {code: RuleScore() for code in LAUNDER_RULES}
    per_run = []
    for run in runs:
        started = time.perf_counter()
        sc = run.scenario
        signals = rules.evaluate(sc.inputs, S.Thresholds(), now=sc.now, since=sc.since)
        scores = score_launder(run, signals=signals)
        for code, s in scores.items():
            totals[code].add(s)
        per_run.append(
            {
                "seed": run.scenario.seed,
                "mix": run.scenario.mix,
                "rules_s": round(time.perf_counter() - started, 2),
                "incremental_same_as_full": incremental_agrees(run) if incremental else None,
                "per_rule": {
                    code: {"precision": s.precision, "recall": s.recall, "fired": s.fired}
                    for code, s in scores.items()
                },
                "stats": run.scenario.stats,
            }
        )
    return {
        "per_rule": {code: s.document() for code, s in totals.items()},
        "cases": case_counts(runs),
        "runs": per_run,
        "every_rule_meets_target": all(s.document()["meets_target"] for s in totals.values()),
    }


# -- tuning (the tuning runs only) ---------------------------------------------------------------

#: Candidate values per rule, searched one rule at a time (the rules are independent). The
#: buyer-daily-amount limits are the published ones (``readmodels.launderruleslimits``), and
#: redeemed-elsewhere has no number: neither is tuned.
GRID: dict[str, dict[str, Sequence[Any]]] = {
    S.BELOW_FACE_VALUE: {"face_min_ratio": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)},
    S.FAST_CASH_OUT: {"cash_out_window": (600, 1_800, 3_600, 2 * 3_600, 3 * 3_600)},
    S.FAN_IN: {
        "fan_in_min_sources": (3, 4, 5, 6, 8, 10),
        "fan_in_window": (6 * 3_600, 24 * 3_600, 48 * 3_600),
    },
    S.ROUND_TRIP: {"round_trip_min_returns": (1, 2)},
    S.VERIFY_PER_PURCHASE: {
        "verify_min_events": (5, 8, 10, 15, 20),
        "verify_min_per_purchase": (3.0, 5.0, 8.0, 10.0),
    },
}


def _f1(s: RuleScore) -> float:
    p, r = s.precision, s.recall
    return 0.0 if not p or not r else 2 * p * r / (p + r)


def tune(runs: Sequence[LaunderRun]) -> dict[str, Any]:
    """Per rule, the grid point with the best F1 pooled over ``runs`` (the tuning runs), the
    middle of its plateau among equals, as ``bench.scenario.tune`` chooses; and how the
    frozen values (``Thresholds()``) do there."""
    frozen = S.Thresholds()
    report: dict[str, Any] = {}
    for code, grid in GRID.items():
        keys = list(grid)
        results = []
        for values in itertools.product(*(grid[k] for k in keys)):
            th = replace(frozen, **dict(zip(keys, values, strict=True)))
            total = RuleScore()
            for run in runs:
                x = run.scenario.inputs
                found = launderrules.red_flags(x, run.scenario.chains, th)
                total.add(score_launder(run, th, [s for s in found if s.code == code])[code])
            results.append((round(_f1(total), 4), values, total))
        best = max(f for f, _, _ in results)
        tied = [values for f, values, _ in results if f == best]
        middle = tuple(sorted(v[i] for v in tied)[(len(tied) - 1) // 2] for i in range(len(keys)))
        chosen = middle if middle in tied else tied[len(tied) // 2]
        at_frozen = tuple(getattr(frozen, k) for k in keys)
        frozen_score = next((t for _, v, t in results if v == at_frozen), None)
        report[code] = {
            "f1": best,
            "chosen": dict(zip(keys, chosen, strict=True)),
            "plateau": {
                k: [min(v[i] for v in tied), max(v[i] for v in tied)] for i, k in enumerate(keys)
            },
            "frozen": dict(zip(keys, at_frozen, strict=True)),
            "frozen_f1": None if frozen_score is None else round(_f1(frozen_score), 4),
        }
    return report


def _load_or_run(seed: int, mix: str, workdir: Path, cache: Path | None) -> LaunderRun:
    """A run, or its records from ``cache`` when the same parameters ran before (the rules
    are pure over the records: re-scoring after a change to them needs no new simulation)."""
    params, launder = with_mix(SMALL, mix), LaunderParams()
    if cache is None:
        return run_launder(params, seed, mix=mix, workdir=workdir, launder=launder)
    digest = hashlib.sha256(repr((params, launder, seed)).encode()).hexdigest()[:16]
    path = cache / f"launder-{seed}-{digest}.pickle"
    if path.exists():
        with path.open("rb") as source:
            loaded: LaunderRun = pickle.load(source)  # our own cache, never a download
        return loaded
    run = run_launder(params, seed, mix=mix, workdir=workdir, launder=launder)
    cache.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as sink:
        pickle.dump(run, sink)
    return run


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuning", action="store_true", help="the tuning runs, in detail")
    parser.add_argument("--no-save", action="store_true", help="do not write launder.json")
    parser.add_argument("--cache", type=Path, help="keep each run's records here (development)")
    parser.add_argument(
        "--incremental", action="store_true", help="also check the incremental engine agrees"
    )
    args = parser.parse_args(argv)
    seeds = TUNING if args.tuning else HELD_OUT
    launder = LaunderParams()
    started = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="tracemark-launder-") as tmp:
        for seed, mix in seeds:
            runs.append(_load_or_run(seed, mix, Path(tmp), args.cache))
            print(f"run {seed} ({mix}): {runs[-1].scenario.stats}", file=sys.stderr)
    result = evaluate_runs(runs, incremental=args.incremental)
    if args.tuning:
        for code, tuned in tune(runs).items():
            print(f"tuned {code}: {tuned}")
    elapsed = time.perf_counter() - started
    kind = "tuning" if args.tuning else "held-out"
    print(f"| rule | precision | on target | recall | fired | injected | {kind} runs |")
    for code, s in result["per_rule"].items():
        print(
            f"| `{code}` | {_fmt(s['precision'])} | {_fmt(s['precision_on_target'])} "
            f"| {_fmt(s['recall'])} | {s['fired']} | {s['injected']} | {len(runs)} |"
        )
    if args.tuning:
        for code, s in result["per_rule"].items():
            for line in s["false_positives"]:
                print(f"{code} false positive: {line}")
            for line in s["missed"]:
                print(f"{code} missed: {line}")
    if args.incremental:
        agree = [r["incremental_same_as_full"] for r in result["runs"]]
        print(f"incremental engine's laundering signals equal the full recompute's: {agree}")
    print(f"every rule meets its target: {result['every_rule_meets_target']} ({elapsed:.0f} s)")
    if not args.no_save and not args.tuning:
        path = save(
            "launder",
            {
                "size": "small market + laundering cases",
                "params": asdict(SMALL),
                "launder_params": asdict(launder),
                "mixes": {m: MIXES[m] for _, m in seeds},
                "tuning": [{"seed": s, "mix": m} for s, m in TUNING],
                "held_out": [{"seed": s, "mix": m} for s, m in HELD_OUT],
                "thresholds": asdict(S.Thresholds()),
                "targets": {"precision": TARGET_PRECISION, "recall": TARGET_RECALL},
                "held_out_result": result,
                "elapsed_s": round(elapsed, 1),
            },
        )
        print(f"wrote {path}", file=sys.stderr)
    return 0


__all__ = [
    "HELD_OUT",
    "TEST_SEEDS",
    "TUNING",
    "LaunderRun",
    "evaluate_runs",
    "incremental_agrees",
    "run_launder",
    "score_launder",
    "tune",
]


if __name__ == "__main__":
    # Through the module's own name, so that pickled runs (``--cache``) name bench.launder_bench.
    from bench import launder_bench

    sys.exit(launder_bench.main())
