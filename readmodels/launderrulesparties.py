"""The incremental risk engine's buyer parties (``readmodels.riskstate``): per party, what it
bought in the look-back, kept from each touched good's chain, and the two laundering rules
about a party (``launderrules.party_red_flags``) re-run for the parties that changed.

A party's rules read only the transfers it bought (and, per transfer, whether its seller was
a first holder: a fact of the good's chain, re-derived whenever the good is touched), none of
``now``: so their signals equal the full recompute's (``readmodels.rules.evaluate``) exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from readmodels.launderrulesbuyers import Bought, Party, party_red_flags, purchases
from readmodels.market import GoodKey, TransferRecord
from readmodels.riskstateparts import Signals
from readmodels.signals import Thresholds

#: One good's purchases, by transfer id: the buyer party, the transfer, from a first holder.
_Share = dict[int, tuple[Party, TransferRecord, bool]]


class PartyRedFlags:
    """What each buyer party bought, changed by differences as goods' chains change."""

    def __init__(self, th: Thresholds) -> None:
        self.th = th
        self._bought: dict[Party, dict[int, Bought]] = defaultdict(dict)
        self._by_good: dict[GoodKey, _Share] = {}
        self._changed: set[Party] = set()

    def contribute(self, good: GoodKey, chain: Sequence[TransferRecord]) -> None:
        """Replace the good's purchases by those of its chain as it is now (in order)."""
        old = self._by_good.get(good)
        if old is None and not chain:  # most touched goods: verifications only
            return
        new: _Share = {t.transfer_id: (party, t, first) for party, t, first in purchases(chain)}
        if old == new:
            return
        old = old or {}
        for transfer_id, (party, t, first) in old.items():
            if new.get(transfer_id) != (party, t, first):
                bought = self._bought[party]
                del bought[transfer_id]
                if not bought:
                    del self._bought[party]
                self._changed.add(party)
        for transfer_id, (party, t, first) in new.items():
            if old.get(transfer_id) != (party, t, first):
                self._bought[party][transfer_id] = (t, first)
                self._changed.add(party)
        if new:
            self._by_good[good] = new
        else:
            del self._by_good[good]

    def rules(self, signals: Signals) -> None:
        """Re-run the party rules for the parties whose purchases changed since last time."""
        for party in self._changed:
            bought = self._bought.get(party)
            found = party_red_flags(party, () if bought is None else bought.values(), self.th)
            signals.put(("party", party), found)
        self._changed.clear()


__all__ = ["PartyRedFlags"]
