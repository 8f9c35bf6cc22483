"""Products' face values as the risk worker last saw them (issue 18 item 2): when a creator
sets, changes or clears one, the REGISTER entries the worker already keeps for that product's
goods are re-made with it, so ``below-face-value`` judges them by the new value.

The worker reads a good's entry (with its product's face value, ``readmodels.marketreads``)
the first time a record names the good and keeps it; without this a face value set after
that reached the rules only at a restart. Products are few (a creator's product lines): the
whole table's face values are one small read a refresh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from sqlalchemy import Engine, select

from readmodels.market import EntryRecord, GoodKey
from registry.db import read_transaction
from registry.registration import products_t

Face = tuple[int | None, str | None]


class FaceValueWatch:
    """Compares the products' face values with the last read, refresh after refresh."""

    def __init__(self) -> None:
        self._faces: dict[int, Face] | None = None

    def refaced(
        self, engine: Engine, registrations: Mapping[GoodKey, EntryRecord]
    ) -> dict[GoodKey, EntryRecord]:
        """The kept entries whose product's face value changed since the last call, re-made
        with the new one (none on the first call: the entries read with it are current).
        Call it before reading the new records: an entry read after a change already has it."""
        c = products_t.c
        with read_transaction(engine) as conn:
            rows = conn.execute(select(c.id, c.face_value, c.face_currency)).all()
        faces: dict[int, Face] = {
            int(r.id): (None if r.face_value is None else int(r.face_value), r.face_currency)
            for r in rows
        }
        before, self._faces = self._faces, faces
        if before is None:
            return {}
        changed = {pid: face for pid, face in faces.items() if before.get(pid) != face}
        if not changed:
            return {}
        return {
            good: dataclasses.replace(entry, face_value=face[0], face_currency=face[1])
            for good, entry in registrations.items()
            if entry.product_id is not None
            and (face := changed.get(entry.product_id)) is not None
            and (entry.face_value, entry.face_currency) != face
        }


__all__ = ["FaceValueWatch"]
