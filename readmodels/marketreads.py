"""Reading the market's records (``readmodels.market``) from the database, from watermarks on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Row, Select, func, select, text

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


def _default_use(good_type: int) -> int:
    return int(Use.SINGLE if good_type == int(GoodType.CODE) else Use.TRANSFERABLE)


def _entry_record(row: Row[Any]) -> EntryRecord:
    r = row._mapping
    use = r["use"] if r["use"] is not None else _default_use(int(r["good_type"]))
    return EntryRecord(
        entry_id=int(r["id"]),
        kind=int(r["kind"]),
        good_type=int(r["good_type"]),
        fingerprint=bytes(r["fingerprint"]),
        actor=bytes(r["actor"]),
        leaf_index=None if r["leaf_index"] is None else int(r["leaf_index"]),
        timestamp=None if r["timestamp"] is None else int(r["timestamp"]),
        record_id=int(r["record_id"]),
        position=r["position"],
        use=int(use),
    )


def _entries_query() -> Select[Any]:
    e = entries_t.c
    return select(
        e.id,
        e.kind,
        e.good_type,
        e.fingerprint,
        e.actor,
        e.leaf_index,
        e.timestamp,
        e.record_id,
        e.position,
        products_t.c.use,
    ).outerjoin(products_t, products_t.c.id == e.product_id)


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
    watermarks. SQLAlchemy Core, one read transaction."""
    marks = after or Watermarks()
    e, t, a, v, h = entries_t.c, transfers_t.c, attempts_t.c, events_t.c, holdings_t.c
    with read_transaction(engine) as conn:
        first_event = marks.event
        if max_events is not None:
            # Ids are assigned in order: the newest rows are the highest ids.
            newest = conn.execute(select(func.max(v.id))).scalar()
            first_event = max(first_event, int(newest or 0) - max_events)
        # The entries' mark is the newest entry read, not the newest CONFLICT: the next read
        # starts there instead of scanning every REGISTER entry since the last conflict.
        last_entry = int(conn.execute(select(func.max(e.id))).scalar() or 0)
        conflicts = [
            _entry_record(row)
            for row in conn.execute(
                _entries_query()
                .where(e.kind == int(EntryKind.CONFLICT), e.id > marks.entry, e.id <= last_entry)
                .order_by(e.id)
            )
        ]
        transfers = [
            TransferRecord(
                transfer_id=int(r.id),
                good_type=int(r.good_type),
                fingerprint=bytes(r.fingerprint),
                creator=bytes(r.creator),
                platform=r.platform,
                seller_platform=r.seller_platform,
                seller_ref=None if r.seller_ref is None else bytes(r.seller_ref),
                buyer_platform=r.buyer_platform,
                buyer_ref=bytes(r.buyer_ref),
                price=None if r.price is None else int(r.price),
                currency=r.currency,
                final=bool(r.final),
                created_at=int(r.created_at),
            )
            for r in conn.execute(
                select(transfers_t)
                .where(t.id > marks.transfer, t.created_at >= since)
                .order_by(t.id)
            )
        ]
        attempts = [
            AttemptRecord(
                attempt_id=int(r.id),
                at=int(r.at),
                platform=r.platform,
                good_type=int(r.good_type),
                fingerprint=bytes(r.fingerprint),
                seller_platform=r.seller_platform,
                seller_ref=None if r.seller_ref is None else bytes(r.seller_ref),
                buyer_platform=r.buyer_platform,
                buyer_ref=bytes(r.buyer_ref),
                price=None if r.price is None else int(r.price),
                final=bool(r.final),
                reason=r.reason,
                earlier_transfer_id=r.earlier_transfer_id,
            )
            for r in conn.execute(
                select(attempts_t).where(a.id > marks.attempt, a.at >= since).order_by(a.id)
            )
        ]
        events = [
            VerificationEventRecord(
                int(r.id),
                int(r.at),
                r.platform,
                int(r.good_type),
                bytes(r.fingerprint),
                r.via,
                r.verdict,
            )
            for r in conn.execute(
                select(events_t).where(v.id > first_event, v.at >= since).order_by(v.id)
            )
        ]
        named: set[GoodKey] = set()
        for records in (conflicts, transfers, attempts, events):
            named.update(x.good for x in records)
        # NOTE: not copied: the incremental reader's set of known goods is large.
        skip = known
        registrations: dict[GoodKey, EntryRecord] = {}
        holdings: dict[GoodKey, HoldingRecord] = {}
        by_type: dict[int, list[bytes]] = defaultdict(list)
        for good_type, fingerprint in named:
            by_type[good_type].append(fingerprint)
        for good_type, fingerprints in by_type.items():
            for i in range(0, len(fingerprints), _CHUNK):
                chunk = fingerprints[i : i + _CHUNK]
                unknown = [f for f in chunk if (good_type, f) not in skip]
                for row in (
                    ()
                    if not unknown
                    else conn.execute(
                        _entries_query().where(
                            # As written, not a bound parameter: so that SQLite uses the
                            # partial index uq_entries_registered_good (kind = 1), not a scan
                            # of every entry (registry.entries does the same).
                            text(f"entries.kind = {int(EntryKind.REGISTER)}"),
                            e.good_type == good_type,
                            e.fingerprint.in_(unknown),
                        )
                    )
                ):
                    record = _entry_record(row)
                    registrations[record.good] = record
                for r in conn.execute(
                    select(holdings_t).where(h.good_type == good_type, h.fingerprint.in_(chunk))
                ):
                    holding = HoldingRecord(
                        good_type,
                        bytes(r.fingerprint),
                        r.holder_platform,
                        bool(r.consumed),
                        int(r.last_transfer_id),
                    )
                    holdings[holding.good] = holding
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


# -- the index ---------------------------------------------------------------------------------


__all__ = ["Watermarks", "read_inputs"]
