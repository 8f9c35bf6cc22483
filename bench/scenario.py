"""A labelled fraud scenario: a simulated market written into a real registry, with piracy and
fraud injected and their ground truth kept, and the signals scored against it.

Run: ``.venv/bin/python -m bench.scenario`` (full size: 10^5 codes a run, ~4 min each on the
2-core machine; tunes on the tuning seeds, then scores the thresholds *frozen in*
``readmodels.signals.Thresholds`` on held-out seeds and parameter mixes; writes
``bench/results/signals.json``), ``--small`` (~2k codes a run, ~10 s each; prints only),
``--tune-only`` (print the tuned thresholds, to freeze them), ``--cache DIR`` (keep each run's
records and reuse them: re-scoring after a change to the rules needs no new simulation).

The market (``MarketParams``): code creators selling bulk batches, file creators, honest
platforms at several agent levels (a wholesaler buys blocks of codes from the creators, agents
two levels deep resell them, retailers sell them to end users, who check them anonymously),
a platform that checks codes bought at physical shops (it verifies codes it never acquires,
all day long), honest file trades with buy-backs, refunds, platforms retrying a report without
an Idempotency-Key, typos in code lookups, declined offers, post-sale support lookups, and two
honest bursts as hard negatives: a launch-day sale (a retailer sells a new batch in one day)
and a new platform's first wholesale purchase. Everything goes through the registry's own use
cases: ``Registry.register_batch`` for bulk batches, ``Registry.transfer`` for every transfer
(refusals included), ``Registry.record_verifications`` for verification events, and code
lookups through the API's own ``RateLimiter`` (whose probing flags feed the rules). An injected
clock runs three weeks in minutes.

Injected (``Injection``, each with the subjects it involves and, per signal, the subjects a
perfect detector of that signal would flag): a leaked batch listed by pirate platforms (then
revoked, then offered for sale), a card-draining bot (a platform key, one IP or many IPs),
a double seller (lists codes on three platforms, sells each twice, re-offers consumed ones),
a laundering ring (goods going round a few parties at rising prices) and a pirate creator
re-registering another creator's files.

Scoring: per signal, precision = fired subjects that belong to any injection / fired
subjects; recall = expected subjects fired / expected subjects; a run "finds every pattern"
when every injection has at least one signal naming one of its subjects or goods.

The parts: ``bench.scenarioworld`` (parameters, mixes, seeds, the labelled run),
``bench.scenariomarket`` (the market, ``run_scenario``) with its actors in
``bench.scenariobase``, ``bench.scenariohonest`` and ``bench.scenariofraud``;
``bench.scenarioscore``, ``bench.scenariotune`` and ``bench.scenarioanomaly`` judge the runs.
This module is the command line and re-exports what the other benchmarks and tests import.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from bench.common import save
from bench.scenarioanomaly import anomaly_report, incremental_state
from bench.scenariomarket import Market, run_scenario
from bench.scenarioscore import RULES, SignalScore, score
from bench.scenariotune import GRID, tune
from bench.scenarioworld import (
    CODE,
    DAY,
    FILE,
    FULL,
    HELD_OUT,
    HOUR,
    MIXES,
    SMALL,
    START,
    TUNING,
    TUNING_SEEDS,
    Injection,
    MarketParams,
    ScenarioRun,
    SimClock,
    with_mix,
)
from readmodels import signals as S

__all__ = [
    "CODE",
    "DAY",
    "FILE",
    "FULL",
    "GRID",
    "HELD_OUT",
    "HOUR",
    "MIXES",
    "RULES",
    "SMALL",
    "START",
    "TUNING",
    "TUNING_SEEDS",
    "Injection",
    "Market",
    "MarketParams",
    "ScenarioRun",
    "SignalScore",
    "SimClock",
    "anomaly_report",
    "evaluate_runs",
    "incremental_state",
    "main",
    "run_scenario",
    "score",
    "tune",
    "with_mix",
]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def evaluate_runs(runs: Sequence[ScenarioRun], thresholds: S.Thresholds) -> dict[str, Any]:
    totals = {code: SignalScore() for code in RULES}
    per_run = []
    for run in runs:
        scores, found = score(run, thresholds)
        for code, s in scores.items():
            totals[code].add(s)
        per_run.append(
            {
                "seed": run.seed,
                "mix": run.mix,
                "every_pattern_found": all(found.values()),
                "found": found,
                "signals": {
                    code: {
                        "precision": s.precision,
                        "recall": s.recall,
                        "fired": s.fired,
                        "expected": s.expected,
                    }
                    for code, s in scores.items()
                },
                "anomaly": anomaly_report(run),
                "stats": run.stats,
            }
        )
    return {
        "per_signal": {
            code: {
                "precision": s.precision,
                "recall": s.recall,
                "fired": s.fired,
                "true_positives": s.true_positives,
                "expected": s.expected,
                "found": s.found,
                "false_positives": s.false_positives[:20],
                "missed": s.missed[:20],
            }
            for code, s in totals.items()
        },
        "runs": per_run,
        "every_pattern_found_in_every_run": all(r["every_pattern_found"] for r in per_run),
    }


def _run(
    params: MarketParams, seed: int, mix: str, workdir: Path, cache: Path | None
) -> ScenarioRun:
    """A run, or its records from ``cache`` when the same parameters ran before."""
    if cache is None:
        return run_scenario(params, seed, mix=mix, workdir=workdir)
    digest = hashlib.sha256(repr((params, seed)).encode()).hexdigest()[:16]
    path = cache / f"run-{seed}-{digest}.pickle"
    if path.exists():
        with path.open("rb") as source:
            loaded: ScenarioRun = pickle.load(source)  # our own cache, never a download
        return loaded
    run = run_scenario(params, seed, mix=mix, workdir=workdir)
    cache.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as sink:
        pickle.dump(run, sink)
    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="test-sized runs (~2k codes)")
    parser.add_argument("--tune-only", action="store_true", help="print tuned thresholds only")
    parser.add_argument(
        "--no-save", action="store_true", help="do not write bench/results/signals.json"
    )
    parser.add_argument(
        "--cache", type=Path, help="keep each run's records here and reuse them (development)"
    )
    args = parser.parse_args(argv)
    base = SMALL if args.small else FULL
    frozen = S.Thresholds()
    with tempfile.TemporaryDirectory(prefix="tracemark-scenario-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        tuning = []
        for seed, mix in TUNING:
            tuning.append(_run(with_mix(base, mix), seed, mix, workdir, args.cache))
            print(f"tuning run {seed} ({mix}): {tuning[-1].stats}", file=sys.stderr)
        tuned, tuning_report = tune(tuning)
        changed = {
            f.name: {"frozen": getattr(frozen, f.name), "tuned": getattr(tuned, f.name)}
            for f in fields(S.Thresholds)
            if getattr(frozen, f.name) != getattr(tuned, f.name)
        }
        print(f"tuned thresholds: {tuned}", file=sys.stderr)
        if changed:
            print(f"differ from the frozen ones: {changed}", file=sys.stderr)
        if args.tune_only:
            return 0
        held_out = []
        for seed, mix in HELD_OUT:
            held_out.append(_run(with_mix(base, mix), seed, mix, workdir, args.cache))
            print(f"held-out run {seed} ({mix}): {held_out[-1].stats}", file=sys.stderr)
        result = evaluate_runs(held_out, frozen)
        result_tuning = evaluate_runs(tuning, frozen)
        elapsed = time.perf_counter() - started
    print("| signal | precision | recall | held-out runs |")
    for code, s in result["per_signal"].items():
        print(f"| `{code}` | {_fmt(s['precision'])} | {_fmt(s['recall'])} | {len(held_out)} |")
    for r in result["runs"]:
        full, now = r["anomaly"]["risk_at_0_5"], r["anomaly"]["risk_at_0_5_incremental"]
        print(f"run {r['seed']} ({r['mix']}): risk >= 0.5 full recompute {full}; incremental {now}")
    everything = result["every_pattern_found_in_every_run"]
    print(f"every injected pattern found in every held-out run: {everything}")
    if not args.no_save and not args.small:  # only full-size runs are the benchmark's result
        path = save(
            "signals",
            {
                "size": "full",
                "params": asdict(base),
                "mixes": MIXES,
                "tuning": [{"seed": s, "mix": m} for s, m in TUNING],
                "held_out": [{"seed": s, "mix": m} for s, m in HELD_OUT],
                "thresholds_frozen": asdict(frozen),
                "thresholds_tuned": asdict(tuned),
                "frozen_differs_from_tuned": changed,
                "tuning_report": tuning_report,
                "held_out_result": result,
                "tuning_runs_with_frozen": {
                    k: {"precision": v["precision"], "recall": v["recall"]}
                    for k, v in result_tuning["per_signal"].items()
                },
                # This invocation (runs reused from --cache take no time here) and the
                # simulations themselves, whenever they ran.
                "elapsed_s": round(elapsed, 1),
                "simulation_s": round(
                    sum(r.stats["simulate_s"] + r.stats["plan_s"] for r in [*tuning, *held_out]), 1
                ),
            },
        )
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    # Through the module's own name, as before the split. A pickled run (``--cache``) names
    # bench.scenarioworld's classes; one pickled before names bench.scenario's re-exports.
    from bench import scenario

    sys.exit(scenario.main())
