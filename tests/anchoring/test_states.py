"""Anchor states: the named sets, the transitions table, and that nothing moves an anchor
outside it or spells a state the enum does not have."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import text

from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.states import (
    ANCHORED,
    ENDED,
    NO_STATE,
    NOT_YET_FINAL,
    NOT_YET_MINED,
    TRANSITIONS,
    AnchorState,
    IllegalTransition,
    check_transition,
)
from anchoring.store import AnchorStore
from registry.db import read_transaction, write_transaction
from registry.service import Registry
from tests.anchoring.test_worker import POLICY, _registered, _worker
from tests.conftest import Clock

ROOT = Path(__file__).resolve().parents[2]

#: Where product code compares or stores a state.
PACKAGES = ("registry", "anchoring", "verifier", "readmodels", "api", "scripts")

#: Words compared with something called ``state`` that are not anchor states, and why.
OTHER_STATES = {
    # A bulk registration job's state (``api/jobs.py``, read back by the typed client).
    "queued": "job",
    "running": "job",
    "done": "job",
    "failed": "job",
    # The verify answer's word for a mined anchor not yet final (a wire value).
    "unconfirmed": "verify answer",
}

#: ``state = 'x'`` or ``state IN ('x', 'y')`` in SQL text (``{state}``: a formatted column).
_SQL_STATE = re.compile(r"state\}?\s*(?:(?:=|<>|!=)\s*'\w+'|IN\s*\([^)]*\))", re.IGNORECASE)


def test_the_values_are_the_stored_strings() -> None:
    # Stored in anchors.state and anchor_events, shown on the wire: they never change.
    assert [s.value for s in AnchorState] == [
        "sealed",
        "signed",
        "broadcast",
        "mined",
        "final",
        "reorged",
        "reverted",
        "fatal",
    ]


def test_the_named_sets_say_what_they_hold() -> None:
    everything = set(AnchorState)
    assert NOT_YET_FINAL | {AnchorState.FINAL} | ENDED == everything
    assert not NOT_YET_FINAL & ENDED
    assert NOT_YET_FINAL - {AnchorState.MINED} == NOT_YET_MINED
    assert {AnchorState.MINED, AnchorState.FINAL} == ANCHORED
    # Ended is exactly where nothing leads on; every other state can still reach final.
    assert {s for s in AnchorState if not TRANSITIONS[s]} == ENDED
    assert set(TRANSITIONS) == everything | {None}
    for state in NOT_YET_FINAL:
        assert _reaches(state, AnchorState.FINAL), state
    # Every state can be reached from a new row.
    assert {s for s in AnchorState if _reaches(None, s)} == everything


def _reaches(start: AnchorState | None, goal: AnchorState) -> bool:
    seen: set[AnchorState | None] = set()
    todo = [start]
    while todo:
        state = todo.pop()
        if state in seen:
            continue
        seen.add(state)
        if goal in TRANSITIONS[state]:
            return True
        todo += TRANSITIONS[state]
    return False


def test_the_states_module_is_pure() -> None:
    # The CLI reads the states on every start: they must not load the chain or the database.
    program = (
        "import json, sys, anchoring.states\n"
        "print(json.dumps(sorted(m for m in ['web3', 'eth_account', 'sqlalchemy', 'sqlmodel']"
        " if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], check=True, capture_output=True, text=True, cwd=ROOT
    )
    assert json.loads(result.stdout) == []


def test_check_transition_refuses_what_the_table_does_not_list() -> None:
    check_transition(AnchorState.SEALED, AnchorState.SIGNED)
    check_transition(None, AnchorState.SEALED)
    with pytest.raises(IllegalTransition, match="from sealed to final"):
        check_transition(AnchorState.SEALED, AnchorState.FINAL)
    with pytest.raises(IllegalTransition, match="from - to mined"):
        check_transition(None, AnchorState.MINED)
    for ended in ENDED:
        with pytest.raises(IllegalTransition):
            check_transition(ended, AnchorState.SEALED)


def test_the_store_refuses_an_illegal_move_and_writes_nothing(registry: Registry) -> None:
    store = AnchorStore(registry.clock)
    with write_transaction(registry.engine) as conn:
        store.add(
            conn,
            tree_size=3,
            root=b"\x01" * 32,
            previous_size=0,
            state=AnchorState.SEALED,
            detail="head 3",
        )
    with read_transaction(registry.engine) as conn:
        anchor = store.in_flight(conn)
    assert anchor is not None and anchor.state == AnchorState.SEALED
    with pytest.raises(IllegalTransition), write_transaction(registry.engine) as conn:
        store.move(conn, anchor, AnchorState.FINAL, "skipping the chain")
    assert _anchor_states(registry) == ["sealed"]
    assert _events(registry) == [(NO_STATE, "sealed")]
    with write_transaction(registry.engine) as conn:
        store.move(conn, anchor, AnchorState.SIGNED, "nonce 0", nonce=0)
    assert _anchor_states(registry) == ["signed"]
    assert _events(registry) == [(NO_STATE, "sealed"), ("sealed", "signed")]


@pytest.mark.slow
def test_the_worker_moves_anchors_only_along_allowed_transitions(
    registry: Registry, chain: Chain, devchain: DevChain, operator: LocalAccount, clock: Clock
) -> None:
    worker = _worker(registry, chain, operator)
    _registered(registry, clock, 3)
    worker.run_until_idle()
    devchain.rpc("anvil_mine", hex(POLICY.confirmations))
    worker.run_until_idle()
    # A reorg past finality (THREATS 21): the final anchor is reorged and the head anchored
    # again, through every state once more.
    snapshot = devchain.rpc("evm_snapshot")
    _registered(registry, clock, 2)
    worker.run_until_idle()
    devchain.rpc("anvil_mine", hex(POLICY.confirmations))
    worker.run_until_idle()
    devchain.rpc("evm_revert", snapshot)
    worker.run_until_idle()
    devchain.rpc("anvil_mine", hex(POLICY.confirmations))
    worker.run_until_idle()
    events = _events(registry)
    moves = {(a, b) for a, b in events if a != b}
    assert ("final", "reorged") in moves  # the path above did go through a reorg
    for before, after in moves:
        start = None if before == NO_STATE else AnchorState(before)
        assert AnchorState(after) in TRANSITIONS[start], (before, after)


def _anchor_states(registry: Registry) -> list[str]:
    with registry.engine.connect() as conn:
        return [s for (s,) in conn.execute(text("SELECT state FROM anchors ORDER BY id"))]


def _events(registry: Registry) -> list[tuple[str, str]]:
    with registry.engine.connect() as conn:
        rows = conn.execute(text("SELECT from_state, to_state FROM anchor_events ORDER BY id"))
        return [(a, b) for a, b in rows]


# -- every state literal in the code is a member ---------------------------------------------


def _is_state(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "state" or node.attr.endswith("_state")
    if isinstance(node, ast.Name):
        return node.id == "state" or node.id.endswith("_state")
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "state"
    return False


def _strings(node: ast.AST) -> Iterator[ast.Constant]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        for element in node.elts:
            yield from _strings(element)
    elif isinstance(node, ast.IfExp):
        yield from _strings(node.body)
        yield from _strings(node.orelse)


def _state_literals(source: str) -> Iterator[tuple[int, str]]:
    """Strings compared with, tested against, or stored as something called ``state``."""
    for node in ast.walk(ast.parse(source)):
        found: list[ast.Constant] = []
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_state(side) for side in sides):
                found += [c for side in sides for c in _strings(side)]
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in ("in_", "notin_") and _is_state(f.value):
                found += [c for arg in node.args for c in _strings(arg)]
            # ``str.format(state=...)`` fills a column name into SQL text, not a state.
            keywords = [] if isinstance(f, ast.Attribute) and f.attr == "format" else node.keywords
            for keyword in keywords:
                if keyword.arg is not None and (
                    keyword.arg == "state" or keyword.arg.endswith("_state")
                ):
                    found += list(_strings(keyword.value))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "state":
                    found += list(_strings(value))
        yield from ((c.lineno, c.value) for c in found)
    for match in _SQL_STATE.finditer(source):
        line = source.count("\n", 0, match.start()) + 1
        yield from ((line, word) for word in re.findall(r"'(\w+)'", match.group(0)))


def test_the_scan_finds_a_misspelt_state() -> None:
    source = (
        "if anchor.state == 'minde': pass\n"
        "q = select(t).where(t.c.state.in_(('sealed', 'braodcast')))\n"
        "insert(t).values(to_state='finale')\n"
        "row = {'state': 'reorg'}\n"
        "SQL = \"SELECT id FROM anchors WHERE state IN ('mined', 'fianl')\"\n"
    )
    found = {word for _, word in _state_literals(source)}
    assert found - {s.value for s in AnchorState} == {
        "minde",
        "braodcast",
        "finale",
        "reorg",
        "fianl",
    }


def test_every_state_literal_in_the_code_is_a_member() -> None:
    allowed = {s.value for s in AnchorState} | {NO_STATE} | set(OTHER_STATES)
    strays = [
        f"{path.relative_to(ROOT)}:{line}: {word!r}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, word in _state_literals(path.read_text())
        if word not in allowed
    ]
    assert strays == []
