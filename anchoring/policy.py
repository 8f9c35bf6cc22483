"""When the anchoring worker seals a head, what it pays, and when an anchor counts as final."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AnchorPolicy:
    """When to anchor and what to pay (defaults that make a demo feel alive)."""

    #: Seal a head once this many entries wait ...
    max_entries: int = 1_000
    #: ... or once the oldest unanchored head is this old (seconds).
    max_age_seconds: int = 5
    #: A mined anchor is final after this many confirmations ...
    confirmations: int = 3
    #: ... or, where the network's ``finalized`` tag is meaningful, once that block is
    #: finalized (on the dev chain it lags 64 blocks: there, confirmations are the rule).
    use_finalized_tag: bool = False
    #: Fee cap (wei per gas): at the cap the worker stops and says so; nothing is lost.
    max_fee_per_gas: int = 200 * 10**9
    priority_fee_per_gas: int = 10**9
    gas_limit: int = 300_000
    #: A broadcast anchor with no receipt after this many blocks is replaced at the same
    #: nonce with higher fees (THREATS 22), up to ``max_fee_per_gas``.
    stuck_blocks: int = 5
    #: The time-to-anchor objective (seconds): a signed head still without a mined anchor
    #: after this long raises the "time-to-anchor exceeded" alert (THREATS 34).
    time_to_anchor_seconds: int = 600


__all__ = ["AnchorPolicy"]
