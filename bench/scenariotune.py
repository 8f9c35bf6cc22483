"""Tuning the rules' thresholds on the scenario's tuning runs: per rule, a grid searched for the
best F1."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

from bench.scenarioscore import SignalScore, score
from bench.scenarioworld import DAY, HOUR, ScenarioRun
from readmodels import holderrules, market, velocityrules
from readmodels import signals as S

#: Candidate values per rule; the rules are independent, so each rule's grid is searched alone.
GRID: dict[str, dict[str, Sequence[Any]]] = {
    S.SOLD_BY_NON_HOLDER: {"retry_window": (60, 300, 600, 1_800, 3_600)},
    S.DEAD_GOOD_TRANSFER: {"retry_window": (60, 300, 600, 1_800, 3_600)},
    S.OFFERED_BY_NON_HOLDER: {
        "offer_grace": (HOUR, 2 * HOUR, 6 * HOUR),
        "offer_min_platforms": (1, 2, 3),
    },
    S.PROBE_BURST: {
        "probe_flag_min": (10, 20, 40),
        "probe_window": (600, HOUR, 6 * HOUR),
        "probe_min_failures": (10, 20, 40, 80, 160),
        "probe_min_ratio": (0.2, 0.5, 0.8),
    },
    S.CODE_VELOCITY: {
        "code_window": (HOUR, 2 * HOUR, 6 * HOUR, DAY),
        "code_min_platforms": (2, 3, 4),
    },
    S.PLATFORM_VELOCITY: {
        "platform_window": (2 * HOUR, 6 * HOUR, DAY),
        "platform_min_foreign": (10, 20, 30, 50, 80),
        "platform_baseline_factor": (2.0, 3.0, 5.0),
        "platform_min_foreign_ratio": (0.2, 0.5, 0.8),
    },
    S.BATCH_VELOCITY: {
        "batch_window": (2 * HOUR, 6 * HOUR, DAY),
        "batch_min_codes": (5, 10, 20, 40),
        "batch_min_foreign_ratio": (0.5, 0.8, 0.95),
    },
    S.LAUNDERING_RING: {
        "ring_min_returns": (1, 2, 3),
        "ring_max_parties": (3, 4, 6),
        "ring_min_growth": (1.1, 1.25, 1.5, 2.0),
    },
}


def _f1(total: SignalScore) -> float:
    p, r = total.precision, total.recall
    if not p or not r:
        return 0.0
    return 2 * p * r / (p + r)


def tune(runs: Sequence[ScenarioRun]) -> tuple[S.Thresholds, dict[str, Any]]:
    """Per rule, the grid point with the best F1 pooled over the tuning runs; among equals,
    the one in the middle of the plateau (the median of each field over the tied points)."""
    tuned = S.Thresholds()
    report: dict[str, Any] = {}
    names = {f.name for f in fields(S.Thresholds)}
    for code, grid in GRID.items():
        keys = list(grid)
        assert set(keys) <= names
        results = []
        for values in itertools.product(*(grid[k] for k in keys)):
            th = replace(S.Thresholds(), **dict(zip(keys, values, strict=True)))
            total = SignalScore()
            for run in runs:
                scores, _ = score(run, th, _rule_signals(run, th, code))
                total.add(scores[code])
            results.append((round(_f1(total), 6), values))
        best = max(f for f, _ in results)
        tied = [values for f, values in results if f == best]
        middle = []
        for i in range(len(keys)):
            column = sorted(v[i] for v in tied)
            middle.append(column[(len(column) - 1) // 2])
        chosen = tuple(middle) if tuple(middle) in tied else tied[len(tied) // 2]
        tuned = replace(tuned, **dict(zip(keys, chosen, strict=True)))
        report[code] = {
            "f1": best,
            "chosen": dict(zip(keys, chosen, strict=True)),
            "grid_points": len(results),
            "tied": len(tied),
            # How wide the best plateau is: the margin the frozen values have on these runs.
            "plateau": {
                k: [min(v[i] for v in tied), max(v[i] for v in tied)] for i, k in enumerate(keys)
            },
        }
    return tuned, report


def _rule_signals(run: ScenarioRun, th: S.Thresholds, code: str) -> list[S.Signal]:
    """Only the one rule being tuned (cheaper than every rule per grid point)."""
    inputs, now, since = run.inputs, run.now, run.since
    chains = _chains(run)
    regs, events = inputs.registrations, inputs.verifications
    if code == S.SOLD_BY_NON_HOLDER:
        return holderrules.sold_by_non_holder(inputs.attempts, chains, th)
    if code == S.DEAD_GOOD_TRANSFER:
        return holderrules.dead_good_transfers(inputs.attempts, chains, th)
    if code == S.OFFERED_BY_NON_HOLDER:
        return holderrules.offered_by_non_holder(events, chains, regs, th, now=now)
    if code == S.PROBE_BURST:
        return velocityrules.probe_bursts(events, inputs.probe_flags, th)
    if code == S.CODE_VELOCITY:
        return velocityrules.code_velocity(events, regs, th)
    if code == S.PLATFORM_VELOCITY:
        return velocityrules.platform_velocity(events, chains, regs, th, now=now, since=since)
    if code == S.BATCH_VELOCITY:
        return velocityrules.batch_velocity(events, chains, regs, th, now=now)
    if code == S.LAUNDERING_RING:
        return holderrules.laundering_rings(chains, th)
    return holderrules.duplicate_claims(regs, inputs.conflicts)


def _chains(run: ScenarioRun) -> market.Chains:
    return run.chains
