"""The rules about rates: probe bursts, and codes verified too fast (per code, per platform,
per bulk batch) by platforms that never acquire them (``readmodels.rules`` runs them)."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence

from readmodels.market import (
    ANONYMOUS,
    Chains,
    EntryRecord,
    GoodKey,
    ProbeFlag,
    VerificationEventRecord,
    single_use_verifications,
)
from readmodels.signals import (
    BATCH_VELOCITY,
    CODE_VELOCITY,
    HOUR,
    PLATFORM_VELOCITY,
    PROBE_BURST,
    Evidence,
    Signal,
    Subject,
    Thresholds,
    batch_subject,
    capped,
    good_signal,
    says,
    verification_evidence,
)


def window_max(times: Sequence[int], window: int) -> tuple[int, int]:
    """The most of the sorted ``times`` inside any ``window`` seconds (both ends included),
    and where it starts: the first start holding that many.

    Per start ``i``, the times up to ``times[i] + window`` (a bisection each, in C: the
    incremental engine asks this of every busy platform each refresh, and the sliding loop
    it replaces cost ~10x more). A window holding the most starts at a time, so counting
    from each start finds the most; tests/readmodels/test_window_max.py holds it equal to the
    sliding window."""
    if not times:
        return 0, 0
    right = bisect.bisect_right
    counts = [right(times, t + window, i) - i for i, t in enumerate(times)]
    best = max(counts)
    return best, counts.index(best)


def _dense_spans(times: Sequence[int], window: int, least: int) -> list[tuple[int, int]]:
    """The merged stretches of the sorted ``times`` covered by windows holding ``least``."""
    spans: list[tuple[int, int]] = []
    lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] > window:
            lo += 1
        if hi - lo + 1 >= least:
            if spans and times[lo] <= spans[-1][1]:
                spans[-1] = (spans[-1][0], t)
            else:
                spans.append((times[lo], t))
    return spans


# -- the rules ---------------------------------------------------------------------------------


def probe_bursts(
    verifications: Iterable[VerificationEventRecord], flags: Iterable[ProbeFlag], th: Thresholds
) -> list[Signal]:
    """Card-draining probes: failed code lookups piling up for one key (or for all anonymous
    callers together), or a key the API's rate limiter flagged for exhausting its budget."""
    lookups: dict[str, list[VerificationEventRecord]] = defaultdict(list)
    for v in verifications:
        if v.via == "code":
            lookups[v.platform].append(v)
    signals = []
    for platform, events in lookups.items():
        events.sort(key=lambda v: (v.at, v.event_id))
        failed = [v for v in events if v.failed_code_lookup]
        if len(failed) < th.probe_min_failures:
            continue
        times = [v.at for v in failed]
        peak, _ = window_max(times, th.probe_window)
        if peak < th.probe_min_failures:
            continue
        # The burst: every stretch where a window holds at least the threshold of failures.
        spans = _dense_spans(times, th.probe_window, th.probe_min_failures)
        inside = [v for v in events if any(a <= v.at <= b for a, b in spans)]
        burst = [v for v in inside if v.failed_code_lookup]
        if len(burst) < th.probe_min_ratio * len(inside):
            continue
        hits = [v for v in inside if not v.failed_code_lookup]
        evidence = [verification_evidence(v) for v in burst[:3]]
        evidence += [verification_evidence(v) for v in hits]
        minutes = (spans[-1][1] - spans[0][0]) // 60
        signals.append(
            Signal(
                PROBE_BURST,
                f"{len(burst)} failed code lookups of {len(inside)} by {platform} over "
                f"{minutes} min (up to {peak} within {th.probe_window // 60} min); "
                f"{len(hits)} hit(s), possibly drained codes",
                capped(evidence),
                Subject("key", f"platform:{platform}"),
                tuple(dict.fromkeys(v.good for v in hits)),
                () if platform == ANONYMOUS else (platform,),
                (
                    says(
                        PROBE_BURST,
                        "burst",
                        failed=len(burst),
                        lookups=len(inside),
                        platform=platform,
                        minutes=minutes,
                        peak=peak,
                        window=th.probe_window // 60,
                        hits=len(hits),
                    ),
                ),
            )
        )
    for flag in flags:
        if flag.failed_probes + flag.refused < th.probe_flag_min:
            continue
        signals.append(
            Signal(
                PROBE_BURST,
                f"{flag.key} exhausted its failed-code-lookup budget: {flag.failed_probes} "
                f"failed, {flag.refused} refused since it was flagged",
                (
                    Evidence(
                        "probe-flag", flag.key, int(flag.first_at), f"last at {int(flag.last_at)}"
                    ),
                ),
                Subject("key", flag.key),
                message=(
                    says(
                        PROBE_BURST,
                        "flag",
                        key=flag.key,
                        failed=flag.failed_probes,
                        refused=flag.refused,
                    ),
                ),
            )
        )
    return signals


def code_velocity(
    verifications: Iterable[VerificationEventRecord],
    registrations: Mapping[GoodKey, EntryRecord],
    th: Thresholds,
) -> list[Signal]:
    """One single-use code verified on many platforms at once: listed in several places."""
    by_good: dict[GoodKey, list[VerificationEventRecord]] = defaultdict(list)
    for v in single_use_verifications(verifications, registrations):
        by_good[v.good].append(v)
    signals = []
    for good, events in by_good.items():
        if len({v.platform for v in events}) < th.code_min_platforms:
            continue
        events.sort(key=lambda v: (v.at, v.event_id))
        seen: Counter[str] = Counter()
        lo = 0
        for hi, v in enumerate(events):
            seen[v.platform] += 1
            while v.at - events[lo].at > th.code_window:
                seen[events[lo].platform] -= 1
                if not seen[events[lo].platform]:
                    del seen[events[lo].platform]
                lo += 1
            if len(seen) >= th.code_min_platforms:
                window = events[lo : hi + 1]
                signals.append(
                    good_signal(
                        CODE_VELOCITY,
                        f"verified on {len(seen)} platforms ({', '.join(sorted(seen))}) within "
                        f"{(v.at - events[lo].at) // 60} min",
                        (verification_evidence(w) for w in window),
                        good,
                        seen,
                        says(
                            CODE_VELOCITY,
                            count=len(seen),
                            platforms=", ".join(sorted(seen)),
                            minutes=(v.at - events[lo].at) // 60,
                        ),
                    )
                )
                break
    return signals


def _foreign_verifications(
    verifications: Iterable[VerificationEventRecord],
    chains: Chains,
    registrations: Mapping[GoodKey, EntryRecord],
    th: Thresholds,
    now: int,
) -> Iterator[tuple[VerificationEventRecord, bool]]:
    """Settled verifications of single-use codes by platforms, with "never acquired" flags:
    (event, foreign) once ``offer_grace`` has passed, so that a pending purchase is neither."""
    for v in single_use_verifications(verifications, registrations):
        if v.at + th.offer_grace > now:
            continue
        yield v, not chains.dealt_by(v.good, v.platform, v.at + th.offer_grace)


def platform_velocity(
    verifications: Iterable[VerificationEventRecord],
    chains: Chains,
    registrations: Mapping[GoodKey, EntryRecord],
    th: Thresholds,
    *,
    now: int,
    since: int,
) -> list[Signal]:
    """A platform verifying many codes it never acquires, far above its own usual rate: it is
    listing someone else's codes (a leak), not checking purchases."""
    firsts: dict[str, dict[GoodKey, VerificationEventRecord]] = defaultdict(dict)
    settled: dict[str, list[int]] = defaultdict(list)
    for v, foreign in _foreign_verifications(verifications, chains, registrations, th, now):
        settled[v.platform].append(v.at)
        if foreign:
            seen = firsts[v.platform]
            if v.good not in seen or v.at < seen[v.good].at:
                seen[v.good] = v
    signals = []
    for platform, seen in firsts.items():
        signal = platform_velocity_of(
            platform, seen, sorted(settled[platform]), th, now=now, since=since
        )
        if signal is not None:
            signals.append(signal)
    return signals


def platform_velocity_of(
    platform: str,
    seen: Mapping[GoodKey, VerificationEventRecord],
    settled: Sequence[int],
    th: Thresholds,
    *,
    now: int,
    since: int,
    times: Sequence[int] | None = None,
) -> Signal | None:
    """``platform_velocity`` for one platform: ``seen`` its first foreign verification of
    each code, ``settled`` the times (sorted) of all its settled single-use verifications;
    ``times``, when the caller keeps them, the times of ``seen`` sorted (the incremental
    engine asks every refresh, and sorts the records only when the window can fire)."""
    if len(seen) < th.platform_min_foreign:
        return None  # no window can hold enough
    if times is None:
        times = sorted(v.at for v in seen.values())
    count, start = window_max(times, th.platform_window)
    if count < th.platform_min_foreign:
        return None
    span = max(1, (now - since) // th.platform_window + 1)
    per_window = sorted(_per_window(times, since, now, th.platform_window, span))
    baseline = per_window[len(per_window) // 2]
    if count < th.platform_baseline_factor * baseline:
        return None
    # In (time, id) order: the same times as ``times``, so the window is at the same place.
    events = sorted(seen.values(), key=lambda v: (v.at, v.event_id))
    window = events[start : start + count]
    t0, t1 = window[0].at, window[-1].at
    checked = bisect.bisect_right(settled, t1) - bisect.bisect_left(settled, t0)
    if count < th.platform_min_foreign_ratio * checked:
        return None
    return Signal(
        PLATFORM_VELOCITY,
        f"{platform} verified {count} single-use codes it never acquired within "
        f"{th.platform_window // HOUR} h (its usual: {baseline} per window)",
        capped(verification_evidence(v) for v in window),
        Subject("platform", platform),
        tuple(v.good for v in window),
        (platform,),
        (
            says(
                PLATFORM_VELOCITY,
                platform=platform,
                count=count,
                hours=th.platform_window // HOUR,
                baseline=baseline,
            ),
        ),
    )


def _per_window(times: Sequence[int], since: int, now: int, width: int, span: int) -> list[int]:
    """How many of the sorted ``times`` fall in each of the look-back's ``span`` windows of
    ``width`` from ``since`` (empty windows included). When every time is in [since, now]
    (the look-back's records always are), by bisecting at the ``span + 1`` edges instead of
    counting each time (platform velocity asks this of every busy platform each refresh);
    otherwise the count per window index, as the rule was first written."""
    if times and since <= times[0] and times[-1] <= now:
        edges = [bisect.bisect_left(times, since + k * width) for k in range(span + 1)]
        return [edges[k + 1] - edges[k] for k in range(span)]
    buckets = Counter((t - since) // width for t in times)
    return [*buckets.values(), *[0] * max(0, span - len(buckets))]


def batch_velocity(
    verifications: Iterable[VerificationEventRecord],
    chains: Chains,
    registrations: Mapping[GoodKey, EntryRecord],
    th: Thresholds,
    *,
    now: int,
) -> list[Signal]:
    """Many codes of one bulk batch appearing at once on a platform that never acquires them:
    the batch leaked (a launch-day sale is as large a burst, but its platform buys each code)."""
    firsts: dict[tuple[int, str], dict[GoodKey, tuple[VerificationEventRecord, bool]]] = (
        defaultdict(dict)
    )
    for v, foreign in _foreign_verifications(verifications, chains, registrations, th, now):
        entry = registrations[v.good]
        if entry.position is None:
            continue
        seen = firsts[(entry.record_id, v.platform)]
        if v.good not in seen or v.at < seen[v.good][0].at:
            seen[v.good] = (v, foreign)
    signals = []
    for (record_id, platform), seen in firsts.items():
        signal = batch_velocity_of(record_id, platform, seen, registrations, th)
        if signal is not None:
            signals.append(signal)
    return signals


def batch_velocity_of(
    record_id: int,
    platform: str,
    seen: Mapping[GoodKey, tuple[VerificationEventRecord, bool]],
    registrations: Mapping[GoodKey, EntryRecord],
    th: Thresholds,
) -> Signal | None:
    """``batch_velocity`` for one batch on one platform: ``seen`` the platform's first
    settled verification of each of the batch's codes, and whether it never acquired it."""
    events = sorted(seen.values(), key=lambda pair: (pair[0].at, pair[0].event_id))
    foreign_times = [v.at for v, foreign in events if foreign]
    count, start = window_max(foreign_times, th.batch_window)
    if count < th.batch_min_codes:
        return None
    t0, t1 = foreign_times[start], foreign_times[start + count - 1]
    window = [(v, f) for v, f in events if t0 <= v.at <= t1]
    if count / len(window) < th.batch_min_foreign_ratio:
        return None
    leaked = [v for v, f in window if f]
    positions = sorted(p for v in leaked if (p := registrations[v.good].position) is not None)
    return Signal(
        BATCH_VELOCITY,
        f"{count} codes of batch {record_id} (positions {positions[0]}-{positions[-1]}) "
        f"first appeared on {platform} within {(t1 - t0) // 60} min, which never "
        f"acquired them ({len(window) - count} it did)",
        capped(verification_evidence(v) for v in leaked),
        batch_subject(record_id),
        tuple(v.good for v in leaked),
        (platform,),
        (
            says(
                BATCH_VELOCITY,
                count=count,
                batch=str(record_id),
                first=str(positions[0]),
                last=str(positions[-1]),
                platform=platform,
                minutes=(t1 - t0) // 60,
                acquired=len(window) - count,
            ),
        ),
    )


__all__ = [
    "batch_velocity",
    "batch_velocity_of",
    "code_velocity",
    "platform_velocity",
    "platform_velocity_of",
    "probe_bursts",
    "window_max",
]
