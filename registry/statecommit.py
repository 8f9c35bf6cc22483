"""The state map wired into the log (issue 14): commitments at every head, and map proofs.

Every signed head ends with a STATE_COMMITMENT leaf whose fingerprint word is the root of the
state map over every leaf before it (``registry.statemap``): the map holds, for each good
with an entry at a leaf index below the commitment's, the history chain of those entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.entries import LoggedEntry
from registry.statemap import MapProof, MapValue


@dataclass(frozen=True)
class StateProof:
    """A good's value in the state map (or its absence) as of one head's commitment."""

    #: The STATE_COMMITMENT entry at leaf ``tree_size - 1`` of the head.
    commitment: LoggedEntry
    map_root: bytes
    #: ``registry.statemap.map_key(good_type, fingerprint)``.
    key: bytes
    #: None: the good has no entry below the commitment.
    value: MapValue | None
    #: Inclusion of ``value.value_hash()`` (or absence) under ``map_root``.
    proof: MapProof


__all__ = ["StateProof"]
