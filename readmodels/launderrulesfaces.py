"""Products' face value histories as the risk worker reads them (issue 18 item 2, migration
0034): each product's settings in order, which ``below-face-value`` judges every sale by (the
one in force when it was made); and, when a creator sets, changes or clears one, the REGISTER
entries the worker already keeps for that product's goods re-made with the new history.

The worker reads a good's entry (with its product's face values, ``readmodels.marketreads``)
the first time a record names the good and keeps it; without the watch a face value set after
that reached the rules only at a restart. Products and their settings are few (a creator's
product lines, set by hand): a count per product is one small read a refresh.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, func, select

from readmodels.market import EntryRecord, FaceSetting, GoodKey
from registry.db import read_transaction
from registry.facevalue import face_value_history_t

Faces = tuple[FaceSetting, ...]
#: A product's settings: (product id, set_at, face value, currency, row id), any order.
FACE_COLUMNS = "product_id, set_at, face_value, face_currency, id"


def faces_by_product(rows: Iterable[Sequence[Any]]) -> dict[int, Faces]:
    """Each product's settings in ``set_at`` order (a second's settings in the order they were
    made), from rows of ``FACE_COLUMNS``: one tuple a product, shared by its goods' entries."""
    found: dict[int, list[tuple[int, int, FaceSetting]]] = defaultdict(list)
    for product, set_at, value, currency, row_id in rows:
        face = FaceSetting(int(set_at), None if value is None else int(value), currency)
        found[int(product)].append((int(set_at), int(row_id), face))
    return {p: tuple(face for *_, face in sorted(items)) for p, items in found.items()}


class FaceValueWatch:
    """Compares the products' face value histories with the last read, refresh after refresh."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[int, int]] | None = None

    def refaced(
        self, engine: Engine, registrations: Mapping[GoodKey, EntryRecord]
    ) -> dict[GoodKey, EntryRecord]:
        """The kept entries whose product got a face value setting since the last call,
        re-made with its history (none on the first call: the entries read with it are
        current). Call it before reading the new records: an entry read after a setting
        already has it."""
        c = face_value_history_t.c
        with read_transaction(engine) as conn:
            # Rows per product and the newest id: a setting committed out of id order (two
            # concurrent ones on PostgreSQL) still changes its product's count.
            counts = select(c.product_id, func.count(), func.max(c.id)).group_by(c.product_id)
            seen = {int(p): (int(n), int(last)) for p, n, last in conn.execute(counts)}
            before, self._seen = self._seen, seen
            if before is None:
                return {}
            changed = sorted(p for p, mark in seen.items() if before.get(p) != mark)
            if not changed:
                return {}
            rows = conn.execute(
                select(c.product_id, c.set_at, c.face_value, c.face_currency, c.id).where(
                    c.product_id.in_(changed)
                )
            )
            faces = faces_by_product(rows)
        return {
            good: dataclasses.replace(entry, faces=found)
            for good, entry in registrations.items()
            if entry.product_id is not None
            and (found := faces.get(entry.product_id)) is not None
            and entry.faces != found
        }


__all__ = ["FACE_COLUMNS", "FaceValueWatch", "Faces", "faces_by_product"]
