"""Probe flags as the API persists them and the risk worker reads them (``probe_flags``):
a key or address that exhausted its failed-code-lookup budget (``api.ratelimit``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from readmodels.market import ProbeFlag
from registry.models import ProbeFlagRow

probe_flags_t: Table = ProbeFlagRow.__table__  # type: ignore[attr-defined]


def dialect_insert(conn: Connection, table: Table) -> Any:
    """INSERT with the dialect's ON CONFLICT (the same on SQLite and PostgreSQL)."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def read_probe_flags(conn: Connection, since: float) -> list[ProbeFlag]:
    c = probe_flags_t.c
    rows = conn.execute(select(probe_flags_t).where(c.last_at >= since).order_by(c.key))
    return [
        ProbeFlag(r.key, float(r.first_at), float(r.last_at), int(r.failed_probes), int(r.refused))
        for r in rows
    ]


def record_probe_flags(conn: Connection, flags: Iterable[ProbeFlag]) -> None:
    """Upsert the API's probe flags (each row the flag's latest counts)."""
    for flag in flags:
        values = {
            "key": flag.key,
            "first_at": flag.first_at,
            "last_at": flag.last_at,
            "failed_probes": flag.failed_probes,
            "refused": flag.refused,
        }
        statement = dialect_insert(conn, probe_flags_t).values(values)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["key"],
                set_={k: statement.excluded[k] for k in values if k not in ("key", "first_at")},
            )
        )


__all__ = ["dialect_insert", "probe_flags_t", "read_probe_flags", "record_probe_flags"]
