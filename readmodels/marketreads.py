"""Reading the market's records (``readmodels.market``) from the database, from watermarks on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from readmodels.launderrulesfaces import FACE_COLUMNS, Faces, faces_by_product
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
from registry.db import read_transaction
from registry.facevalue import face_value_history_t
from registry.fingerprints import GoodType, Use
from registry.holding import holdings_t
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.registration import products_t
from registry.telemetry import events_t
from registry.transfers import attempts_t, transfers_t

#: Fingerprints per ``IN (...)`` when reading the goods the records name.
_CHUNK = 500


@dataclass
class Watermarks:
    """The last row ids read, so that a reader can come back for only what is new."""

    entry: int = 0
    transfer: int = 0
    attempt: int = 0
    event: int = 0


_CODE, _SINGLE, _TRANSFERABLE = int(GoodType.CODE), int(Use.SINGLE), int(Use.TRANSFERABLE)


def _default_use(good_type: int) -> int:
    return _SINGLE if good_type == _CODE else _TRANSFERABLE


def _entry_record(row: Sequence[Any], faces: Mapping[int, Faces] | None = None) -> EntryRecord:
    """An entry from a row of ``_ENTRY_COLUMNS`` (its product's use, NULL: the type's; then
    its product's id), with its product's face value settings from ``faces`` (by product)."""
    i, kind, good_type, fp, actor, leaf, timestamp, record_id, position, use, pid = row
    use = _default_use(good_type) if use is None else use
    settings = () if faces is None or pid is None else faces.get(pid, ())
    return EntryRecord(
        i, kind, good_type, fp, actor, leaf, timestamp, record_id, position, use, settings, pid
    )


#: An entry's columns in ``EntryRecord``'s order, its product's use and id last.
_ENTRY_COLUMNS = (
    "e.id, e.kind, e.good_type, e.fingerprint, e.actor, e.leaf_index, e.timestamp, "
    "e.record_id, e.position, p.use, e.product_id"
)
_ENTRIES = f"FROM {entries_t.name} e LEFT OUTER JOIN {products_t.name} p ON p.id = e.product_id"
#: The parties' columns, in ``TransferRecord``'s and ``AttemptRecord``'s order.
_PARTIES = "seller_platform, seller_ref, buyer_platform, buyer_ref"


def _price(price: str | None) -> int | None:
    return None if price is None else int(price)


class _Driver:
    """Statements on the driver's cursor, in the caller's transaction.

    NOTE: driver-level, as ``registry.statereplay`` reads leaves: the refresh reads ~10^4
    rows, and SQLAlchemy's statement machinery (a bound parameter per fingerprint of an
    ``IN`` list, a ``Row`` and a mapping per row) cost several times SQLite's own work. Both
    drivers give ints, strs and bytes; booleans (0/1 on SQLite) and prices (decimal text)
    are converted where the records are made."""

    def __init__(self, conn: Connection) -> None:
        self.qmark = conn.dialect.paramstyle == "qmark"
        self.cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self.cursor.execute(sql if self.qmark else sql.replace("?", "%s"), params)
        return list(self.cursor.fetchall())

    def among(self, column: str, values: Sequence[bytes]) -> tuple[str, Sequence[Any]]:
        """``column`` is one of ``values``: a list of markers on SQLite, an array on
        PostgreSQL (one parameter; an index scan either way)."""
        if self.qmark:
            return f"{column} IN ({','.join('?' * len(values))})", values
        return f"{column} = ANY(?)", (list(values),)

    def close(self) -> None:
        self.cursor.close()


def read_inputs(
    engine: Engine,
    *,
    since: int = 0,
    after: Watermarks | None = None,
    known: Container[GoodKey] = frozenset(),
    probe_flags: Sequence[ProbeFlag] = (),
    max_events: int | None = None,
) -> tuple[SignalInputs, Watermarks]:
    """The records from ``since`` on (and only rows past ``after``, for an incremental
    reader; of verification events, at most about the newest ``max_events``), the REGISTER
    entries and holdings of the goods they name (except ``known`` ones), and the new
    watermarks. One read transaction."""
    marks = after or Watermarks()
    with read_transaction(engine) as conn:
        db = _Driver(conn)
        try:
            return _read(db, since, marks, known, probe_flags, max_events)
        finally:
            db.close()


def _read(
    db: _Driver,
    since: int,
    marks: Watermarks,
    known: Container[GoodKey],
    probe_flags: Sequence[ProbeFlag],
    max_events: int | None,
) -> tuple[SignalInputs, Watermarks]:
    first_event = marks.event
    if max_events is not None:
        # Ids are assigned in order: the newest rows are the highest ids.
        newest = db.rows(f"SELECT max(id) FROM {events_t.name}")[0][0]
        first_event = max(first_event, int(newest or 0) - max_events)
    # The entries' mark is the newest entry read, not the newest CONFLICT: the next read
    # starts there instead of scanning every REGISTER entry since the last conflict.
    last_entry = int(db.rows(f"SELECT max(id) FROM {entries_t.name}")[0][0] or 0)
    conflicts = [
        _entry_record(row)
        for row in db.rows(
            f"SELECT {_ENTRY_COLUMNS} {_ENTRIES} WHERE e.kind = {int(EntryKind.CONFLICT)} "
            "AND e.id > ? AND e.id <= ? ORDER BY e.id",
            (marks.entry, last_entry),
        )
    ]
    transfers = [
        TransferRecord(
            i, gt, fp, creator, platform, sp, sr, bp, br, _price(price), cur, bool(final), at
        )
        for i, gt, fp, creator, platform, sp, sr, bp, br, price, cur, final, at in db.rows(
            "SELECT id, good_type, fingerprint, creator, platform, "
            f"{_PARTIES}, price, currency, final, created_at FROM {transfers_t.name} "
            "WHERE id > ? AND created_at >= ? ORDER BY id",
            (marks.transfer, since),
        )
    ]
    attempts = [
        AttemptRecord(
            i, at, platform, gt, fp, sp, sr, bp, br, _price(price), bool(final), reason, earlier
        )
        for i, at, platform, gt, fp, sp, sr, bp, br, price, final, reason, earlier in db.rows(
            "SELECT id, at, platform, good_type, fingerprint, "
            f"{_PARTIES}, price, final, reason, earlier_transfer_id FROM {attempts_t.name} "
            "WHERE id > ? AND at >= ? ORDER BY id",
            (marks.attempt, since),
        )
    ]
    events = [
        VerificationEventRecord(*row)
        for row in db.rows(
            "SELECT id, at, platform, good_type, fingerprint, via, verdict "
            f"FROM {events_t.name} WHERE id > ? AND at >= ? ORDER BY id",
            (first_event, since),
        )
    ]
    named: set[GoodKey] = set()
    for records in (conflicts, transfers, attempts):
        named.update(x.good for x in records)
    named.update((v.good_type, v.fingerprint) for v in events)
    registered: list[Any] = []  # REGISTER rows, made records once their products' faces are read
    holdings: dict[GoodKey, HoldingRecord] = {}
    by_type: dict[int, list[bytes]] = defaultdict(list)
    for good_type, fingerprint in named:
        by_type[good_type].append(fingerprint)
    for good_type, fingerprints in by_type.items():
        for i in range(0, len(fingerprints), _CHUNK):
            chunk = fingerprints[i : i + _CHUNK]
            # NOTE: not copied: the incremental reader's set of known goods is large.
            unknown = [f for f in chunk if (good_type, f) not in known]
            if unknown:
                # ``kind = 1`` as written, not a bound parameter: so that SQLite uses the
                # partial index uq_entries_registered_good (kind = 1), not a scan of every
                # entry (registry.entries does the same).
                among, params = db.among("e.fingerprint", unknown)
                for row in db.rows(
                    f"SELECT {_ENTRY_COLUMNS} {_ENTRIES} WHERE e.kind = "
                    f"{int(EntryKind.REGISTER)} AND e.good_type = ? AND {among}",
                    (good_type, *params),
                ):
                    registered.append(row)
            among, params = db.among("fingerprint", chunk)
            for fingerprint, holder, consumed, last in db.rows(
                "SELECT fingerprint, holder_platform, consumed, last_transfer_id "
                f"FROM {holdings_t.name} WHERE good_type = ? AND {among}",
                (good_type, *params),
            ):
                holding = HoldingRecord(good_type, fingerprint, holder, bool(consumed), last)
                holdings[holding.good] = holding
    faces = _faces(db, sorted({row[-1] for row in registered if row[-1] is not None}))
    registrations: dict[GoodKey, EntryRecord] = {}
    for row in registered:
        record = _entry_record(row, faces)
        registrations[record.good] = record
    marks = Watermarks(
        entry=max(marks.entry, last_entry),
        transfer=max([marks.transfer, *(x.transfer_id for x in transfers)]),
        attempt=max([marks.attempt, *(x.attempt_id for x in attempts)]),
        event=max([marks.event, *(x.event_id for x in events)]),
    )
    inputs = SignalInputs(
        registrations=registrations,
        conflicts=conflicts,
        transfers=transfers,
        attempts=attempts,
        holdings=holdings,
        verifications=events,
        probe_flags=tuple(probe_flags),
    )
    return inputs, marks


def _faces(db: _Driver, products: Sequence[int]) -> dict[int, Faces]:
    """The face value settings of ``products`` (few: a creator's product lines), by product."""
    rows: list[Any] = []
    for i in range(0, len(products), _CHUNK):
        chunk = products[i : i + _CHUNK]
        among = ",".join("?" * len(chunk))
        rows += db.rows(
            f"SELECT {FACE_COLUMNS} FROM {face_value_history_t.name} WHERE product_id IN ({among})",
            chunk,
        )
    return faces_by_product(rows)


# -- the index ---------------------------------------------------------------------------------


__all__ = ["Watermarks", "read_inputs"]
