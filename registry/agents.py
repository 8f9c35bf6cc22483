"""A platform's distributor tree (卡盟 sub-sites, agent tiers): its agents and their uplines.

An agent is a reference on its platform (an account of a sub-site or agent), kept only as the
keyed hash ``registry.parties.ReferenceKeys`` makes of it: the same hash an order names its
seller by, so the seller of an order is found in the tree without the reference ever being
stored. Each agent has at most one upline (its parent); a root has none.

Rules, checked under a per-platform lock (the ``rebate_trees`` row, taken first by every
change, so two changes racing are serial and cannot together close a cycle):

- no cycles: an agent cannot be put under itself or under one of its own downlines
  (``AgentCycle``, 409);
- bounded depth: no agent has more than ``MAX_DEPTH`` uplines, counting the downlines a move
  carries with it (``TreeTooDeep``, 409);
- every change of an upline is kept with its time (``rebate_agent_changes``), so the tree as
  it stood at any moment can be told.

A line pays an agent as its **payee**: ``"<platform>:<64 hex of the agent's keyed hash>"``
(at most 64 + 1 + 64 characters); the platform learns the hex of each of its agents from the
answers of ``set_uplines`` and maps it back to its own accounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Table, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from registry.errors import Conflict, InvalidInput
from registry.models import RebateAgent, RebateAgentChange, RebateTree
from registry.parties import check_platform_id
from registry.rebatesplit import MAX_LEVELS

agents_t: Table = RebateAgent.__table__  # type: ignore[attr-defined]
changes_t: Table = RebateAgentChange.__table__  # type: ignore[attr-defined]
trees_t: Table = RebateTree.__table__  # type: ignore[attr-defined]

#: Most uplines an agent may have: the most levels a rebate policy can pay.
MAX_DEPTH: Final = MAX_LEVELS
#: Most agents one request may place (they are applied in order, in one transaction).
MAX_AGENTS_PER_CHANGE: Final = 1000
#: Most agents one platform's tree may hold.
MAX_AGENTS: Final = 1_000_000


class AgentCycle(Conflict):
    """The move would put an agent under itself or one of its downlines (409)."""

    code = "agent-cycle"
    diagnostics = "An agent's upline cannot be the agent or one of its downlines."


class TreeTooDeep(Conflict):
    """The move would give some agent more uplines than the tree allows (409)."""

    code = "tree-too-deep"
    diagnostics = f"A distributor chain has at most {MAX_DEPTH} uplines above any agent."


def payee_of(platform: str, agent: bytes) -> str:
    """How a rebate line names an agent: ``<platform>:<hex of its keyed hash>``."""
    return f"{platform}:{agent.hex()}"


def parse_payee(payee: str) -> tuple[str, bytes]:
    """``(platform, agent hash)`` of a payee string, or ``InvalidInput``."""
    platform, _, digest = payee.partition(":")
    check_platform_id(platform)
    try:
        agent = bytes.fromhex(digest)
    except ValueError:
        agent = b""
    if len(agent) != 32 or digest != digest.lower():
        raise InvalidInput("a payee is '<platform>:<64 lower-case hex digits>'")
    return platform, agent


@dataclass(frozen=True, slots=True)
class AgentView:
    """One agent as the tree holds it now; ``depth`` is its number of uplines (None: not
    computed, in listings)."""

    platform: str
    agent: bytes
    upline: bytes | None
    depth: int | None
    created_at: int
    updated_at: int

    @property
    def payee(self) -> str:
        return payee_of(self.platform, self.agent)

    def as_dict(self) -> dict[str, object]:
        return {
            "payee": self.payee,
            "upline": None if self.upline is None else payee_of(self.platform, self.upline),
            "depth": self.depth,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def uplines(conn: Connection, platform: str, agent: bytes, most: int = MAX_DEPTH) -> list[bytes]:
    """The agent's uplines, nearest first, at most ``most`` (``[]`` for a root or a stranger).

    One indexed point read per level; the walk is bounded even if the table were corrupt.
    """
    c = agents_t.c
    chain: list[bytes] = []
    current = agent
    for _ in range(most):
        row = conn.execute(
            select(c.upline).where(c.platform == platform, c.agent == current)
        ).first()
        if row is None or row.upline is None:
            break
        current = bytes(row.upline)
        chain.append(current)
    return chain


def _subtree_height(conn: Connection, platform: str, agent: bytes) -> int:
    """How many levels of downlines hang below ``agent`` (0: none), up to ``MAX_DEPTH + 1``."""
    c = agents_t.c
    down = (
        select(c.agent.label("node"), literal(1).label("height"))
        .where(c.platform == platform, c.upline == agent)
        .cte("down", recursive=True)
    )
    down = down.union_all(
        select(c.agent, down.c.height + 1).where(
            c.platform == platform, c.upline == down.c.node, down.c.height <= MAX_DEPTH
        )
    )
    return int(conn.execute(select(func.coalesce(func.max(down.c.height), 0))).scalar_one())


def _lock_tree(conn: Connection, platform: str, now: int) -> None:
    """Take the platform's tree lock: an upsert of its row, held to the end of the
    transaction on PostgreSQL (on SQLite the write transaction is already exclusive)."""
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(trees_t)
    statement = insert.values(platform=platform, agents=0, updated_at=now)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["platform"], set_={"updated_at": statement.excluded.updated_at}
        )
    )


def _current(conn: Connection, platform: str, agent: bytes) -> tuple[bool, bytes | None]:
    c = agents_t.c
    row = conn.execute(select(c.upline).where(c.platform == platform, c.agent == agent)).first()
    if row is None:
        return False, None
    return True, None if row.upline is None else bytes(row.upline)


def _place(conn: Connection, platform: str, agent: bytes, upline: bytes | None, now: int) -> int:
    """Put ``agent`` under ``upline`` (None: a root); returns how many agents were new."""
    c = agents_t.c
    if upline is not None:
        if upline == agent:
            raise AgentCycle("an agent cannot be its own upline")
        above = uplines(conn, platform, upline, MAX_DEPTH + 1)
        if agent in above:
            raise AgentCycle("the new upline is one of the agent's own downlines")
        if len(above) + 1 + _subtree_height(conn, platform, agent) > MAX_DEPTH:
            raise TreeTooDeep(f"the move would give an agent more than {MAX_DEPTH} uplines")
    created = 0
    if upline is not None and not _current(conn, platform, upline)[0]:
        # An upline named before it was placed itself starts as a root.
        conn.execute(
            agents_t.insert().values(
                platform=platform, agent=upline, upline=None, created_at=now, updated_at=now
            )
        )
        conn.execute(
            changes_t.insert().values(
                platform=platform, agent=upline, previous_upline=None, upline=None, at=now
            )
        )
        created += 1
    exists, previous = _current(conn, platform, agent)
    if exists and previous == upline:
        return created
    if exists:
        conn.execute(
            agents_t.update()
            .where(c.platform == platform, c.agent == agent)
            .values(upline=upline, updated_at=now)
        )
    else:
        conn.execute(
            agents_t.insert().values(
                platform=platform, agent=agent, upline=upline, created_at=now, updated_at=now
            )
        )
        created += 1
    conn.execute(
        changes_t.insert().values(
            platform=platform, agent=agent, previous_upline=previous, upline=upline, at=now
        )
    )
    return created


def set_uplines(
    conn: Connection,
    platform: str,
    moves: Sequence[tuple[bytes, bytes | None]],
    *,
    now: int,
) -> list[AgentView]:
    """Place each ``(agent, upline)`` in order (a new agent is added; an upline not yet in
    the tree starts as a root), all or nothing; the agents as they now stand, in order."""
    check_platform_id(platform)
    if not 1 <= len(moves) <= MAX_AGENTS_PER_CHANGE:
        raise InvalidInput(f"place 1 to {MAX_AGENTS_PER_CHANGE} agents at a time")
    _lock_tree(conn, platform, now)
    count = int(
        conn.execute(select(trees_t.c.agents).where(trees_t.c.platform == platform)).scalar_one()
    )
    for agent, upline in moves:
        count += _place(conn, platform, agent, upline, now)
    if count > MAX_AGENTS:
        raise InvalidInput(f"a platform's tree holds at most {MAX_AGENTS:,} agents")
    conn.execute(trees_t.update().where(trees_t.c.platform == platform).values(agents=count))
    views = [agent_view(conn, platform, agent) for agent, _ in moves]
    return [view for view in views if view is not None]


def agent_view(conn: Connection, platform: str, agent: bytes) -> AgentView | None:
    c = agents_t.c
    row = conn.execute(
        select(c.upline, c.created_at, c.updated_at).where(c.platform == platform, c.agent == agent)
    ).first()
    if row is None:
        return None
    return AgentView(
        platform,
        agent,
        None if row.upline is None else bytes(row.upline),
        len(uplines(conn, platform, agent)),
        int(row.created_at),
        int(row.updated_at),
    )


def list_agents(
    conn: Connection, platform: str, *, after: bytes | None, limit: int
) -> list[AgentView]:
    """The platform's agents in hash order (a cursor page; depth not computed)."""
    c = agents_t.c
    query = select(c.agent, c.upline, c.created_at, c.updated_at).where(c.platform == platform)
    if after is not None:
        query = query.where(c.agent > after)
    rows = conn.execute(query.order_by(c.agent).limit(limit)).all()
    return [
        AgentView(
            platform,
            bytes(r.agent),
            None if r.upline is None else bytes(r.upline),
            None,
            int(r.created_at),
            int(r.updated_at),
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class AgentChange:
    agent: bytes
    previous_upline: bytes | None
    upline: bytes | None
    at: int


def agent_history(conn: Connection, platform: str, agent: bytes) -> list[AgentChange]:
    """Every upline change of the agent, oldest first."""
    c = changes_t.c
    rows = conn.execute(
        select(c.previous_upline, c.upline, c.at)
        .where(c.platform == platform, c.agent == agent)
        .order_by(c.id)
        .limit(10_000)
    ).all()
    return [
        AgentChange(
            agent,
            None if r.previous_upline is None else bytes(r.previous_upline),
            None if r.upline is None else bytes(r.upline),
            int(r.at),
        )
        for r in rows
    ]


__all__ = [
    "MAX_AGENTS",
    "MAX_AGENTS_PER_CHANGE",
    "MAX_DEPTH",
    "AgentChange",
    "AgentCycle",
    "AgentView",
    "TreeTooDeep",
    "agent_history",
    "agent_view",
    "agents_t",
    "list_agents",
    "parse_payee",
    "payee_of",
    "set_uplines",
    "uplines",
]
