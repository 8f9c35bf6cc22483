"""Every piracy and fraud rule over one period's records: ``evaluate``.

Every rule is a pure function over plain records (``readmodels.market``: read from the database
by ``readmodels.marketreads.read_inputs``, or made by hand in a test) and returns ``Signal``s
(``readmodels.signals``).

The rules (``evaluate`` runs them all):

=========================  ==========================================================  ========
code                       fires when                                                  subject
=========================  ==========================================================  ========
``duplicate-claim``        another creator claimed an already registered good          good
                           (CONFLICT entries; log order proves who was first)
``sold-by-non-holder``     a refused transfer whose seller was not the holder (409),   good
                           unless it repeats the accepted report (a retry)
``offered-by-non-holder``  a single-use code, after it moved, verified by platforms    good
                           that neither held it nor acquired it: when it was already
                           consumed, or on ``offer_min_platforms`` such platforms
``dead-good-transfer``     a refused transfer of a revoked or consumed good, unless    good
                           it repeats the final sale (a retry)
``probe-burst``            a burst of failed code lookups from one platform key (or    key
                           all anonymous callers), or a key the rate limiter flagged
``code-velocity``          one single-use code verified on ``code_min_platforms``      good
                           platforms within ``code_window``
``platform-velocity``      a platform verifying many single-use codes it never         platform
                           acquires, far above its own usual rate
``batch-velocity``         many codes of one bulk batch appearing at once on a         batch
                           platform that never acquires them (a leaked batch)
``laundering-ring``        a good passed around the same few parties, coming back      good
                           to earlier holders, at rising prices
``below-face-value``       a resale (seller not the creator) priced below              good
                           ``face_min_ratio`` (0.5) of its product's face value in
                           force when it was made, in that face value's currency
``fast-cash-out``          registration (its leaf's time) to the consuming final       good
                           transfer within ``cash_out_window`` (30 min), a resale
                           between
``fan-in``                 ``fan_in_min_sources`` (5) distinct first holders (who      party
                           bought from the creator) selling to one buyer party
                           within ``fan_in_window`` (24 h)
``buyer-daily-amount``     one buyer party paying more than its currency's             party
                           ``per_code`` for a code or ``per_day`` within
                           ``amount_window`` (24 h): CNY 1,000 / 9,999.99, USD 2,000
                           / 10,000, EUR 150 / none (``launderruleslimits``)
``round-trip``             a single-use code back at a party that held it before       good
                           (``round_trip_min_returns``: 1), unless a laundering ring
``verify-per-purchase``    ``verify_min_events`` (8) verifications that found the      good
                           good, ``verify_min_per_purchase`` (8) or more per
                           accepted transfer of it
``redeemed-elsewhere``     the consuming final transfer of a code held on one          good
                           platform recorded by, or to a buyer on, another platform,
                           for no price or less than its seller paid
=========================  ==========================================================  ========

The last seven are the laundering red flags (``readmodels.launderrules``, issue 18 item 2).

"Acquires" is the honest twin that keeps these rules quiet: a platform that verifies a code
and then records buying it (within ``offer_grace``) is a buyer checking its purchase, the
shape of a launch-day sale however large the burst.
"""

from __future__ import annotations

from readmodels.holderrules import (
    dead_good_transfers,
    duplicate_claims,
    laundering_rings,
    offered_by_non_holder,
    sold_by_non_holder,
)
from readmodels.launderrules import red_flags
from readmodels.market import (
    Chains,
    SignalInputs,
)
from readmodels.signals import (
    Signal,
    Thresholds,
)
from readmodels.velocityrules import (
    batch_velocity,
    code_velocity,
    platform_velocity,
    probe_bursts,
)


def evaluate(
    inputs: SignalInputs, thresholds: Thresholds | None = None, *, now: int, since: int = 0
) -> list[Signal]:
    """Every rule over one period's records (``since`` .. ``now``, Unix seconds)."""
    th = thresholds or Thresholds()
    chains = Chains(inputs.transfers, inputs.holdings)
    regs = inputs.registrations
    events = inputs.verifications
    return [
        *duplicate_claims(regs, inputs.conflicts),
        *sold_by_non_holder(inputs.attempts, chains, th),
        *offered_by_non_holder(events, chains, regs, th, now=now),
        *dead_good_transfers(inputs.attempts, chains, th),
        *probe_bursts(events, inputs.probe_flags, th),
        *code_velocity(events, regs, th),
        *platform_velocity(events, chains, regs, th, now=now, since=since),
        *batch_velocity(events, chains, regs, th, now=now),
        *laundering_rings(chains, th),
        *red_flags(inputs, chains, th),
    ]


__all__ = ["evaluate"]
