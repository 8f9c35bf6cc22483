"""The risk worker: keeps the risk index and writes it where the API reads it.

The rules and the anomaly score (``readmodels.rules``, ``readmodels.anomaly``) read every
record of the look-back: at 10^6 goods with a busy market that is seconds of CPU a refresh,
which must not share an interpreter with the verify endpoint (it held the GIL for
milliseconds at a time and took a fifth of the API's core). So it runs in a process of its
own (``tracemark serve`` starts it) and hands its results over through the database:

- ``risk_goods``: each good with a risk, the score and its signals; the verify statement
  joins it, so an answer carries the market's view of the good for one index probe;
- ``risk_signals``: the standing signals with their evidence, for ``GET /v1/signals``;
- ``signal_history``: every version of every signal raised, kept after it stops standing
  (``readmodels.signalhistory``), for compliance reports of any period;
- ``risk_state``: when the index was built, and the worker's heartbeat;
- ``verification_events_by_good``: the API appends verification events without an index
  (the hot path); the worker indexes them by good, for traces.

Only what changed is written. A signal is *raised* when its id first enters ``risk_signals``;
the ``publish`` callback queues its webhooks in that same transaction (transactional
outbox), so a signal is announced exactly once, across restarts too. Probe flags come from
``probe_flags``, which the API writes with its telemetry.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Protocol

from sqlalchemy import Connection, Engine, Table, bindparam, delete, select, update

from readmodels.launderrulesfaces import FaceValueWatch
from readmodels.market import GoodKey, ProbeFlag
from readmodels.marketreads import Watermarks, read_inputs
from readmodels.payoutrules import OVERDUE_EVERY, OverdueWatch
from readmodels.probeflagrows import (
    dialect_insert,
    read_probe_flags,
    record_probe_flags,
)
from readmodels.realnamerule import RealNameRule, RealNameWatch
from readmodels.riskcollector import after_refresh
from readmodels.riskindex import LOOKBACK, MAX_EVENTS, REFRESH_SECONDS, Risk, RiskIndex
from readmodels.riskstate import REFIT_SECONDS, RiskState
from readmodels.signalhistory import SignalHistory
from readmodels.signals import PAYOUT_OVERDUE, UNATTESTED_SELLER, Signal, Thresholds
from registry.balances import DAY, DEFAULT_OVERDUE_DAYS
from registry.creditscores import CreditRefresh
from registry.db import read_transaction, retrying, write_transaction
from registry.lease import Lease
from registry.models import RiskGood, RiskSignal
from registry.models import RiskState as RiskStateRow
from registry.telemetry import index_verifications

# NOTE: the logger keeps the name it had under verifier/, so operators' log filters still match.
logger = logging.getLogger("tracemark.verifier.riskworker")

risk_goods_t: Table = RiskGood.__table__  # type: ignore[attr-defined]
risk_signals_t: Table = RiskSignal.__table__  # type: ignore[attr-defined]
risk_state_t: Table = RiskStateRow.__table__  # type: ignore[attr-defined]

#: A refresh may use at most this share of the worker's time (it has a core of its own in a
#: deployment, but shares the machine).
MAX_DUTY: Final = 0.5
#: Most verification events indexed per refresh (the rest wait for the next one).
MAX_INDEXED_PER_RUN: Final = 1_000_000
#: Rows per statement when writing goods' risk.
_CHUNK: Final = 500
#: The signals read from tables beside the market's records (the ledger, attestations), handed
#: over whole every refresh: the ones no longer standing are removed.
TABLE_READ_CODES: Final = frozenset({PAYOUT_OVERDUE, UNATTESTED_SELLER})

#: Queues a raised signal's webhooks inside the worker's transaction.
Publish = Callable[[Connection, Sequence[Signal], int], object]


@dataclass(frozen=True)
class RefreshReport:
    built_at: int
    goods: int
    signals: int
    raised: int
    goods_written: int
    goods_deleted: int


def _goods_row(risk: Risk) -> tuple[float, str]:
    """A good's score and its signals as the verify answer reads them: each one's id, code,
    English detail and ``message`` (its detail as catalogue templates, for the pages)."""
    signals = [
        {
            "signal_id": s.signal_id,
            "code": s.code,
            "detail": s.detail,
            "message": [part.document() for part in s.message],
        }
        for s in risk.signals
    ]
    return risk.score, json.dumps(signals, separators=(",", ":"))


class RiskWorker:
    """Builds, refreshes and writes the risk index (one thread or process at a time)."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], int],
        publish: Publish | None = None,
        thresholds: Thresholds | None = None,
        lookback: int = LOOKBACK,
        refit_seconds: int = REFIT_SECONDS,
        full_recompute: bool = False,
        payout_overdue_seconds: int = DEFAULT_OVERDUE_DAYS * DAY,
        payout_overdue_every: int = OVERDUE_EVERY,
        credit: CreditRefresh | None = None,
        realname: RealNameRule | None = None,
    ) -> None:
        self.engine = engine
        #: The credit scores verify answers read (issue 18): a pass every minute, off the API.
        self.credit = credit
        self.clock = clock
        self.publish = publish
        self.thresholds = thresholds or Thresholds()
        self.lookback = lookback
        self.refit_seconds = refit_seconds
        #: Run the full recompute (``RiskIndex``) instead of the incremental engine.
        self.full_recompute = full_recompute
        #: A due line unpaid this long raises ``payout-overdue`` (``readmodels.payoutrules``).
        self.payout_overdue_seconds = payout_overdue_seconds
        self._overdue_watch = OverdueWatch(payout_overdue_seconds, every=payout_overdue_every)
        #: ``unattested-seller`` (``readmodels.realnamerule``), read beside the overdue ones.
        self._realname_watch = RealNameWatch(realname or RealNameRule(), every=payout_overdue_every)
        self._faces = FaceValueWatch()  # a face value changed: the product's goods re-judged
        #: The ``payout-overdue`` signals' ids as last written (to remove the paid-up ones).
        self._overdue: set[str] = set()
        self.state: RiskState | None = None
        self._marks = Watermarks()
        self.index: RiskIndex | None = None
        # What the tables hold, as this worker last wrote or read them.
        self._goods: dict[GoodKey, tuple[float, str]] | None = None
        self._signals: dict[str, str] | None = None
        #: Every signal raised, kept after it stops standing (``readmodels.signalhistory``).
        self.history = SignalHistory()
        #: Run first in the transaction that writes a refresh and publishes its signals
        #: (``registry.lease.Lease.fence``): a process that lost the risk role writes nothing.
        self.fence: Callable[[Connection], None] = lambda conn: None

    def index_events(self) -> int:
        """Index the verification events the API appended since the last call, by good
        (``registry.telemetry.index_verifications``), a batch a transaction."""
        total = 0
        while total < MAX_INDEXED_PER_RUN:

            def batch() -> int:
                with write_transaction(self.engine) as conn:
                    return index_verifications(conn)

            indexed = retrying(batch)
            if not indexed:
                break
            total += indexed
        return total

    def run_once(self) -> RefreshReport:
        """Index the new verification events, read the records since the high-water marks,
        update the risk state (``readmodels.riskstate``; the first call reads the whole
        look-back) and write what changed."""
        self.index_events()
        now = self.clock()
        if self.credit is not None:
            self.credit.maybe_refresh(now)
        with read_transaction(self.engine) as conn:
            flags = read_probe_flags(conn, now - self.lookback)
            # Not the market's records: the ledger (read again when a payout lands, else once
            # a minute), added alike to the incremental engine's and the full recompute's.
            overdue = dict(self._overdue_watch.signals(conn, now))
            # Issue 18 item 4: ``unattested-seller`` is such a table-read rule too.
            overdue.update(self._realname_watch.signals(conn, now))
        if self.full_recompute:
            return self._run_full(now, flags, overdue)
        first = self.state is None
        if self.state is None:
            self.state = RiskState(
                self.thresholds, lookback=self.lookback, refit_seconds=self.refit_seconds
            )
            self._marks = Watermarks()
        state = self.state
        refaced = self._faces.refaced(self.engine, state.registrations)
        new, marks = read_inputs(
            self.engine,
            since=max(0, now - self.lookback),
            after=self._marks,
            known=state.registrations,
            max_events=MAX_EVENTS,
        )
        if refaced:  # before what was read now: that has the new face value already
            new = replace(new, registrations={**refaced, **new.registrations})
        changes = state.refresh(new, now=now, probe_flags=flags)
        after_refresh(refitted=changes.refitted)  # readmodels.riskcollector: why
        self._marks = marks
        if first:  # the tables hold what an earlier worker wrote: compare with all of it
            return self.write_all(state.goods, [*state.all_signals(), *overdue.values()], now, now)
        # Every overdue signal is handed over each time: ``_commit`` writes only those whose
        # document changed; the ones no longer standing (paid up) are removed.
        report = retrying(
            lambda: self._commit(
                {g: None if r is None else _goods_row(r) for g, r in changes.goods.items()},
                {**changes.signals, **overdue},
                changes.removed | (self._overdue - overdue.keys()),
                built_at=now,
                now=now,
                totals=(len(state.goods), len(state.signals) + len(overdue)),
            )
        )
        self._overdue = set(overdue)
        return report

    def _run_full(
        self, now: int, flags: Sequence[ProbeFlag], overdue: Mapping[str, Signal]
    ) -> RefreshReport:
        """The full recompute (``RiskIndex``): every rule over the look-back, the whole
        output compared with the tables. The reference, and the benchmark's old engine."""
        if self.index is None:
            index = RiskIndex.build(
                self.engine,
                now,
                thresholds=self.thresholds,
                lookback=self.lookback,
                probe_flags=flags,
            )
        else:
            index = self.index.refreshed(now, probe_flags=flags)
        self.index = index
        return self.write_all(index.goods(), [*index.signals, *overdue.values()], now, now)

    def write(self, index: RiskIndex, now: int) -> RefreshReport:
        """Write what ``index`` changes in the tables, raising (and publishing) its new
        signals; the whole write is one transaction, retried on PostgreSQL conflicts."""
        return self.write_all(index.goods(), index.signals, index.built_at, now)

    def write_all(
        self, goods: Mapping[GoodKey, Risk], signals: Iterable[Signal], built_at: int, now: int
    ) -> RefreshReport:
        """Make the tables hold exactly ``goods`` and ``signals`` (a cost in the tables'
        size: at a start, and for the full recompute)."""
        signals = list(signals)
        self._overdue = {s.signal_id for s in signals if s.code in TABLE_READ_CODES}

        def write() -> RefreshReport:
            stored, known = self._load()
            wanted = {good: _goods_row(risk) for good, risk in goods.items()}
            rows: dict[GoodKey, tuple[float, str] | None] = dict(wanted)
            rows.update((g, None) for g in stored if g not in wanted)
            by_id = {s.signal_id: s for s in signals}
            return self._commit(
                rows,
                by_id,
                known.keys() - by_id.keys(),
                built_at=built_at,
                now=now,
                totals=(len(wanted), len(by_id)),
            )

        return retrying(write)

    def reset(self) -> None:
        """Forget the state and what the tables hold: the next run starts from scratch."""
        self.index = None
        self.state = None
        self._goods = self._signals = None
        self._overdue = set()
        self.history.reset()

    def _load(self) -> tuple[dict[GoodKey, tuple[float, str]], dict[str, str]]:
        """What the tables hold (once; from then on this worker, their only writer, knows)."""
        if self._goods is None or self._signals is None:
            with read_transaction(self.engine) as conn:
                self._goods = {
                    (int(r.good_type), bytes(r.fingerprint)): (float(r.score), r.signals)
                    for r in conn.execute(select(risk_goods_t))
                }
                c = risk_signals_t.c
                self._signals = {
                    r.signal_id: r.document for r in conn.execute(select(c.signal_id, c.document))
                }
        return self._goods, self._signals

    def _commit(
        self,
        rows: Mapping[GoodKey, tuple[float, str] | None],
        signals: Mapping[str, Signal],
        removed: Iterable[str],
        *,
        built_at: int,
        now: int,
        totals: tuple[int, int],
    ) -> RefreshReport:
        """Write ``rows`` (None: delete) and ``signals`` where they differ from the tables,
        delete ``removed``: a cost in what is given, not in the tables' size."""
        goods, known = self._load()
        changed = {g: row for g, row in rows.items() if row is not None and goods.get(g) != row}
        gone = [g for g, row in rows.items() if row is None and g in goods]
        documents = {
            sid: json.dumps(s.document(), separators=(",", ":")) for sid, s in signals.items()
        }
        raised = [s for sid, s in signals.items() if sid not in known]
        rewritten = {
            sid: doc for sid, doc in documents.items() if sid in known and known[sid] != doc
        }
        stale = sorted(sid for sid in removed if sid in known)
        c = risk_signals_t.c
        with write_transaction(self.engine) as conn:
            self.fence(conn)
            self._write_goods(conn, changed, gone)
            # Each one statement executed for many rows (a statement a signal, built and
            # compiled each time, cost more than the database's work).
            if rewritten:
                conn.execute(
                    update(risk_signals_t)
                    .where(c.signal_id == bindparam("sid"))
                    .values(document=bindparam("doc"), seen_at=now),
                    [{"sid": sid, "doc": doc} for sid, doc in rewritten.items()],
                )
            if raised:
                conn.execute(
                    risk_signals_t.insert(),
                    [
                        {
                            "signal_id": signal.signal_id,
                            "code": signal.code,
                            "subject_kind": signal.subject.kind,
                            "subject_id": signal.subject.id,
                            "platforms": " " + " ".join(signal.platforms) + " ",
                            "document": documents[signal.signal_id],
                            "raised_at": now,
                            "seen_at": now,
                        }
                        for signal in raised
                    ],
                )
            for start in range(0, len(stale), _CHUNK):
                conn.execute(
                    delete(risk_signals_t).where(c.signal_id.in_(stale[start : start + _CHUNK]))
                )
            written = self.history.record(
                conn,
                raised=raised,
                rewritten=rewritten,
                stopped=stale,
                signals=signals,
                documents=documents,
                now=now,
            )
            if raised and self.publish is not None:
                self.publish(conn, raised, now)
            state = dialect_insert(conn, risk_state_t).values(
                id=1, built_at=built_at, heartbeat=now
            )
            conn.execute(
                state.on_conflict_do_update(
                    index_elements=["id"],
                    set_={
                        "built_at": state.excluded.built_at,
                        "heartbeat": state.excluded.heartbeat,
                    },
                )
            )
        # Only once committed: a rolled-back write is retried against the old state.
        self.history.settle(written)
        goods.update(changed)
        for good in gone:
            del goods[good]
        known.update(rewritten)
        known.update((s.signal_id, documents[s.signal_id]) for s in raised)
        for sid in stale:
            del known[sid]
        if raised:
            logger.info("raised %d signal(s): %s", len(raised), ", ".join(s.code for s in raised))
        return RefreshReport(built_at, *totals, len(raised), len(changed), len(gone))

    @staticmethod
    def _write_goods(
        conn: Connection, changed: Mapping[GoodKey, tuple[float, str]], gone: Sequence[GoodKey]
    ) -> None:
        c = risk_goods_t.c
        if gone:
            conn.execute(
                delete(risk_goods_t).where(
                    c.good_type == bindparam("gt"), c.fingerprint == bindparam("fp")
                ),
                [{"gt": g[0], "fp": g[1]} for g in gone],
            )
        rows = [
            {"good_type": g[0], "fingerprint": g[1], "score": score, "signals": signals}
            for g, (score, signals) in changed.items()
        ]
        if rows:
            # One statement, executed for many rows (compiled once: building a multi-row
            # VALUES per chunk cost more than the database's work).
            statement = dialect_insert(conn, risk_goods_t)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["good_type", "fingerprint"],
                    set_={"score": statement.excluded.score, "signals": statement.excluded.signals},
                ),
                rows,
            )


class Stop(Protocol):
    """A ``threading.Event`` or a ``multiprocessing`` one."""

    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


def run_risk_worker(
    worker: RiskWorker,
    *,
    interval: float = REFRESH_SECONDS,
    stop: Stop,
    lease: Lease | None = None,
) -> None:
    """Refresh every ``interval`` seconds (or less often, past ``MAX_DUTY``) until ``stop``;
    with a ``lease`` (kept by the caller), only while holding the risk worker's role, and
    each refresh's write fenced by it."""
    if lease is not None:
        worker.fence = lease.fence
    while not stop.is_set():
        if lease is not None and not lease.held:
            stop.wait(min(interval, lease.interval))  # another process refreshes
            continue
        started = time.monotonic()
        try:
            report = worker.run_once()
            logger.debug("risk index: %s", report)
        except Exception:  # a failed refresh is retried from scratch at the next one
            logger.exception("risk refresh failed; starting over at the next one")
            worker.reset()
        took = time.monotonic() - started
        stop.wait(max(interval, took / MAX_DUTY - took))


__all__ = [
    "Publish",
    "RefreshReport",
    "RiskWorker",
    "Stop",
    "read_probe_flags",
    "record_probe_flags",
    "run_risk_worker",
]
