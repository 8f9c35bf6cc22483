"""The anomaly score: a statistical risk number, from robust z-scores, on top of the rules.

The score: robust z-scores (median and MAD) of a few features per good and per platform,
combined into one number from 0 to 1.

- Per good: ``verification_rate`` (platform verifications a day), ``platforms`` (distinct
  platforms that verified it), ``foreign_platforms`` (of those, the ones that never took part
  in a transfer of it), ``transfer_rate`` (transfers a day) and ``price_change`` (log2 of its
  highest price over its first). Rates are per day of *exposure*: the time since
  registration (or since the start of the look-back, if later), floored at one day, which is
  how the time since registration enters: on its own it would flag every launch.
- Per platform: ``verification_rate``, ``failure_ratio`` (failed code lookups), ``foreign_ratio``
  (single-use codes it verified and never acquired), ``transfer_rate``, ``refused_ratio``
  (refused transfers among its reports). Ratios are shrunk towards 0 for small counts.

For each feature, z = (x - median) / scale over the population (the goods of one type, or the
platforms, active in the look-back), with scale = 1.4826 x MAD; when more than half the
population shares one value (MAD = 0, usual: most goods are never verified twice) the
scale falls back to the distance from the median to the 90th percentile / 1.2816, and is never
below a per-feature floor (so that "2 platforms where everyone has 1" is not a 10-sigma
event). Only the suspicious side counts (z > 0). The combined distance d = sqrt(sum z^2)
maps to ``d^2 / (d^2 + HALF^2)``: 0 for a typical good, 0.5 at ``HALF`` robust deviations,
monotone in every feature's distance, and below 1.

NOTE: why not an isolation forest. (1) Explainability: a robust z names the feature and by
how much ("verified 40 times a day, median 0.2"), which an auditor can check; a path length
in random trees cannot be explained. (2) Dependencies: numpy is not installed and
scikit-learn is not to be added; a forest in pure Python would be slow to build every few
seconds at 10^5 goods, and non-deterministic unless seeded. (3) The features are few and each
is suspicious in one direction only; a forest isolates both tails, so never-verified and
very cheap goods would look as anomalous as hot ones. (4) The median and MAD have a 50%
breakdown point: a few frauds in the reference population (the point of the exercise) do not
move the baseline they are measured against, where a mean and standard deviation would be
dragged towards them.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from readmodels.market import (
    ANONYMOUS,
    Chains,
    EntryRecord,
    GoodKey,
    SignalInputs,
    TransferRecord,
    VerificationEventRecord,
)
from readmodels.signals import (
    ANOMALY,
    DetailPart,
    Evidence,
    Signal,
    Subject,
    says,
)

K = TypeVar("K")

DAY: Final = 86_400
#: The combined robust distance at which the anomaly score is 0.5.
HALF: Final = 6.0
#: MAD to a normal standard deviation; the normal's 90th percentile in standard deviations.
_MAD_TO_SD: Final = 1.4826
_Q90_SD: Final = 1.2816
#: Counts added to a ratio's denominator, so that 1 failure in 1 lookup is not 100%.
_SHRINK: Final = 10.0

#: The smallest scale of each feature: a difference below it is never a deviation.
FLOORS: Final[Mapping[str, float]] = {
    "verification_rate": 1.0,
    "platforms": 1.0,
    "foreign_platforms": 1.0,
    "transfer_rate": 0.5,
    "price_change": 0.5,
    "failure_ratio": 0.05,
    "foreign_ratio": 0.1,
    "refused_ratio": 0.05,
}


@dataclass(frozen=True, slots=True)
class Scale:
    """A feature's robust centre and spread over a population."""

    median: float
    scale: float

    @classmethod
    def fit(cls, values: Sequence[float], floor: float) -> Scale:
        if not values:
            return cls(0.0, floor)
        ordered = sorted(values)
        median = _quantile(ordered, 0.5)
        mad = _quantile(sorted(abs(v - median) for v in ordered), 0.5)
        scale = _MAD_TO_SD * mad
        if scale == 0.0:
            scale = (_quantile(ordered, 0.9) - median) / _Q90_SD
        return cls(median, max(scale, floor))

    def z(self, value: float) -> float:
        return (value - self.median) / self.scale


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not ordered:
        return 0.0
    position = q * (len(ordered) - 1)
    lo = math.floor(position)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (position - lo)


def anomaly_score(zs: Iterable[float], half: float = HALF) -> float:
    """0..1 from robust z-scores: only the suspicious side (z > 0) counts."""
    d2 = sum(z * z for z in zs if z > 0)
    return d2 / (d2 + half * half)


@dataclass(frozen=True, slots=True)
class Contribution:
    """One feature's part in a score: its value, the population's median, its z."""

    feature: str
    value: float
    median: float
    z: float


def score_population(
    features: Mapping[K, Mapping[str, float]], floors: Mapping[str, float] = FLOORS
) -> dict[K, tuple[float, list[Contribution]]]:
    """Every member's anomaly score against the population it belongs to."""
    scales = fit_scales(features.values(), floors)
    return {member: score_with(values, scales) for member, values in features.items()}


def fit_scales(
    population: Iterable[Mapping[str, float]], floors: Mapping[str, float] = FLOORS
) -> dict[str, Scale]:
    """Each feature's scale over a population (features a member lacks count as 0)."""
    members = list(population)
    names = sorted({name for values in members for name in values})
    return {
        name: Scale.fit([values.get(name, 0.0) for values in members], floors[name])
        for name in names
    }


def score_with(
    values: Mapping[str, float], scales: Mapping[str, Scale]
) -> tuple[float, list[Contribution]]:
    """One member's score against scales fitted before (``fit_scales``)."""
    parts = []
    for name in sorted(scales):
        value = values.get(name, 0.0)
        parts.append(Contribution(name, value, scales[name].median, scales[name].z(value)))
    return anomaly_score(p.z for p in parts), parts


#: Scales as ``score_only`` reads them: (feature, median, scale) in ``score_with``'s order.
Fitted = tuple[tuple[str, float, float], ...]


def fitted(scales: Mapping[str, Scale]) -> Fitted:
    """``scales`` in the order ``score_with`` reads them, for ``score_only``."""
    return tuple((name, scales[name].median, scales[name].scale) for name in sorted(scales))


def score_only(values: Mapping[str, float], scales: Fitted) -> float:
    """``score_with``'s score alone: the same z-scores and ``anomaly_score``'s sum, so the
    same float (the incremental engine scores ~10^4 goods a refresh and needs a good's parts
    only when it is explained, from ``EXPLAIN_FROM``)."""
    # ``anomaly_score``'s sum, over a list instead of a generator (the same additions).
    d2 = sum(
        [
            z * z
            for name, median, scale in scales
            if (z := (values.get(name, 0.0) - median) / scale) > 0
        ]
    )
    return d2 / (d2 + HALF * HALF)


# -- features ----------------------------------------------------------------------------------


def good_features(
    inputs: SignalInputs, chains: Chains, *, now: int, since: int, grace: int
) -> dict[int, dict[GoodKey, dict[str, float]]]:
    """Per good type, per good named by the records: the good's features."""
    events: dict[GoodKey, list[VerificationEventRecord]] = defaultdict(list)
    for v in inputs.verifications:
        events[v.good].append(v)
    transfers: dict[GoodKey, list[TransferRecord]] = defaultdict(list)
    for t in inputs.transfers:
        transfers[t.good].append(t)
    out: dict[int, dict[GoodKey, dict[str, float]]] = defaultdict(dict)
    for good in events.keys() | transfers.keys():
        values = good_feature_values(
            inputs.registrations.get(good),
            events.get(good, ()),
            transfers.get(good, ()),
            chains,
            now=now,
            since=since,
            grace=grace,
        )
        if values is not None:
            out[good[0]][good] = values
    return dict(out)


def good_feature_values(
    entry: EntryRecord | None,
    events: Sequence[VerificationEventRecord],
    transfers: Sequence[TransferRecord],
    chains: Chains,
    *,
    now: int,
    since: int,
    grace: int,
) -> dict[str, float] | None:
    """One good's features from its own verifications and transfers; None when it is not
    in the population (unregistered, or neither verified by a platform nor transferred)."""
    verifications = 0
    platforms: set[str] = set()
    foreign: set[str] = set()
    for v in events:
        if v.platform != ANONYMOUS and v.verdict != "unknown":
            verifications += 1
            platforms.add(v.platform)
            if v.at + grace <= now and not chains.dealt_by(v.good, v.platform, v.at + grace):
                foreign.add(v.platform)
    if entry is None or not (verifications or transfers):
        return None
    ordered = sorted(transfers, key=lambda t: (t.created_at, t.transfer_id))
    seen = [t.price for t in ordered if t.price is not None]
    start = max(entry.timestamp or since, since)
    days = max(1.0, (now - start) / DAY)
    change = 0.0
    if len(seen) >= 2 and seen[0] > 0:
        change = max(0.0, math.log2(max(seen) / seen[0]))
    return {
        "verification_rate": verifications / days,
        "platforms": float(len(platforms)),
        "foreign_platforms": float(len(foreign)),
        "transfer_rate": len(transfers) / days,
        "price_change": change,
    }


def platform_features(
    inputs: SignalInputs, chains: Chains, *, now: int, since: int, grace: int
) -> dict[str, dict[str, float]]:
    """Per platform (verifying or reporting, anonymous callers together): its features."""
    days = max(1.0, (now - since) / DAY)
    verified: Counter[str] = Counter()
    lookups: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    settled: Counter[str] = Counter()
    foreign: Counter[str] = Counter()
    for v in inputs.verifications:
        verified[v.platform] += 1
        if v.via == "code":
            lookups[v.platform] += 1
            failed[v.platform] += v.failed_code_lookup
        entry = inputs.registrations.get(v.good)
        if (
            v.platform == ANONYMOUS
            or v.verdict == "unknown"
            or entry is None
            or entry.use != 1
            or v.at + grace > now
        ):
            continue
        settled[v.platform] += 1
        foreign[v.platform] += not chains.dealt_by(v.good, v.platform, v.at + grace)
    reported: Counter[str] = Counter(t.platform for t in inputs.transfers)
    refused: Counter[str] = Counter(a.platform for a in inputs.attempts)
    names = set(verified) | set(reported) | set(refused)
    return {
        p: platform_feature_values(
            PlatformCounts(
                verified[p], lookups[p], failed[p], settled[p], foreign[p], reported[p], refused[p]
            ),
            days,
        )
        for p in names
    }


@dataclass(slots=True)
class PlatformCounts:
    """What one platform did in the look-back, as its features count it."""

    verified: int = 0
    lookups: int = 0
    failed: int = 0
    #: Settled verifications of registered single-use codes, and of those the foreign ones.
    settled: int = 0
    foreign: int = 0
    reported: int = 0
    refused: int = 0


def platform_feature_values(counts: PlatformCounts, days: float) -> dict[str, float]:
    c = counts
    return {
        "verification_rate": c.verified / days,
        "failure_ratio": c.failed / (c.lookups + _SHRINK),
        "foreign_ratio": c.foreign / (c.settled + _SHRINK),
        "transfer_rate": c.reported / days,
        "refused_ratio": c.refused / (c.refused + c.reported + _SHRINK),
    }


def explain(subject: Subject, score: float, parts: Sequence[Contribution]) -> Signal:
    top = sorted((p for p in parts if p.z > 0), key=lambda p: -p.z)[:3]
    described = "; ".join(
        f"{p.feature.replace('_', ' ')} {p.value:.2f} (median {p.median:.2f}, z {p.z:.1f})"
        for p in top
    )
    return Signal(
        ANOMALY,
        f"anomaly score {score:.2f}: {described}",
        tuple(Evidence("feature", p.feature, None, f"{p.value:.3f}") for p in top),
        subject,
        message=_message(score, top),
    )


def _message(score: float, top: Sequence[Contribution]) -> tuple[DetailPart, ...]:
    """The detail as templates: the score with the first feature, each other feature a part
    (joined as the detail joins them). A feature's name is a word a page translates
    (``js.param.feature.<name>``)."""
    if not top:
        return (says(ANOMALY, "none", score=f"{score:.2f}"),)
    first, *others = top
    return (
        says(
            ANOMALY,
            score=f"{score:.2f}",
            feature=first.feature,
            value=f"{first.value:.2f}",
            median=f"{first.median:.2f}",
            z=f"{first.z:.1f}",
        ),
        *(
            says(
                ANOMALY,
                "more",
                feature=p.feature,
                value=f"{p.value:.2f}",
                median=f"{p.median:.2f}",
                z=f"{p.z:.1f}",
            )
            for p in others
        ),
    )


__all__ = [
    "DAY",
    "FLOORS",
    "HALF",
    "Contribution",
    "Fitted",
    "PlatformCounts",
    "Scale",
    "anomaly_score",
    "explain",
    "fit_scales",
    "fitted",
    "good_feature_values",
    "good_features",
    "platform_feature_values",
    "platform_features",
    "score_only",
    "score_population",
    "score_with",
]
