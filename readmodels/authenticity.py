"""Is this good authentic? The facts the registry holds about a good, and the verdict on them.

``GoodLookup`` is the verify endpoint's hot path: one statement of indexed probes through the
raw database driver on a connection kept per thread (no ORM, no pool checkout per request), since
a platform's reseller bot asks this thousands of times a second. ``decide`` is pure: the same
facts always give the same verdict, risk signals and score.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Engine

from anchoring.states import ANCHORED, AnchorState
from readmodels.codekeys import CODE_KEY_CACHE_TTL, CodeKeyCache
from registry.fingerprints import GoodType, Use
from registry.orders import State
from registry.records import checksum

#: Verdicts, most severe first where several apply.
AUTHENTIC: Final = "authentic"
UNKNOWN: Final = "unknown"
REVOKED: Final = "revoked"
CONSUMED: Final = "consumed"
CONFLICT: Final = "conflict"
PENDING_ANCHOR: Final = "pending_anchor"

#: The mined and final states as SQL literals (the stored strings).
_ANCHORED_SQL: Final = ", ".join(f"'{state}'" for state in sorted(ANCHORED))

# One statement for everything a verify answer says of a good: each round trip to the
# database costs more than the probes it makes, and PostgreSQL's are network round trips.
# NOTE: "kind <> 1" repeats the partial index's condition so that SQLite can use it; the
# anchor is the first mined or final one whose tree covers the entry, found on
# ix_anchors_tree_size ({state} is "+state" on SQLite, which keeps its planner off the
# state index that would make it sort every anchor). The verification counts are a LEFT
# JOIN aggregated by the entry (every other column is grouped, as PostgreSQL wants): an
# aggregate subquery joined in was materialised per request, about a sixth of the statement.
# The holder's credit is two primary-key probes of the scores the risk worker keeps
# (``registry.creditscores``), scalar subqueries so that they are read once per answer.
# The reservation's order is joined by its primary key (no probe when there is no reservation)
# for its state: a delivered order past its deadline still reserves the good, as the transfer
# path refuses it (``registry.reservations``).
_FACTS = """
SELECT e.actor, e.leaf_index, p.slug, p.use, h.holder_platform, h.consumed, h.last_transfer_id,
       (SELECT COUNT(*) FROM entries x
        WHERE x.good_type = e.good_type AND x.fingerprint = e.fingerprint
          AND x.kind <> 1 AND x.kind = 2),
       (SELECT COUNT(*) FROM entries x
        WHERE x.good_type = e.good_type AND x.fingerprint = e.fingerprint
          AND x.kind <> 1 AND x.kind = 4),
       SUM(v.count), COUNT(v.platform), MIN(v.first_at),
       a.tree_size, a.state, a.tx_hash, a.block_number,
       r.score, r.signals, o.platform, o.expires_at, od.state,
       (SELECT cp.document FROM credit_platforms cp WHERE cp.platform = h.holder_platform),
       (SELECT cs.document FROM credit_sellers cs
        WHERE cs.platform = h.holder_platform AND cs.seller_ref = h.holder_ref)
FROM entries e
LEFT JOIN products p ON p.id = e.product_id
LEFT JOIN holdings h ON h.good_type = e.good_type AND h.fingerprint = e.fingerprint
LEFT JOIN risk_goods r ON r.good_type = e.good_type AND r.fingerprint = e.fingerprint
LEFT JOIN order_reservations o ON o.good_type = e.good_type AND o.fingerprint = e.fingerprint
LEFT JOIN orders od ON od.id = o.order_id
LEFT JOIN anchors a ON a.id = (
    SELECT id FROM anchors
    WHERE {state} IN ({anchored}) AND tree_size > e.leaf_index
    ORDER BY tree_size LIMIT 1)
LEFT JOIN verification_counts v ON v.good_type = e.good_type AND v.fingerprint = e.fingerprint
WHERE e.kind = 1 AND e.good_type = {p} AND e.fingerprint = {p}
GROUP BY e.id, p.slug, p.use, h.holder_platform, h.holder_ref, h.consumed, h.last_transfer_id,
         a.tree_size, a.state, a.tx_hash, a.block_number, r.score, r.signals,
         o.platform, o.expires_at, od.state
"""


#: ``Use`` by its stored value (an enum's own lookup by value costs more than the rest here).
_USES: Final = {int(use): use for use in Use}


@dataclass(frozen=True, slots=True)
class AnchorFacts:
    tree_size: int
    final: bool
    tx_hash: bytes
    block_number: int


@dataclass(frozen=True, slots=True)
class GoodFacts:
    """What the registry knows about one registered good, read in one go."""

    good_type: GoodType
    fingerprint: bytes
    creator: str
    product: str | None
    use: Use
    leaf_index: int | None
    holder_platform: str | None
    last_transfer_id: int | None
    consumed: bool
    revoked: bool
    conflicts: int
    anchor: AnchorFacts | None
    times_verified: int
    platforms_verified: int
    first_verified_at: int | None
    #: The market's view of the good (``readmodels.riskworker``): the risk index's score and
    #: signals, as its worker last wrote them (seconds behind, like the telemetry).
    market_risk: float = 0.0
    market_signals: tuple[VerdictSignal, ...] = ()
    #: The good's reservation for an open order (issue 17): the order's platform, and until
    #: when (None: until the order is resolved). ``reserved_at`` says whether it holds.
    reserved_by: str | None = None
    reserved_until: int | None = None
    #: Whether the reservation's order was delivered: past its deadline its sale stands.
    reserved_delivered: bool = False
    #: The holder's credit as the risk worker last wrote it (``registry.creditscores``): the
    #: holding platform's and the holding seller's ``CreditOut`` documents, JSON (None: none).
    platform_credit: str | None = None
    seller_credit: str | None = None

    def reserved_at(self, now: int) -> bool:
        """Whether the good is reserved for an open order at ``now``, as the transfer path
        says (``registry.reservations.refuse_if_reserved``): a lapsed reservation frees it,
        unless its order was delivered (its sale stands until the auto-confirm settles it)."""
        return self.reserved_by is not None and (
            self.reserved_until is None or now < self.reserved_until or self.reserved_delivered
        )


@dataclass(frozen=True, slots=True)
class VerdictSignal:
    """One reason a verify answer gives for its score (code, detail, weight). Not the market's
    ``readmodels.signals.Signal`` (a rule's finding with subject and evidence): the answer
    carries that one's code and detail only, already weighed by the risk index."""

    code: str
    detail: str
    weight: float
    #: The detail's parameters for the pages' catalogues (``verdict.<code>.detail`` in
    #: ``api/messages``), which say it in the reader's language; None for a market signal.
    params: Mapping[str, str | int | None] | None = field(default=None, hash=False)
    #: A market signal's detail as its rule's catalogue templates (``signal.<code>.detail[.
    #: <variant>]``, ``readmodels.signals.DetailPart``), each ``{"key", "params"}``, joined
    #: by the page; None for a verdict signal, or a market signal written before they were.
    parts: tuple[Mapping[str, Any], ...] | None = field(default=None, hash=False, compare=False)

    @property
    def message_key(self) -> str | None:
        """The catalogue key of the detail's template, when it has one."""
        return None if self.params is None else f"verdict.{self.code}.detail"


@dataclass(frozen=True)
class Decision:
    verdict: str
    signals: list[VerdictSignal] = field(default_factory=list)
    #: The risk index's score of the good, and its signals (``GoodFacts.market_risk``).
    market: float = 0.0
    market_signals: tuple[VerdictSignal, ...] = ()

    @property
    def score(self) -> float:
        """0 (nothing suspicious) to 1: 1 - (1 - market) x prod(1 - weight), so signals add up
        but saturate."""
        remaining = 1.0 - self.market
        for signal in self.signals:
            remaining *= 1.0 - signal.weight
        return round(1.0 - remaining, 3)

    @property
    def all_signals(self) -> list[VerdictSignal]:
        """This request's signals, then the market's."""
        return [*self.signals, *self.market_signals]


class GoodLookup:
    """Reads a good's facts through the raw driver, one connection per thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        sqlite = engine.dialect.name == "sqlite"
        self._sqlite = sqlite
        self._sql = _FACTS.format(
            p="?" if sqlite else "%s",
            state="+state" if sqlite else "state",
            anchored=_ANCHORED_SQL,
        )
        #: The statement for n candidate fingerprints (a rotated code key), by n.
        self._any_sql: dict[int, str] = {}
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        """This thread's driver connection (the pool's proxy adds a layer to every call)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # Detached from the engine's pool: a thread keeps its connection for good, and
            # must not hold one of the pool's few slots for ever.
            pooled = self.engine.raw_connection()
            pooled.detach()
            with self._lock:
                self._connections.append(pooled)
            conn = self._local.conn = pooled.dbapi_connection
            if not self._sqlite:
                # NOTE: autocommit, one statement a lookup. In a transaction each lookup was
                # BEGIN, the statement and ROLLBACK, and psycopg forgets its prepared
                # statements on every rollback, so PostgreSQL planned the statement again
                # each time: ~3.5 ms of a backend's CPU a lookup against ~0.4 ms
                # (bench/cluster_bench.py). A lone SELECT is its own snapshot, and none
                # stays open between requests.
                conn.autocommit = True  # type: ignore[union-attr]
        return conn

    def discard(self) -> None:
        """Forget this thread's connection (broken: its server went away); the next lookup
        opens another."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._lock:
            self._connections = [c for c in self._connections if c.dbapi_connection is not conn]
        with suppress(Exception):
            conn.close()

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
            # Threads that looked up before must open new connections, not use closed ones.
            self._local = threading.local()

    def facts(self, good_type: GoodType, fingerprint: bytes) -> GoodFacts | None:
        conn = self._connection()
        key = (int(good_type), fingerprint)
        try:
            cursor = conn.cursor()
            cursor.execute(self._sql, key)
            row = cursor.fetchone()
            cursor.close()
        finally:
            # PostgreSQL's connection is in autocommit (``_connection``); on SQLite, with the
            # driver's own BEGIN turned off, a SELECT opens no transaction either.
            if self._sqlite and conn.in_transaction:
                conn.rollback()
        if row is None:
            return None
        return _good_facts(good_type, fingerprint, row)

    def facts_any(self, good_type: GoodType, fingerprints: Sequence[bytes]) -> GoodFacts | None:
        """The facts of the first of ``fingerprints`` that is registered, in one statement.

        A code looked up under each of its creator's live keys (newest first) gives several
        candidates; at most one is registered in practice, and the order settles the rest.
        One candidate is ``facts`` itself, the single-key path unchanged.
        """
        if len(fingerprints) == 1:
            return self.facts(good_type, fingerprints[0])
        if not fingerprints:
            return None
        sql = self._any_sql.get(len(fingerprints))
        if sql is None:
            p = "?" if self._sqlite else "%s"
            candidates = "e.fingerprint IN (" + ", ".join([p] * len(fingerprints)) + ")"
            sql = self._sql.replace("SELECT ", "SELECT e.fingerprint, ", 1)
            sql = sql.replace(f"e.fingerprint = {p}", candidates)
            self._any_sql[len(fingerprints)] = sql
        conn = self._connection()
        try:
            cursor = conn.cursor()
            cursor.execute(sql, (int(good_type), *fingerprints))
            rows = cursor.fetchall()
            cursor.close()
        finally:
            if self._sqlite and conn.in_transaction:
                conn.rollback()
        found = {bytes(row[0]): row[1:] for row in rows}
        for fingerprint in fingerprints:
            row = found.get(fingerprint)
            if row is not None:
                return _good_facts(good_type, fingerprint, row)
        return None


def _good_facts(good_type: GoodType, fingerprint: bytes, row: Sequence[Any]) -> GoodFacts:
    """A row of the facts statement (without a leading fingerprint) as ``GoodFacts``."""
    (actor, leaf_index, slug, product_use, holder, consumed, last_transfer,
     revokes, conflicts, times, platforms, first_at,
     anchor_size, anchor_state, anchor_tx, anchor_block,
     risk_score, risk_signals, reserved_by, reserved_until, order_state,
     platform_credit, seller_credit) = row  # fmt: skip
    if product_use is not None:
        use = _USES[product_use]
    else:
        use = Use.SINGLE if good_type is GoodType.CODE else Use.TRANSFERABLE
    anchor = None
    if anchor_size is not None:
        anchor = AnchorFacts(
            int(anchor_size), anchor_state == AnchorState.FINAL, bytes(anchor_tx), int(anchor_block)
        )
    return GoodFacts(
        good_type=good_type,
        fingerprint=fingerprint,
        creator=checksum(bytes(actor)),
        product=slug,
        use=use,
        leaf_index=None if leaf_index is None else int(leaf_index),
        holder_platform=holder,
        last_transfer_id=None if last_transfer is None else int(last_transfer),
        consumed=bool(consumed),
        revoked=bool(revokes),
        conflicts=int(conflicts or 0),
        anchor=anchor,
        times_verified=int(times or 0),
        platforms_verified=int(platforms or 0),
        first_verified_at=None if first_at is None else int(first_at),
        market_risk=0.0 if risk_score is None else float(risk_score),
        market_signals=() if risk_signals is None else _market_signals(risk_signals),
        reserved_by=reserved_by,
        reserved_until=None if reserved_until is None else int(reserved_until),
        reserved_delivered=order_state == State.DELIVERED,
        platform_credit=platform_credit,
        seller_credit=seller_credit,
    )


def _market_signals(document: str) -> tuple[VerdictSignal, ...]:
    return tuple(
        # Weighed already: the index's score covers them.
        VerdictSignal(
            item["code"],
            item["detail"],
            0.0,
            parts=tuple(item["message"]) if item.get("message") else None,
        )
        for item in json.loads(document)
    )


def decide(
    facts: GoodFacts | None,
    *,
    claimed_creator: str | None = None,
    claimed_product: str | None = None,
) -> Decision:
    """The verdict and the risk signals of this request, each with the evidence that raised it.

    The behaviour of the market around the good (velocity, leaked batches, double offers,
    rings, probes) is the risk index's (``readmodels.riskindex``), which the API adds to this.
    NOTE: "checked on more than two platforms" used to be a signal here; it fired mostly on
    honest agent chains, and the index's velocity and foreign-offer rules replace it.
    """
    if facts is None:
        return Decision(
            UNKNOWN, [VerdictSignal("unregistered", "no creator registered this good", 0.6, {})]
        )
    signals: list[VerdictSignal] = []
    mismatch = False
    if claimed_creator is not None and claimed_creator.lower() != facts.creator.lower():
        mismatch = True
        signals.append(
            VerdictSignal(
                "creator-mismatch",
                f"registered by {facts.creator}, not the one named",
                0.9,
                {"creator": facts.creator},
            )
        )
    if claimed_product is not None and claimed_product != facts.product:
        mismatch = True
        signals.append(
            VerdictSignal(
                "product-mismatch",
                f"registered as product {facts.product!r}, not {claimed_product!r}",
                0.8,
                {"product": facts.product, "claimed": claimed_product},
            )
        )
    if facts.conflicts:
        signals.append(
            VerdictSignal(
                "contested",
                f"{facts.conflicts} other creator(s) claimed this good after it was registered",
                0.3,
                {"n": facts.conflicts},
            )
        )
    if facts.revoked:
        signals.append(VerdictSignal("revoked", "its creator revoked it", 0.9, {}))
        return _decided(REVOKED, signals, facts)
    if facts.consumed:
        signals.append(VerdictSignal("consumed", "a final sale consumed it", 0.7, {}))
        return _decided(CONSUMED, signals, facts)
    if mismatch:
        return _decided(CONFLICT, signals, facts)
    if facts.anchor is None:
        signals.append(VerdictSignal("unanchored", "not yet anchored on chain", 0.1, {}))
        return _decided(PENDING_ANCHOR, signals, facts)
    return _decided(AUTHENTIC, signals, facts)


def _decided(verdict: str, signals: list[VerdictSignal], facts: GoodFacts) -> Decision:
    return Decision(verdict, signals, facts.market_risk, facts.market_signals)


__all__ = [
    "AUTHENTIC",
    "CODE_KEY_CACHE_TTL",
    "CONFLICT",
    "CONSUMED",
    "PENDING_ANCHOR",
    "REVOKED",
    "UNKNOWN",
    "AnchorFacts",
    "CodeKeyCache",
    "Decision",
    "GoodFacts",
    "GoodLookup",
    "VerdictSignal",
    "decide",
]
