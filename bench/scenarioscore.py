"""The scenario's scoring: per signal, what fired against the labels; per injection, whether it
was found."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.scenarioworld import ScenarioRun
from readmodels import rules
from readmodels import signals as S


@dataclass
class SignalScore:
    fired: int = 0
    true_positives: int = 0
    expected: int = 0
    found: int = 0
    false_positives: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def add(self, other: SignalScore) -> None:
        self.fired += other.fired
        self.true_positives += other.true_positives
        self.expected += other.expected
        self.found += other.found
        self.false_positives += other.false_positives
        self.missed += other.missed

    @property
    def precision(self) -> float | None:
        return None if not self.fired else self.true_positives / self.fired

    @property
    def recall(self) -> float | None:
        return None if not self.expected else self.found / self.expected


RULES = (
    S.DUPLICATE_CLAIM,
    S.SOLD_BY_NON_HOLDER,
    S.OFFERED_BY_NON_HOLDER,
    S.DEAD_GOOD_TRANSFER,
    S.PROBE_BURST,
    S.CODE_VELOCITY,
    S.PLATFORM_VELOCITY,
    S.BATCH_VELOCITY,
    S.LAUNDERING_RING,
)


def score(
    run: ScenarioRun, thresholds: S.Thresholds, signals: Sequence[S.Signal] | None = None
) -> tuple[dict[str, SignalScore], dict[str, bool]]:
    """Per signal, its counts against the labels; per injection, whether it was found."""
    if signals is None:
        signals = rules.evaluate(run.inputs, thresholds, now=run.now, since=run.since)
    fraud = run.fraud_subjects
    fired: dict[str, set[S.Subject]] = defaultdict(set)
    for s in signals:
        fired[s.code].add(s.subject)
    scores: dict[str, SignalScore] = {}
    for code in RULES:
        expected = set().union(*(i.expected.get(code, set()) for i in run.injections))
        got = fired.get(code, set())
        scores[code] = SignalScore(
            fired=len(got),
            true_positives=len(got & fraud),
            expected=len(expected),
            found=len(got & expected),
            false_positives=sorted(f"{run.seed}:{s.id}" for s in got - fraud),
            missed=sorted(f"{run.seed}:{s.id}" for s in expected - got),
        )
    found = {}
    for injection in run.injections:
        found[injection.name] = any(
            s.subject in injection.subjects or injection.goods.intersection(s.goods)
            for s in signals
        )
    return scores, found
