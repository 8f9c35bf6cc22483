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

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from registry.errors import InvalidInput, TracemarkError
from registry.models import DistributionPolicy as DistributionPolicyRow

policies_t: Table = DistributionPolicyRow.__table__  # type: ignore[attr-defined]

#: Most distributors one creator may name.
MAX_DISTRIBUTORS: Final = 200
_PLATFORM_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")


class NotADistributor(TracemarkError):
    """The creator restricts first-hand sales to named platforms, and this is not one (403)."""

    code = "not-a-distributor"


@dataclass(frozen=True)
class Distribution:
    """A creator's policy: open (anyone may sell first-hand) or restricted to ``platforms``."""

    restricted: bool = False
    platforms: frozenset[str] = frozenset()
    updated_at: int | None = None

    def allows(self, platform: str) -> bool:
        return not self.restricted or platform in self.platforms

    def as_dict(self) -> dict[str, Any]:
        return {
            "restricted": self.restricted,
            "platforms": sorted(self.platforms),
            "updated_at": self.updated_at,
        }


OPEN: Final = Distribution()


def parse_platforms(platforms: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(platforms)
    if len(chosen) > MAX_DISTRIBUTORS:
        raise InvalidInput(f"a creator may name at most {MAX_DISTRIBUTORS} distributors")
    for platform in chosen:
        if not isinstance(platform, str) or _PLATFORM_RE.fullmatch(platform) is None:
            raise InvalidInput(
                "a platform id is 1-64 lower-case letters, digits and dashes (not at either end)"
            )
    return chosen


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


__all__ = [
    "MAX_DISTRIBUTORS",
    "OPEN",
    "Distribution",
    "NotADistributor",
    "check_first_sale",
    "load_distribution",
    "parse_platforms",
    "save_distribution",
]
