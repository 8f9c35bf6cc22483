"""Keeping Python's cyclic garbage collector off the risk worker's long-lived state.

The incremental engine (``readmodels.riskstate``) holds every record of the look-back and
what was derived from it: at 10^6 goods and 5x10^4 events of history, ~6x10^5 objects the
collector tracks. A refresh allocates ~10^5 more that outlive a young collection, and the
collector runs a *full* collection (every tracked object) whenever the objects promoted to
its oldest generation since the last one exceed a quarter of that generation: every other
refresh, 0.2-0.6 s each (measured: about half of a 10^4-event refresh's time).

So after each refresh the worker freezes what is alive (``gc.freeze``: moved to a permanent
generation that collections skip; it is still freed by reference counting as usual) and
the collector only ever looks at what the next refresh allocates. What a frozen object
could still cost is a reference cycle among objects that became garbage after they were
frozen: never collected while frozen. The state's records and indexes hold no cycles, but
other objects of the process may; so at each *refit* (``RiskChanges.refitted``: once in
``REFIT_SECONDS``, the refresh that costs like a build anyway) the worker unfreezes, runs
one full collection, and freezes again. Cyclic garbage lives at most one refit period.

NOTE: ``gc.freeze`` is process-wide. The worker runs in a process of its own
(``api/riskprocess.py``); where it shares one (tests), the others' cyclic garbage also
waits for the next refit (each worker's first refresh is one).
"""

from __future__ import annotations

import gc


def after_refresh(*, refitted: bool) -> None:
    """Freeze what is alive after a refresh; at a refit, collect everything first."""
    if refitted:
        gc.unfreeze()
        gc.collect()
    gc.freeze()


__all__ = ["after_refresh"]
