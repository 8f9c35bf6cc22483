"""Creators' distribution policies: who may sell a creator's goods first-hand.

The first holder of every good is its creator (DESIGN "Holders, transfers, royalties"), and a
transfer whose seller is the creator is reported by the platform that bought from it. Without
a policy any platform can report such a first sale, so whoever learns a code's fingerprint
could claim it before the creator's real wholesaler does (whose sale then meets the
double-sale 409). A creator closes that by naming its distributors: then only they may
report first sales (``NotADistributor``, 403, for anyone else; the attempt is kept as
evidence for the signals). Open distribution stays the default, so a creator who sells
through whoever asks needs to do nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from registry.distribution_policy import OPEN, Distribution, NotADistributor, parse_platforms
from registry.models import DistributionPolicy as DistributionPolicyRow

policies_t: Table = DistributionPolicyRow.__table__  # type: ignore[attr-defined]


def load_distribution(conn: Connection, creator: bytes) -> Distribution:
    row = conn.execute(select(policies_t).where(policies_t.c.creator == creator)).first()
    if row is None:
        return OPEN
    return Distribution(bool(row.restricted), frozenset(row.platforms.split()), int(row.updated_at))


def save_distribution(
    conn: Connection, creator: bytes, restricted: bool, platforms: Iterable[str], now: int
) -> Distribution:
    """Replace the creator's policy; the platforms are kept even while open (ready to
    restrict again)."""
    chosen = parse_platforms(platforms)
    values = {
        "creator": creator,
        "restricted": restricted,
        "platforms": " ".join(sorted(chosen)),
        "updated_at": now,
    }
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(policies_t)
    statement = insert.values(values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["creator"],
            set_={k: statement.excluded[k] for k in ("restricted", "platforms", "updated_at")},
        )
    )
    return Distribution(restricted, chosen, now)


def check_first_sale(conn: Connection, creator: bytes, platform: str, good: str) -> None:
    """Raise ``NotADistributor`` if the creator restricts first-hand sales and ``platform``
    is not one of its distributors."""
    if not load_distribution(conn, creator).allows(platform):
        # Whose list it is, never its contents: a platform learns only that it is not on it.
        raise NotADistributor(
            f"the creator of {good} has not named platform {platform} among the distributors "
            "allowed to sell its goods first-hand"
        )


__all__ = ["check_first_sale", "load_distribution", "policies_t", "save_distribution"]
