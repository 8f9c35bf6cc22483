"""The signal history: every signal the risk worker raised, kept after it stops standing, so a
compliance report covers any period (issue 18 item 3; migration 0032, ``signal_history``).

``risk_signals`` holds the *standing* signals over the worker's 30-day look-back: a signal
whose evidence aged out, or that was cleared, is deleted there. Here it is kept:

- a row is one **version** of a signal: its document as written (detail, weight, goods,
  evidence), the spell's first raise (``raised_at``), when this version was written
  (``since_at``), the last refresh at which it stood (``seen_at``) and when it stopped
  (``ended_at``, None while it stands; ``ended_by`` ``changed`` or ``stopped``);
- a changed document (new evidence, an item aged out, a count in the detail) closes the open
  version (``changed``) and appends the next one. NOTE: a new version, not an update of the
  open one: a report of an earlier period must still find the evidence as it stood then
  (an update would drop the items that aged out). The cost is a row per change;
- a signal that stops standing has its open version closed (``stopped``); raised again
  later, it starts a new spell (new ``raised_at``, the next version number).

Nothing is deleted or rewritten: the only update is a row's closing, once, and triggers on
both databases refuse any other (migration 0032). The worker writes the history in the
transaction that updates ``risk_signals`` (``RiskWorker._commit``), for the signals that
changed only: the open versions' numbers are kept in memory, as the worker keeps the
standing documents, so a refresh costs what changed, never a pass over the standing ones.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Connection,
    Table,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)

from readmodels.signals import Signal
from registry.models import RiskState as RiskStateRow
from registry.models import SignalHistoryRow

signal_history_t: Table = SignalHistoryRow.__table__  # type: ignore[attr-defined]
_risk_state_t: Table = RiskStateRow.__table__  # type: ignore[attr-defined]

CHANGED: Final = "changed"
STOPPED: Final = "stopped"
_CHUNK: Final = 500


@dataclass(frozen=True, slots=True)
class Open:
    """A standing signal's open version: its number and its spell's first raise."""

    version: int
    raised_at: int


@dataclass(frozen=True, slots=True)
class Written:
    """What one commit did to the open versions, applied once the transaction committed."""

    opened: Mapping[str, Open]
    closed: Collection[str]


class SignalHistory:
    """The risk worker's writer of the history (its only writer)."""

    def __init__(self) -> None:
        #: The open versions, as the table holds them (loaded once, then kept).
        self._open: dict[str, Open] | None = None

    def reset(self) -> None:
        self._open = None

    def record(
        self,
        conn: Connection,
        *,
        raised: Sequence[Signal],
        rewritten: Iterable[str],
        stopped: Iterable[str],
        signals: Mapping[str, Signal],
        documents: Mapping[str, str],
        now: int,
    ) -> Written:
        """Append a version for each raised or rewritten signal (closing its open one) and
        close the open version of each stopped one; return the change to apply after commit."""
        opened = self._load(conn)
        raised_ids = {s.signal_id for s in raised}
        new = [*raised_ids, *(sid for sid in rewritten if sid not in raised_ids)]
        ends = [(sid, CHANGED) for sid in new if sid in opened]
        ends += [(sid, STOPPED) for sid in stopped if sid in opened]
        if ends:
            _close(conn, ends, now)
        # A signal with no open version (raised anew, or a new spell) continues its numbers.
        last = _last_versions(conn, [sid for sid in new if sid not in opened])
        versions: dict[str, Open] = {}
        for sid in new:
            before = opened.get(sid)
            number = before.version + 1 if before is not None else last.get(sid, 0) + 1
            spell = now if sid in raised_ids or before is None else before.raised_at
            versions[sid] = Open(number, spell)
        if versions:
            conn.execute(
                signal_history_t.insert(),
                [
                    _row(signals[sid], documents[sid], version, now)
                    for sid, version in versions.items()
                ],
            )
        return Written(versions, [sid for sid, why in ends if why == STOPPED])

    def settle(self, written: Written) -> None:
        """The commit went through: the open versions are now these."""
        if self._open is None:
            return
        for sid in written.closed:
            self._open.pop(sid, None)
        self._open.update(written.opened)

    def _load(self, conn: Connection) -> dict[str, Open]:
        if self._open is None:
            c = signal_history_t.c
            rows = conn.execute(
                select(c.signal_id, c.version, c.raised_at).where(c.ended_at.is_(None))
            )
            self._open = {r.signal_id: Open(int(r.version), int(r.raised_at)) for r in rows}
        return self._open


def _row(signal: Signal, document: str, version: Open, now: int) -> dict[str, Any]:
    return {
        "signal_id": signal.signal_id,
        "version": version.version,
        "code": signal.code,
        "subject_kind": signal.subject.kind,
        "subject_id": signal.subject.id,
        "platforms": " " + " ".join(signal.platforms) + " ",
        "document": document,
        "raised_at": version.raised_at,
        "since_at": now,
        "seen_at": now,
        "ended_at": None,
        "ended_by": None,
    }


def _close(conn: Connection, ends: Sequence[tuple[str, str]], now: int) -> None:
    """Close the open versions: last seen at the previous refresh (the worker's heartbeat,
    when every standing signal stood), or when written if that is later."""
    heartbeat = conn.execute(
        select(_risk_state_t.c.heartbeat).where(_risk_state_t.c.id == 1)
    ).scalar()
    c = signal_history_t.c
    seen = bindparam("seen", type_=BigInteger())
    conn.execute(
        update(signal_history_t)
        .where(c.signal_id == bindparam("sid"), c.ended_at.is_(None))
        .values(
            seen_at=case((c.since_at > seen, c.since_at), else_=seen),
            ended_at=now,
            ended_by=bindparam("why"),
        ),
        [{"sid": sid, "why": why, "seen": min(now, heartbeat or now)} for sid, why in ends],
    )


def _last_versions(conn: Connection, ids: Sequence[str]) -> dict[str, int]:
    c = signal_history_t.c
    last: dict[str, int] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            select(c.signal_id, func.max(c.version))
            .where(c.signal_id.in_(ids[start : start + _CHUNK]))
            .group_by(c.signal_id)
        )
        last.update((str(sid), int(version)) for sid, version in rows)
    return last


# -- reading: a report's period --------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """One version of a signal as the history keeps it."""

    signal_id: str
    version: int
    document: dict[str, Any]
    raised_at: int
    since_at: int
    seen_at: int
    ended_at: int | None
    ended_by: str | None

    def stood_in(self, start: int, end: int) -> bool:
        return self.since_at <= end and (self.ended_at is None or self.ended_at >= start)

    def in_period(self, start: int, end: int) -> bool:
        """One of its evidence items is dated in [start, end]; a version with no dated item
        (a standing state: an unpaid line, a seller with no attestation) stood in it."""
        dated = [e["at"] for e in self.document["evidence"] if e.get("at") is not None]
        if dated:
            return any(start <= at <= end for at in dated)
        return self.stood_in(start, end)


@dataclass(frozen=True)
class Reported:
    """The version a report of a period carries for one signal, and its spell's end (None:
    the signal still stands)."""

    version: Version
    stopped_at: int | None


def versions_in_period(conn: Connection, start: int, end: int) -> list[Reported]:
    """For each signal with a version in the period, its latest such version, by signal id.

    Read: the versions that stood at or after ``start`` (a version whose item is dated in the
    period was written after that item, so it ended after ``start`` or stands)."""
    c = signal_history_t.c
    rows = conn.execute(
        select(signal_history_t)
        .where(or_(c.ended_at.is_(None), c.ended_at >= start))
        .order_by(c.signal_id, c.version)
    )
    by_signal: dict[str, list[Version]] = {}
    for r in rows:
        by_signal.setdefault(r.signal_id, []).append(
            Version(
                r.signal_id,
                int(r.version),
                json.loads(r.document),
                int(r.raised_at),
                int(r.since_at),
                int(r.seen_at),
                None if r.ended_at is None else int(r.ended_at),
                r.ended_by,
            )
        )
    reported = []
    for versions in by_signal.values():
        chosen = [v for v in versions if v.in_period(start, end)]
        if not chosen:
            continue
        latest = chosen[-1]
        # Its spell's later versions were all read (each ended after this one).
        spell = [v for v in versions if v.raised_at == latest.raised_at]
        standing = any(v.ended_at is None for v in spell)
        stopped = None if standing else max(v.ended_at or 0 for v in spell)
        reported.append(Reported(latest, stopped))
    return reported


__all__ = [
    "CHANGED",
    "STOPPED",
    "Open",
    "Reported",
    "SignalHistory",
    "Version",
    "Written",
    "signal_history_t",
    "versions_in_period",
]
