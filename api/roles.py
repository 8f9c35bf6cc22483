"""The roles ``tracemark serve --role`` runs: the API replicas and the singleton roles.

``all`` (the default, the embedded ``make run``) is every role in one process. Apart (on
PostgreSQL), ``api`` is stateless and runs on any number of machines; each singleton role
runs wherever it is started, but works only in the process that holds its lease
(``registry.lease``), the others standing by.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from registry.errors import InvalidInput
from registry.lease import SINGLETON_ROLES

#: Every role, in the order ``serve`` starts them; ``all`` names them together.
ROLES: Final = ("api", *SINGLETON_ROLES)


@dataclass(frozen=True)
class Roles:
    """The roles of one ``serve`` process."""

    names: tuple[str, ...]

    def __contains__(self, role: object) -> bool:
        return role in self.names

    @property
    def apart(self) -> bool:
        """Whether some role runs in another process (needs the shared database's leases)."""
        return set(self.names) != set(ROLES)

    @property
    def singletons(self) -> tuple[str, ...]:
        return tuple(name for name in self.names if name in SINGLETON_ROLES)

    @property
    def need_chain(self) -> bool:
        """The API answers with the chain's state, the anchoring worker writes to it."""
        return "api" in self.names or "anchoring" in self.names


def parse_roles(values: Iterable[str] | None) -> Roles:
    """``--role`` values (repeated, or comma lists) as ``Roles``; none is ``all``."""
    asked: set[str] = set()
    for value in values or ("all",):
        for part in value.split(","):
            name = part.strip().lower()
            if name == "all":
                asked.update(ROLES)
            elif name in ROLES:
                asked.add(name)
            else:
                raise InvalidInput(
                    f"unknown role {part.strip()!r}: give api, {', '.join(SINGLETON_ROLES)} or all"
                )
    return Roles(tuple(name for name in ROLES if name in asked))


__all__ = ["ROLES", "Roles", "parse_roles"]
