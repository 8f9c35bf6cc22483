"""The laundering red flags in the incremental risk engine (``readmodels.riskstate``) against
the full recompute (``readmodels.rules.evaluate`` through ``RiskIndex.from_inputs``): random
market streams (``test_riskstate``'s, with face values), fed in refresh-sized chunks, compared
after every refresh; with thresholds small enough that every one of the seven rules fires in
some stream, and stops firing as its records leave the look-back."""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections import Counter

from readmodels import signals as S
from readmodels.launderruleslimits import AmountLimit
from readmodels.market import SignalInputs
from readmodels.riskindex import RiskIndex
from readmodels.riskstate import RiskState
from tests.readmodels.test_riskstate import SMALL, Reference, Stream, market

LAUNDERING = (
    S.BELOW_FACE_VALUE,
    S.FAST_CASH_OUT,
    S.FAN_IN,
    S.BUYER_DAILY_AMOUNT,
    S.ROUND_TRIP,
    S.VERIFY_PER_PURCHASE,
    S.REDEEMED_ELSEWHERE,
)
#: ``test_riskstate``'s prices start at 100 USD and move by -10..+50 a sale.
TINY = dataclasses.replace(
    SMALL,
    face_min_ratio=0.5,
    cash_out_window=3_600,
    fan_in_min_sources=2,
    fan_in_window=3_000,
    amount_limits=(AmountLimit("USD", 180, 400, "a test's"),),
    amount_window=1_800,
    verify_min_events=3,
    verify_min_per_purchase=1.5,
)


class TinyReference(Reference):
    """``test_riskstate.Reference`` with ``TINY`` thresholds."""

    def index(self, new: SignalInputs, now: int, flags: list) -> RiskIndex:  # type: ignore[type-arg]
        super().index(new, now, flags)
        since = max(0, now - self.lookback)
        inputs = SignalInputs(
            self.regs, self.conflicts, self.transfers, self.attempts, self.holdings,
            self.events, tuple(flags),
        )  # fmt: skip
        return RiskIndex.from_inputs(inputs, now=now, since=since, thresholds=TINY)


def with_face_values(stream: Stream, rng: random.Random) -> Stream:
    """The stream with a face value on some goods' registrations (200 USD: ``test_riskstate``'s
    resale prices fall below half of it now and then), another currency on some."""
    faces: dict[bytes, tuple[int | None, str | None]] = {}
    chunks = []
    for now, new, flags in stream.chunks:
        regs = {}
        for good, entry in new.registrations.items():
            face = faces.setdefault(good[1], rng.choice([(200, "USD"), (200, "CNY"), (None, None)]))
            regs[good] = dataclasses.replace(entry, face_value=face[0], face_currency=face[1])
        chunks.append((now, dataclasses.replace(new, registrations=regs), flags))
    return Stream(chunks)


def test_the_engine_raises_exactly_the_full_recomputes_laundering_signals() -> None:
    seen: Counter[str] = Counter()
    for seed, lookback in itertools.product(range(40), (2_000, 10**6)):
        rng = random.Random(seed)
        stream = with_face_values(market(rng, rng.randrange(3, 14), rng.randrange(40, 160), 8), rng)
        state = RiskState(TINY, lookback=lookback, refit_seconds=0)
        reference = TinyReference(lookback, 10**6)
        for now, new, flags in stream.chunks:
            state.refresh(new, now=now, probe_flags=flags)
            expected = reference.index(new, now, flags)
            assert state.all_signals() == list(expected.signals), seed
            assert state.goods == dict(expected.goods()), seed
            seen.update(s.code for s in state.all_signals() if s.code in LAUNDERING)
    # Every rule was exercised (each fired in some refresh), so the equality above covers it.
    assert set(seen) == set(LAUNDERING), seen
