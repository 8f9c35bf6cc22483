"""Credit scores kept for verify answers (issue 18 item 1): refreshed off the hot path.

A verify answer carries its good's current holder's credit: the holding platform's score
and that seller's on it. Computing them is an aggregate over the platform's (or seller's)
facts, which ``POST /v1/verify`` (the hot path, ``bench/verify_bench.py``) must not run per
request. So the risk worker (``readmodels.riskworker``, a process of its own) recomputes
every platform's and seller's score in one grouped pass (``creditfacts.all_inputs``, what
``bench/credit_bench.py`` times) every ``REFRESH_EVERY`` seconds and writes the documents
into ``credit_platforms`` and ``credit_sellers``; the verify statement reads the holder's two
rows by primary key (``readmodels.authenticity``).

Only a changed score is rewritten (its inputs or number; not its ``as_of`` alone), so a row's
``as_of`` is the last refresh that changed it, and its inputs held at every refresh since.
Staleness bound: a score in an answer is at most ``REFRESH_EVERY`` seconds plus one risk
refresh and one credit pass behind the facts (``GET /v1/credit/...`` reads them live).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from registry.creditfacts import Subject, all_inputs, credit_document
from registry.db import read_transaction, retrying, write_transaction
from registry.models import CreditPlatformRow, CreditSellerRow

credit_platforms_t: Table = CreditPlatformRow.__table__  # type: ignore[attr-defined]
credit_sellers_t: Table = CreditSellerRow.__table__  # type: ignore[attr-defined]

#: Seconds between two credit passes (each reads every fact once: 2.8 s at 10^6 transfers).
REFRESH_EVERY: Final = 60
#: Rows per statement when writing.
_CHUNK: Final = 500

#: A stored row's key: (platform, None) for a platform, (platform, seller_ref) for a seller.
Key = tuple[str, bytes | None]


@dataclass(frozen=True)
class CreditRefreshReport:
    as_of: int
    subjects: int
    written: int
    deleted: int


def _key(subject: Subject) -> Key:
    return (subject[1], subject[2])


def _comparable(document: str | dict[str, Any]) -> dict[str, Any]:
    """A document without its ``as_of``: an unchanged score is not rewritten for the time."""
    value = json.loads(document) if isinstance(document, str) else dict(document)
    value.pop("as_of", None)
    return value


def _stored(conn: Connection) -> dict[Key, str]:
    p, s = credit_platforms_t.c, credit_sellers_t.c
    stored: dict[Key, str] = {
        (row.platform, None): row.document for row in conn.execute(select(p.platform, p.document))
    }
    for row in conn.execute(select(s.platform, s.seller_ref, s.document)):
        stored[(row.platform, bytes(row.seller_ref))] = row.document
    return stored


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for start in range(0, len(rows), _CHUNK):
        statement = dialect.insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=keys,
            set_={
                "document": statement.excluded.document,
                "written_at": statement.excluded.written_at,
            },
        )
        conn.execute(statement, rows[start : start + _CHUNK])


def refresh_credit_scores(engine: Engine, *, as_of: int, overdue_after: int) -> CreditRefreshReport:
    """Every platform's and seller's score as of ``as_of``, written where it changed; the
    rows of subjects with no fact left (none in practice: facts are kept) deleted."""
    with read_transaction(engine) as conn:
        every = all_inputs(conn, as_of=as_of, overdue_after=overdue_after)
    documents = {
        _key(subject): credit_document(subject, inputs, as_of=as_of, overdue_after=overdue_after)
        for subject, inputs in every.items()
    }

    def write() -> CreditRefreshReport:
        with write_transaction(engine) as conn:
            stored = _stored(conn)
            platforms: list[dict[str, Any]] = []
            sellers: list[dict[str, Any]] = []
            for (platform, seller_ref), document in documents.items():
                old = stored.get((platform, seller_ref))
                if old is not None and _comparable(old) == _comparable(document):
                    continue
                row = {
                    "platform": platform,
                    "document": json.dumps(document, separators=(",", ":"), sort_keys=True),
                    "written_at": as_of,
                }
                if seller_ref is None:
                    platforms.append(row)
                else:
                    sellers.append({**row, "seller_ref": seller_ref})
            _upsert(conn, credit_platforms_t, platforms, ["platform"])
            _upsert(conn, credit_sellers_t, sellers, ["platform", "seller_ref"])
            gone = [key for key in stored if key not in documents]
            gone_platforms = [platform for platform, ref in gone if ref is None]
            gone_sellers = [(platform, ref) for platform, ref in gone if ref is not None]
            if gone_platforms:
                conn.execute(
                    delete(credit_platforms_t).where(
                        credit_platforms_t.c.platform.in_(gone_platforms)
                    )
                )
            if gone_sellers:
                s = credit_sellers_t.c
                conn.execute(
                    delete(credit_sellers_t).where(
                        tuple_(s.platform, s.seller_ref).in_(gone_sellers)
                    )
                )
            return CreditRefreshReport(
                as_of, len(documents), len(platforms) + len(sellers), len(gone)
            )

    return retrying(write)


def read_platform_scores(conn: Connection) -> list[dict[str, Any]]:
    """Every platform's score as the last pass wrote it, by platform id (the auditor's
    table, ``GET /v1/credit/platforms``): a read of the kept rows, no aggregate."""
    p = credit_platforms_t.c
    rows = conn.execute(select(p.document).order_by(p.platform))
    return [json.loads(row.document) for row in rows]


class CreditRefresh:
    """Runs ``refresh_credit_scores`` when ``every`` seconds have passed since the last pass
    (the risk worker calls ``maybe_refresh`` at each of its own refreshes)."""

    def __init__(
        self,
        engine: Engine,
        *,
        overdue_after: int,
        every: int = REFRESH_EVERY,
    ) -> None:
        self.engine = engine
        self.overdue_after = overdue_after
        self.every = every
        self.last: int | None = None

    def maybe_refresh(self, now: int) -> CreditRefreshReport | None:
        if self.last is not None and now - self.last < self.every:
            return None
        report = refresh_credit_scores(self.engine, as_of=now, overdue_after=self.overdue_after)
        self.last = now
        return report


__all__ = [
    "REFRESH_EVERY",
    "CreditRefresh",
    "CreditRefreshReport",
    "credit_platforms_t",
    "credit_sellers_t",
    "read_platform_scores",
    "refresh_credit_scores",
]
