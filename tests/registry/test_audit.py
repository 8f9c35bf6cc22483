"""`Registry.check_log` (THREATS 10): a rebuilt log must match its tiles and signed heads and
its state map must replay to every state commitment (issue 14), and any tampering with
entries, tiles, heads or commitments is reported."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import Engine, text

from registry.creator import sign_revocation
from registry.edges import to_hex
from registry.eip712 import DEV_DOMAIN
from registry.errors import LogCorrupt
from registry.fingerprints import GoodType
from registry.payloads import StateCommitmentPayload
from registry.service import Registry
from registry.statemapaudit import MapAudit, MapAuditor, audit_range
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration


@pytest.fixture
def filled(registry: Registry, make_creator: CreatorFactory, clock: Clock) -> Registry:
    """Six heads of 50 registrations each (one of them revoked in the fourth), every head
    ending with its state commitment."""
    creator = make_creator()
    fingerprints = []
    for i in range(300):
        fingerprints.append(os.urandom(32))
        registry.register(registration(creator, clock(), fingerprint=fingerprints[-1]))
        if i == 160:
            revocation = sign_revocation(
                creator,
                DEV_DOMAIN,
                good_type=GoodType.FILE,
                fingerprint=fingerprints[7],
                reason="leaked",
                now=clock(),
            )
            registry.revoke(revocation)
        if i % 50 == 49:
            clock.advance(1)
            registry.sequence()
    return registry


def _commitments(engine: Engine) -> list[int]:
    """The leaf indices of the STATE_COMMITMENT entries, in log order."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT leaf_index FROM entries WHERE kind = 7 ORDER BY leaf_index")
        )
        return [int(leaf_index) for (leaf_index,) in rows]


def test_an_intact_log_checks_out(filled: Registry, engine: Engine) -> None:
    report = filled.check_log()
    assert report.problems == []
    # 300 registrations, a revocation and a commitment at the end of each of 6 heads.
    assert (report.tree_size, report.heads_checked, report.commitments_checked) == (307, 6, 6)
    assert [leaf_index + 1 for leaf_index in _commitments(engine)] == [
        51,
        102,
        153,
        205,
        256,
        307,
    ]


@pytest.mark.parametrize(
    ("tamper", "expect"),
    [
        ("UPDATE entries SET payload_hash = :x WHERE leaf_index = 17", "signed root differs"),
        (
            "UPDATE tree_tiles SET hashes = :tile WHERE tile_level = 0 AND tile_index = 0",
            "tiles' root differs",
        ),
        ("UPDATE tree_heads SET signature = :sig WHERE tree_size = 102", "not the registry"),
        ("DELETE FROM entries WHERE leaf_index = 42", "leaf index 42 is missing"),
    ],
)
def test_tampering_is_reported(filled: Registry, engine: Engine, tamper: str, expect: str) -> None:
    with engine.begin() as conn:
        other_signature = conn.execute(
            text("SELECT signature FROM tree_heads WHERE tree_size = 51")
        ).scalar_one()
        conn.execute(
            text(tamper),
            {"x": os.urandom(32), "tile": os.urandom(510 * 32), "sig": other_signature},
        )
    problems = filled.check_log().problems
    assert any(expect in problem for problem in problems), problems


# -- the state map (issue 14): commitments replayed against their entries ---------------------


def _commitment_record(engine: Engine, leaf_index: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT record_id FROM entries WHERE leaf_index = :i"), {"i": leaf_index}
            ).scalar_one()
        )


def _map_problems(problems: list[str]) -> list[str]:
    return [p for p in problems if p.startswith("state commitment at leaf")]


@pytest.mark.parametrize("with_payload", [False, True], ids=["leaf", "leaf-and-payload"])
def test_a_changed_commitment_root_is_reported_naming_its_leaf(
    filled: Registry, engine: Engine, with_payload: bool
) -> None:
    second = _commitments(engine)[1]
    forged = os.urandom(32)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE entries SET fingerprint = :root WHERE leaf_index = :i AND kind = 7"),
            {"root": forged, "i": second},
        )
        if with_payload:
            # The payload re-made to agree with the forged leaf: only the replay disagrees.
            payload = StateCommitmentPayload(map_root=forged, covers=second)
            digest = {"payload": payload.to_json().decode(), "hash": payload.payload_hash()}
            conn.execute(
                text(
                    "UPDATE signed_records SET payload = :payload, payload_hash = :hash "
                    "WHERE id = :id"
                ),
                {**digest, "id": _commitment_record(engine, second)},
            )
            conn.execute(
                text("UPDATE entries SET payload_hash = :hash WHERE leaf_index = :i"),
                {"hash": digest["hash"], "i": second},
            )
    report = filled.check_log()
    expect = "committed map root" if with_payload else "its payload's map root"
    [problem] = _map_problems(report.problems)
    assert problem.startswith(f"state commitment at leaf {second}: {expect}")
    assert to_hex(forged) in problem
    assert report.commitments_checked == 6
    assert f"head {second + 1}: signed root differs from the entries" in report.problems


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE entries SET payload_hash = :x WHERE leaf_index = 17",
        "UPDATE entries SET fingerprint = :x WHERE leaf_index = 17",
    ],
)
def test_a_good_entry_altered_under_later_commitments_is_caught(
    filled: Registry, engine: Engine, tamper: str
) -> None:
    with engine.begin() as conn:
        conn.execute(text(tamper), {"x": os.urandom(32)})
    problems = _map_problems(filled.check_log().problems)
    # Every commitment from the first after leaf 17 disagrees with the entries.
    assert [p.split(":")[0] for p in problems] == [
        f"state commitment at leaf {leaf_index}" for leaf_index in _commitments(engine)
    ]
    assert all("committed map root" in p for p in problems)


def test_a_good_entry_deleted_and_the_log_renumbered_is_caught(
    filled: Registry, engine: Engine
) -> None:
    # Leaf 42 deleted and every later leaf moved down one, so that step 1 sees no gap.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM entries WHERE leaf_index = 42"))
        conn.execute(text("UPDATE entries SET leaf_index = -leaf_index WHERE leaf_index > 42"))
        conn.execute(text("UPDATE entries SET leaf_index = -leaf_index - 1 WHERE leaf_index < 0"))
    problems = filled.check_log().problems
    assert "state commitment at leaf 49: its payload covers 50, not its own leaf index" in problems


def test_a_head_that_does_not_end_with_a_commitment_is_reported(
    filled: Registry, engine: Engine
) -> None:
    first, second = _commitments(engine)[:2]
    with engine.begin() as conn:  # the commitment turned into another subject kind's leaf
        conn.execute(text("UPDATE entries SET kind = 5 WHERE leaf_index = :i"), {"i": second})
    problems = filled.check_log().problems
    assert (
        f"head {second + 1}: its last leaf is not a state commitment (leaf {first} is)" in problems
    )


@pytest.mark.parametrize(
    ("payload", "expect"),
    [
        ("not json", "its stored payload is refused (a payload is not JSON)"),
        (
            '{"covers":0,"map":"tracemark-statemap/v1","map_root":"0x' + "00" * 32 + '"}',
            "its payload does not hash to the leaf's payload hash",
        ),
    ],
)
def test_a_stored_payload_that_disagrees_is_reported(
    filled: Registry, engine: Engine, payload: str, expect: str
) -> None:
    third = _commitments(engine)[2]
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE signed_records SET payload = :payload WHERE id = :id"),
            {"payload": payload, "id": _commitment_record(engine, third)},
        )
    problems = filled.check_log().problems
    assert problems == [f"state commitment at leaf {third}: {expect}"]


def test_a_monitor_checks_a_range_from_the_map_it_holds(filled: Registry, engine: Engine) -> None:
    # What a monitor does with the registry's read API: the leaves and commitments of a range.
    latest = filled.latest_tree_head()
    assert latest is not None
    head_a, head_b = 102, latest.tree_size
    leaves = [(i, filled.entry_at(i).leaf_data()) for i in range(head_b)]
    payloads = {}
    for size in (head_a, 153, 205, 256, head_b):
        found = filled.state_commitment(size)
        assert found is not None
        payloads[size - 1] = found[1]
    first = MapAuditor()
    audit_range(first, leaves[:head_a], head_a)
    held, root_a = first.snapshot(), payloads[head_a - 1].map_root

    result = audit_range(
        MapAuditor.resume(held, head_a, root_a),
        leaves[head_a:],
        head_b,
        payloads=payloads,
    )
    assert result == MapAudit(head_a, head_b, 4, payloads[head_b - 1].map_root, True)

    # The revocation (leaf 164, between the heads) dropped, the rest renumbered.
    assert filled.entry_at(164).kind.name == "REVOKE"
    dropped = [(i, leaf) for i, (_, leaf) in enumerate(leaves[:164] + leaves[165:])]
    with pytest.raises(LogCorrupt, match="state commitment at leaf 203: its payload covers 204"):
        audit_range(
            MapAuditor.resume(held, head_a, root_a),
            dropped[head_a:],
            head_b - 1,
            payloads={(i - 1 if i > 164 else i): p for i, p in payloads.items()},
        )
