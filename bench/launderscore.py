"""Scoring laundering signals against ``bench.launderscenario``'s labels: a run
(``run_launder``), and per rule its fired subjects matched to the labelled cases
(``score_launder``). The benchmark and its seeds are ``bench.launder_bench``'s.

A subject is matched to a labelled case when the signal implicates one of the case's goods
or names one of its parties (platform and keyed reference hash). It is *on target* when that
case is one of the rule's injected patterns, *on other fraud* when it is another injected
pattern (another laundering rule's, or the scenario's leak, double seller, ring, bot or
pirate), *on a near miss* or *on honest* otherwise. ``precision`` = (on target + on other
fraud) / fired, ``bench.scenario``'s convention; ``precision_on_target`` counts only on
target. ``recall`` = the rule's injected cases it named / its injected cases.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.launderscenario import LAUNDER_RULES, Case, LaunderMarket, LaunderParams
from bench.scenario import Market, MarketParams, ScenarioRun, SimClock, run_scenario
from readmodels import rules
from readmodels import signals as S
from registry.service import Registry

#: The targets of issue 18 item 2, on the held-out runs.
TARGET_PRECISION = 0.9
TARGET_RECALL = 0.95


@dataclass
class LaunderRun:
    """A finished run: the scenario's records and labels, and the laundering cases."""

    scenario: ScenarioRun
    cases: list[Case]


def run_launder(
    params: MarketParams,
    seed: int,
    *,
    mix: str = "base",
    workdir: Path,
    launder: LaunderParams | None = None,
    db_url: str | None = None,
) -> LaunderRun:
    markets: list[LaunderMarket] = []

    def make(p: MarketParams, s: int, registry: Registry, clock: SimClock) -> Market:
        markets.append(LaunderMarket(p, s, registry, clock, launder))
        return markets[-1]

    run = run_scenario(params, seed, mix=mix, workdir=workdir, db_url=db_url, market_class=make)
    return LaunderRun(run, markets[0].cases)


@dataclass
class RuleScore:
    fired: int = 0
    on_target: int = 0
    on_other_fraud: int = 0
    on_near_miss: int = 0
    on_honest: int = 0
    injected: int = 0
    found: int = 0
    #: What a reader needs to see why: ``seed:subject (variant or detail)``.
    false_positives: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    missed_by_variant: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, other: RuleScore) -> None:
        for name in ("fired", "on_target", "on_other_fraud", "on_near_miss", "on_honest"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.injected += other.injected
        self.found += other.found
        self.false_positives += other.false_positives
        self.missed += other.missed
        for variant, n in other.missed_by_variant.items():
            self.missed_by_variant[variant] += n

    @property
    def precision(self) -> float | None:
        good = self.on_target + self.on_other_fraud
        return None if not self.fired else round(good / self.fired, 4)

    @property
    def precision_on_target(self) -> float | None:
        return None if not self.fired else round(self.on_target / self.fired, 4)

    @property
    def recall(self) -> float | None:
        return None if not self.injected else round(self.found / self.injected, 4)

    def document(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "precision_on_target": self.precision_on_target,
            "recall": self.recall,
            "fired": self.fired,
            "on_target": self.on_target,
            "on_other_fraud": self.on_other_fraud,
            "on_near_miss": self.on_near_miss,
            "on_honest": self.on_honest,
            "injected": self.injected,
            "found": self.found,
            "meets_target": (self.precision or 0) >= TARGET_PRECISION
            and (self.recall or 0) >= TARGET_RECALL,
            "false_positives": self.false_positives[:20],
            "missed": self.missed[:20],
            "missed_by_variant": dict(self.missed_by_variant),
        }


_HEX = re.compile(r"[0-9a-f]{8,}")


def _matches(case: Case, signal: S.Signal) -> bool:
    """Does the signal implicate one of the case's goods, or name one of its parties?"""
    if case.goods.intersection(signal.goods):
        return True
    if signal.subject.kind == "good" and any(
        S.good_subject(g) == signal.subject for g in case.goods
    ):
        return True
    runs = _HEX.findall(signal.subject.id)
    return any(
        platform in signal.subject.id and any(ref.startswith(r) for r in runs)
        for platform, ref in case.names
    )


def score_launder(
    run: LaunderRun,
    thresholds: S.Thresholds | None = None,
    signals: Sequence[S.Signal] | None = None,
) -> dict[str, RuleScore]:
    """Per laundering rule, its fired subjects classified against the labels, and recall."""
    sc = run.scenario
    if signals is None:
        signals = rules.evaluate(sc.inputs, thresholds, now=sc.now, since=sc.since)
    by_subject: dict[tuple[str, S.Subject], list[S.Signal]] = defaultdict(list)
    for s in signals:
        if s.code in LAUNDER_RULES:
            by_subject[(s.code, s.subject)].append(s)
    scores = {code: RuleScore() for code in LAUNDER_RULES}
    named: dict[int, set[str]] = defaultdict(set)  # case index -> codes that named it
    for (code, subject), fired in by_subject.items():
        score = scores[code]
        score.fired += 1
        hits = [i for i, c in enumerate(run.cases) if any(_matches(c, s) for s in fired)]
        for i in hits:
            named[i].add(code)
        cases = [run.cases[i] for i in hits]
        injections = [
            inj
            for inj in sc.injections
            if subject in inj.subjects or any(inj.goods.intersection(s.goods) for s in fired)
        ]
        if any(c.positive and c.code == code for c in cases):
            score.on_target += 1
            continue
        if injections or any(c.positive for c in cases):
            score.on_other_fraud += 1
            continue
        near = [c for c in cases if not c.positive]
        if near:
            score.on_near_miss += 1
            what = f"near miss of {near[0].code} ({near[0].variant})"
        else:
            score.on_honest += 1
            what = fired[0].detail[:100]
        score.false_positives.append(f"{sc.seed}:{subject.kind}:{subject.id}: {what}")
    for i, case in enumerate(run.cases):
        if not case.positive:
            continue
        score = scores[case.code]
        score.injected += 1
        if case.code in named[i]:
            score.found += 1
        else:
            score.missed.append(f"{sc.seed}:{case.variant}: {_case_name(case)}")
            score.missed_by_variant[case.variant] += 1
    return scores


def _case_name(case: Case) -> str:
    goods = sorted(S.good_name(g) for g in case.goods)
    return f"{len(goods)} goods, first {goods[0][:20]}..." if goods else "no goods"


def case_counts(runs: Sequence[LaunderRun]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {
        code: {"injected": 0, "near_misses": 0} for code in LAUNDER_RULES
    }
    for run in runs:
        for case in run.cases:
            counts[case.code]["injected" if case.positive else "near_misses"] += 1
    return counts


__all__ = [
    "TARGET_PRECISION",
    "TARGET_RECALL",
    "LaunderRun",
    "RuleScore",
    "case_counts",
    "run_launder",
    "score_launder",
]
