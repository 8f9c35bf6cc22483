"""A creator's distribution policy: who may sell its goods first-hand (pure, no database)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from registry.errors import InvalidInput, TracemarkError
from registry.parties import is_platform_id

#: Most distributors one creator may name.
MAX_DISTRIBUTORS: Final = 200


class NotADistributor(TracemarkError):
    """The creator restricts first-hand sales to named platforms, and this is not one (403)."""

    code = "not-a-distributor"
    http_status = 403
    diagnostics = "Only the creator's named distributors sell first-hand: ask the creator."


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
        if not is_platform_id(platform):
            raise InvalidInput(
                "a platform id is 1-64 lower-case letters, digits and dashes (not at either end)"
            )
    return chosen


__all__ = ["MAX_DISTRIBUTORS", "OPEN", "Distribution", "NotADistributor", "parse_platforms"]
