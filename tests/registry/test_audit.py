"""`Registry.check_log` (THREATS 10): a rebuilt log must match its tiles and signed heads, and
any tampering with entries, tiles or heads is reported."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import Engine, text

from registry.service import Registry
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration


@pytest.fixture
def filled(registry: Registry, make_creator: CreatorFactory, clock: Clock) -> Registry:
    creator = make_creator()
    for i in range(300):
        registry.register(registration(creator, clock()))
        if i % 50 == 49:
            clock.advance(1)
            registry.sequence()
    return registry


def test_an_intact_log_checks_out(filled: Registry) -> None:
    report = filled.check_log()
    assert report.problems == []
    assert (report.tree_size, report.heads_checked) == (300, 6)


@pytest.mark.parametrize(
    ("tamper", "expect"),
    [
        ("UPDATE entries SET payload_hash = :x WHERE leaf_index = 17", "signed root differs"),
        (
            "UPDATE tree_tiles SET hashes = :tile WHERE tile_level = 0 AND tile_index = 0",
            "tiles' root differs",
        ),
        ("UPDATE tree_heads SET signature = :sig WHERE tree_size = 100", "not the registry"),
        ("DELETE FROM entries WHERE leaf_index = 42", "leaf index 42 is missing"),
    ],
)
def test_tampering_is_reported(filled: Registry, engine: Engine, tamper: str, expect: str) -> None:
    with engine.begin() as conn:
        other_signature = conn.execute(
            text("SELECT signature FROM tree_heads WHERE tree_size = 50")
        ).scalar_one()
        conn.execute(
            text(tamper),
            {"x": os.urandom(32), "tile": os.urandom(510 * 32), "sig": other_signature},
        )
    problems = filled.check_log().problems
    assert any(expect in problem for problem in problems), problems
