"""The incremental risk engine (``readmodels.riskstate``) against the full recompute
(``RiskIndex.from_inputs``): random market streams fed in random refresh-sized chunks, compared
after every refresh. Rules' signals and goods' rule signals exactly; with ``refit_seconds=0``
the anomaly scores (and so every risk) exactly too."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readmodels.market import (
    AttemptRecord,
    EntryRecord,
    GoodKey,
    HoldingRecord,
    ProbeFlag,
    SignalInputs,
    TransferRecord,
    VerificationEventRecord,
)
from readmodels.riskindex import RiskIndex
from readmodels.riskstate import RiskState
from readmodels.signals import ANOMALY, Thresholds
from registry.fingerprints import GoodType, Use
from registry.leaf import EntryKind
from registry.transferrequests import DoubleSale, GoodConsumed, GoodRevoked, NotTheHolder

T0 = 1_790_000_000
CODE, FILE = int(GoodType.CODE), int(GoodType.FILE)
#: Small thresholds, so that every rule fires (and stops firing) in a short random stream.
SMALL = Thresholds(
    retry_window=120,
    offer_grace=300,
    offer_min_platforms=2,
    probe_window=600,
    probe_min_failures=3,
    probe_min_ratio=0.5,
    probe_flag_min=2,
    code_window=900,
    code_min_platforms=2,
    platform_window=1_800,
    platform_min_foreign=3,
    platform_baseline_factor=1.5,
    batch_window=1_800,
    batch_min_codes=3,
    batch_min_foreign_ratio=0.6,
    ring_min_returns=1,
    ring_max_parties=3,
    ring_min_growth=1.2,
)
PLATFORMS = ("alpha", "beta", "gamma", "delta", "anonymous")
REASONS = (DoubleSale.code, GoodRevoked.code, GoodConsumed.code, NotTheHolder.code)


@dataclass
class Stream:
    """A random market: the records in id order, cut into chunks each read at a time."""

    chunks: list[tuple[int, SignalInputs, list[ProbeFlag]]] = field(default_factory=list)


def market(rng: random.Random, goods: int, steps: int, chunks: int) -> Stream:
    ids = iter(range(1, 10**9))
    regs: dict[GoodKey, EntryRecord] = {}
    keys: list[GoodKey] = []
    for i in range(goods):
        good_type = CODE if rng.random() < 0.8 else FILE
        good = (good_type, rng.randbytes(4))
        use = int(Use.SINGLE if good_type == CODE else Use.TRANSFERABLE)
        batch = rng.choice((1, 2, 3, 100 + i))
        position = i if batch < 100 else None
        entry_id = next(ids)
        at = T0 - rng.randrange(0, 3_000)
        regs[good] = EntryRecord(
            entry_id, int(EntryKind.REGISTER), good_type, good[1], b"\x11" * 20, entry_id, at,
            batch, position, use,
        )  # fmt: skip
        keys.append(good)
    hot = keys[: max(1, goods // 3)]  # most records name a few goods
    holders: dict[GoodKey, tuple[str, bytes] | None] = {}
    last_transfer: dict[GoodKey, TransferRecord] = {}
    holdings: dict[GoodKey, HoldingRecord] = {}
    prices: dict[GoodKey, int] = {}
    t = T0
    records: list[tuple[int, object]] = []
    for _ in range(steps):
        t += rng.choice((0, 5, 30, 120, 400, 900))
        good = rng.choice(hot if rng.random() < 0.7 else keys)
        platform = rng.choice(PLATFORMS)
        roll = rng.random()
        if roll < 0.55:
            via = rng.choice(("code", "code", "fingerprint"))
            verdict = "unknown" if rng.random() < 0.3 else "authentic"
            fingerprint = good[1] if verdict != "unknown" else rng.randbytes(4)
            at = t - rng.randrange(0, 60)  # ids in order, times only roughly
            records.append(
                (t, VerificationEventRecord(next(ids), at, platform, good[0], fingerprint, via,
                                            verdict))
            )  # fmt: skip
        elif roll < 0.8 and platform != "anonymous":
            seller = holders.get(good)
            buyer = (platform, bytes([rng.randrange(3)]))
            price = prices.get(good, 100) + rng.choice((-10, 0, 20, 50))
            prices[good] = price
            final = rng.random() < 0.1
            record = TransferRecord(
                next(ids), good[0], good[1], b"\x11" * 20, platform,
                None if seller is None else seller[0], None if seller is None else seller[1],
                buyer[0], buyer[1], price, "USD", final, t,
            )  # fmt: skip
            records.append((t, record))
            holders[good] = buyer
            last_transfer[good] = record
            holdings[good] = HoldingRecord(good[0], good[1], buyer[0], final, record.transfer_id)
        elif roll < 0.93 and platform != "anonymous":
            earlier = last_transfer.get(good)
            seller = holders.get(good)
            records.append(
                (t, AttemptRecord(
                    next(ids), t, platform, good[0], good[1],
                    None if seller is None or rng.random() < 0.5 else seller[0],
                    None if seller is None else seller[1], platform, b"\x02",
                    None if earlier is None else earlier.price, rng.random() < 0.2,
                    rng.choice(REASONS), None if earlier is None else earlier.transfer_id,
                ))
            )  # fmt: skip
        else:
            entry_id = next(ids)
            records.append(
                (t, EntryRecord(entry_id, int(EntryKind.CONFLICT), good[0], good[1],
                                b"\x22" * 20, entry_id, t, 9, None, regs[good].use))
            )  # fmt: skip
    cuts = sorted(rng.sample(range(1, len(records)), min(chunks, len(records) - 1)))
    stream = Stream()
    now = 0
    for lo, hi in zip([0, *cuts], [*cuts, len(records)], strict=True):
        part = [r for _, r in records[lo:hi]]
        now = max(now, records[hi - 1][0] + rng.choice((0, 10, 200, 700, 4_000)))
        named = {r.good for r in part if not isinstance(r, EntryRecord)} | {
            r.good for r in part if isinstance(r, EntryRecord)
        }
        flags = [
            ProbeFlag(f"ip:{i}", now - 50, now, rng.randrange(4), rng.randrange(3))
            for i in range(rng.randrange(3))
        ]
        stream.chunks.append(
            (
                now,
                SignalInputs(
                    registrations={g: regs[g] for g in named if g in regs},
                    conflicts=[r for r in part if isinstance(r, EntryRecord)],
                    transfers=[r for r in part if isinstance(r, TransferRecord)],
                    attempts=[r for r in part if isinstance(r, AttemptRecord)],
                    holdings={g: holdings[g] for g in named if g in holdings},
                    verifications=[r for r in part if isinstance(r, VerificationEventRecord)],
                ),
                flags,
            )
        )
    return stream


class Reference:
    """What ``riskindex._Store`` keeps (the look-back, the newest events), for the full
    recompute: the same records as the engine was given, accumulated."""

    def __init__(self, lookback: int, max_events: int) -> None:
        self.lookback, self.max_events = lookback, max_events
        self.regs: dict[GoodKey, EntryRecord] = {}
        self.holdings: dict[GoodKey, HoldingRecord] = {}
        self.conflicts: list[EntryRecord] = []
        self.transfers: list[TransferRecord] = []
        self.attempts: list[AttemptRecord] = []
        self.events: list[VerificationEventRecord] = []

    def index(self, new: SignalInputs, now: int, flags: list[ProbeFlag]) -> RiskIndex:
        since = max(0, now - self.lookback)
        self.regs.update(new.registrations)
        self.holdings.update(new.holdings)
        self.conflicts += new.conflicts
        self.transfers = [t for t in [*self.transfers, *new.transfers] if t.created_at >= since]
        self.attempts = [a for a in [*self.attempts, *new.attempts] if a.at >= since]
        self.events = [v for v in [*self.events, *new.verifications] if v.at >= since]
        del self.events[: max(0, len(self.events) - self.max_events)]
        inputs = SignalInputs(
            self.regs, self.conflicts, self.transfers, self.attempts, self.holdings,
            self.events, tuple(flags),
        )  # fmt: skip
        return RiskIndex.from_inputs(inputs, now=now, since=since, thresholds=SMALL)


def _rules_only(goods: dict[GoodKey, object]) -> dict[GoodKey, tuple[object, ...]]:
    found = {}
    for good, risk in goods.items():
        kept = tuple(s for s in risk.signals if s.code != ANOMALY)  # type: ignore[attr-defined]
        if kept:
            found[good] = kept
    return found


streams = st.builds(
    lambda seed, goods, steps, chunks: market(random.Random(seed), goods, steps, chunks),
    st.integers(0, 2**32),
    st.integers(2, 14),
    st.integers(5, 160),
    st.integers(1, 12),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=streams,
    lookback=st.sampled_from((2_000, 6_000, 10**6)),
    max_events=st.sampled_from((15, 10**6)),
)
def test_every_refresh_equals_the_full_recompute_exactly_when_refitting_each_time(
    stream: Stream, lookback: int, max_events: int
) -> None:
    state = RiskState(SMALL, lookback=lookback, refit_seconds=0, max_events=max_events)
    reference = Reference(lookback, max_events)
    for now, new, flags in stream.chunks:
        state.refresh(new, now=now, probe_flags=flags)
        expected = reference.index(new, now, flags)
        assert state.all_signals() == list(expected.signals)
        assert state.goods == dict(expected.goods())
        assert state.platforms == expected._platforms


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams, lookback=st.sampled_from((2_000, 10**6)))
def test_rules_stay_exact_between_refits_and_changes_replay_to_the_state(
    stream: Stream, lookback: int
) -> None:
    state = RiskState(SMALL, lookback=lookback, refit_seconds=10**9)
    reference = Reference(lookback, 10**6)
    written: dict[GoodKey, object] = {}
    signals: dict[str, object] = {}
    for now, new, flags in stream.chunks:
        changes = state.refresh(new, now=now, probe_flags=flags)
        expected = reference.index(new, now, flags)
        assert state.all_signals() == list(expected.signals)
        assert _rules_only(dict(state.goods)) == _rules_only(dict(expected.goods()))
        # Applying only the changes (what the worker writes) gives the whole state.
        for good, risk in changes.goods.items():
            if risk is None:
                del written[good]
            else:
                written[good] = risk
        for sid in changes.removed:
            del signals[sid]
        signals.update(changes.signals)
        assert written == state.goods
        assert signals == {s.signal_id: s for s in state.all_signals()}
