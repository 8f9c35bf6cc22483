"""Which goods an evidence export holds: the selection, and its goods read in order, each once.

A selection names listed goods, a creator's goods (by their REGISTER entries), or the goods
with an entry since a time (from the first leaf stamped then); ``after`` resumes where the
previous file stopped (its ``next_after``). ``readmodels.exports`` writes what this yields.

NOTE: the registry's storage (sqlalchemy) is imported when the goods are read, not with the
module, as in ``readmodels.exports``: the command line imports it for every command.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from registry.errors import InvalidInput
from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import NO_GOOD
from verifier.exportformat import MAX_EXPORT_GOODS

if TYPE_CHECKING:
    from registry.service import Registry

#: Goods read from the database at a time while selecting a creator's goods or a period's.
_PAGE: Final = 500


@dataclass(frozen=True)
class ExportSelection:
    """Which goods to export: listed ones, a creator's, or those with an entry since a time;
    ``after`` is the previous file's ``next_after``."""

    goods: tuple[tuple[GoodType, bytes], ...] = ()
    creator: str | None = None
    since: int | None = None
    since_text: str | None = None
    after: int | None = None
    limit: int = MAX_EXPORT_GOODS

    def __post_init__(self) -> None:
        chosen = sum((bool(self.goods), self.creator is not None, self.since is not None))
        if chosen != 1:
            raise InvalidInput("select goods one way: listed goods, a creator, or a date")
        if not 1 <= self.limit <= MAX_EXPORT_GOODS:
            raise InvalidInput(f"an export file holds 1 to {MAX_EXPORT_GOODS:,} goods")
        if len(self.goods) > self.limit:
            raise InvalidInput(
                f"{len(self.goods):,} goods listed; one export holds at most {self.limit:,}"
            )

    def document(self) -> dict[str, Any]:
        return {
            "goods": [f"{t.name.lower()}:{fingerprint_hex(fp)}" for t, fp in self.goods]
            if self.goods
            else None,
            "creator": self.creator,
            "since": self.since_text,
            "since_time": self.since,
            "after": self.after,
            "limit": self.limit,
        }


def selected_goods(
    registry: Registry, selection: ExportSelection
) -> Iterator[tuple[int, GoodType, bytes]]:
    """(cursor, good type, fingerprint) of the selected goods, in order, each once."""
    from sqlalchemy import select, text

    from registry.db import read_transaction
    from registry.eip712 import address_bytes
    from registry.log import entries_t

    c = entries_t.c
    if selection.goods:
        for i, (good_type, fingerprint) in enumerate(selection.goods):
            yield i, good_type, fingerprint
        return
    after = selection.after if selection.after is not None else -1
    if selection.creator is not None:
        creator = address_bytes(selection.creator)
        while True:
            # "kind = 1" as a literal: the partial index (actor, id) of creators' goods.
            with read_transaction(registry.engine) as conn:
                rows = conn.execute(
                    select(c.id, c.good_type, c.fingerprint)
                    .where(text("kind = 1"), c.actor == creator, c.id > after)
                    .order_by(c.id)
                    .limit(_PAGE)
                ).all()
            for row in rows:
                yield int(row.id), GoodType(int(row.good_type)), bytes(row.fingerprint)
            if len(rows) < _PAGE:
                return
            after = int(rows[-1].id)
    assert selection.since is not None
    seen: set[tuple[int, bytes]] = set()
    with read_transaction(registry.engine) as conn:
        start = max(after + 1, _first_leaf_since(conn, registry, selection.since))
    while True:
        with read_transaction(registry.engine) as conn:
            # Leaves about a subject, not a good (a state commitment ends every head, key
            # hand-overs, creator identities), are no good's entry.
            rows = conn.execute(
                select(c.leaf_index, c.good_type, c.fingerprint)
                .where(c.leaf_index >= start, c.good_type != NO_GOOD)
                .order_by(c.leaf_index)
                .limit(_PAGE)
            ).all()
        for row in rows:
            key = (int(row.good_type), bytes(row.fingerprint))
            if key not in seen:
                seen.add(key)
                yield int(row.leaf_index), GoodType(key[0]), key[1]
        if len(rows) < _PAGE:
            return
        start = int(rows[-1].leaf_index) + 1


def _first_leaf_since(conn: Any, registry: Registry, since: int) -> int:
    """The first leaf stamped at or after ``since``: a binary search on the leaf index, since
    the sequencer's time never goes back (``registry.log.sequencer_time``)."""
    from sqlalchemy import func, select

    from registry.log import entries_t

    c = entries_t.c
    low = 0
    high = int(conn.execute(select(func.max(c.leaf_index))).scalar() or -1) + 1
    while low < high:
        middle = (low + high) // 2
        stamp = conn.execute(select(c.timestamp).where(c.leaf_index == middle)).scalar_one()
        if int(stamp) < since:
            low = middle + 1
        else:
            high = middle
    return low


__all__ = ["ExportSelection", "selected_goods"]
