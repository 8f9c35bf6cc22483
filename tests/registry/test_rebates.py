"""Distributor trees and rebate policies on SQLite and PostgreSQL (registry.agents/rebates)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from registry.agents import (
    MAX_DEPTH,
    AgentCycle,
    TreeTooDeep,
    agent_history,
    agents_t,
    changes_t,
    parse_payee,
    payee_of,
    set_uplines,
    uplines,
)
from registry.creator import CreatorKeys
from registry.db import write_transaction
from registry.errors import UnknownProduct
from registry.fingerprints import GoodType
from registry.rebates import (
    CREATOR_SETTER,
    RebatePart,
    applicable_levels,
    good_product,
    platform_setter,
    remove_policy,
    set_policy,
    upline_rebates,
)
from registry.rebatesplit import InvalidRebatePolicy, RebateRoundsToZero
from registry.service import Registry
from tests.conftest import Clock
from tests.registry.orderhelpers import racing_registries, register_code
from tests.registry.test_concurrency import race

PRODUCT = "30-day-card"


def ref(registry: Registry, name: str, platform: str = "cardhub") -> bytes:
    return registry.reference_hash(platform, name)


def place(registry: Registry, moves: list[tuple[str, str | None]], platform: str = "cardhub"):
    with write_transaction(registry.engine) as conn:
        return set_uplines(
            conn,
            platform,
            [
                (ref(registry, a, platform), None if u is None else ref(registry, u, platform))
                for a, u in moves
            ],
            now=registry.clock(),
        )


def tree_rows(engine: Engine) -> tuple[object, ...]:
    with engine.connect() as conn:
        return (
            sorted(tuple(r) for r in conn.execute(select(agents_t)).all()),
            conn.execute(select(func.count()).select_from(changes_t)).scalar_one(),
        )


@pytest.fixture
def good(registry: Registry, creator: CreatorKeys, clock: Clock) -> bytes:
    return register_code(registry, creator, clock, product=PRODUCT)


def creator_bytes(creator: CreatorKeys) -> bytes:
    return bytes.fromhex(creator.account.address[2:])


def rebates(
    registry: Registry,
    creator: CreatorKeys,
    good: bytes,
    seller: str | None,
    price: int,
    platform: str = "cardhub",
) -> list[RebatePart]:
    with registry.engine.connect() as conn:
        return upline_rebates(
            conn,
            creator=creator_bytes(creator),
            good_type=int(GoodType.CODE),
            fingerprint=good,
            platform=platform,
            seller_ref=None if seller is None else ref(registry, seller, platform),
            price=price,
            currency="CNY",
        )


def set_levels(
    registry: Registry, creator: CreatorKeys, setter: str, levels: object, product: str = PRODUCT
) -> None:
    with write_transaction(registry.engine) as conn:
        set_policy(
            conn,
            creator=creator_bytes(creator),
            product=product,
            setter=setter,
            levels=levels,
            now=registry.clock(),
        )


def test_a_chain_is_placed_read_and_its_history_kept(registry: Registry, clock: Clock) -> None:
    views = place(registry, [("site-a", None), ("site-b", "site-a"), ("shop-c", "site-b")])
    assert [v.depth for v in views] == [0, 1, 2]
    assert views[2].payee == "cardhub:" + ref(registry, "shop-c").hex()
    assert parse_payee(views[2].payee) == ("cardhub", ref(registry, "shop-c"))
    with registry.engine.connect() as conn:
        assert uplines(conn, "cardhub", ref(registry, "shop-c")) == [
            ref(registry, "site-b"),
            ref(registry, "site-a"),
        ]
        assert uplines(conn, "cardhub", ref(registry, "shop-c"), 1) == [ref(registry, "site-b")]
        # Another platform's tree is another tree: the same names hash apart.
        assert uplines(conn, "other", ref(registry, "shop-c")) == []
    clock.advance(60)
    place(registry, [("shop-c", "site-a")])  # moved up
    place(registry, [("shop-c", "site-a")])  # unchanged: no new history row
    with registry.engine.connect() as conn:
        history = agent_history(conn, "cardhub", ref(registry, "shop-c"))
    assert [(h.previous_upline, h.upline, h.at) for h in history] == [
        (None, ref(registry, "site-b"), clock() - 60),
        (ref(registry, "site-b"), ref(registry, "site-a"), clock()),
    ]
    # No reference is stored in clear anywhere in the tree.
    with registry.engine.connect() as conn:
        dump = repr(conn.execute(select(agents_t)).all()) + repr(
            conn.execute(select(changes_t)).all()
        )
    assert "shop-c" not in dump and b"shop-c".hex() not in dump


def test_an_upline_named_first_starts_as_a_root(registry: Registry) -> None:
    views = place(registry, [("shop", "boss")])
    assert views[0].depth == 1
    with registry.engine.connect() as conn:
        assert uplines(conn, "cardhub", ref(registry, "boss")) == []


def test_cycles_are_refused_and_change_nothing(registry: Registry) -> None:
    place(registry, [("a", None), ("b", "a"), ("c", "b")])
    before = tree_rows(registry.engine)
    for moves in ([("a", "a")], [("a", "c")], [("a", "b")], [("d", "c"), ("a", "d")]):
        with pytest.raises(AgentCycle) as caught:
            place(registry, moves)  # type: ignore[arg-type]
        assert caught.value.http_status == 409
        assert tree_rows(registry.engine) == before


def test_depth_is_bounded_counting_the_downlines_a_move_carries(registry: Registry) -> None:
    chain = [(f"n{i}", None if i == 0 else f"n{i - 1}") for i in range(MAX_DEPTH + 1)]
    views = place(registry, chain)  # n16 has 16 uplines: the most
    assert views[-1].depth == MAX_DEPTH
    before = tree_rows(registry.engine)
    with pytest.raises(TreeTooDeep):
        place(registry, [("n17", f"n{MAX_DEPTH}")])
    assert tree_rows(registry.engine) == before
    # A root with one downline cannot go under n15 (the downline would have 17 uplines) ...
    place(registry, [("x", None), ("y", "x")])
    before = tree_rows(registry.engine)
    with pytest.raises(TreeTooDeep):
        place(registry, [("x", f"n{MAX_DEPTH - 1}")])
    assert tree_rows(registry.engine) == before
    # ... but under n14 it fits.
    assert [v.depth for v in place(registry, [("x", f"n{MAX_DEPTH - 2}")])] == [MAX_DEPTH - 1]


def test_the_creators_policy_wins_over_the_platforms(
    registry: Registry, creator: CreatorKeys, good: bytes
) -> None:
    place(registry, [("top", None), ("mid", "top"), ("shop", "mid")])
    assert rebates(registry, creator, good, "shop", 10_000) == []  # no policy yet
    set_levels(registry, creator, platform_setter("cardhub"), [300, 100])
    top, mid = payee_of("cardhub", ref(registry, "top")), payee_of("cardhub", ref(registry, "mid"))
    assert rebates(registry, creator, good, "shop", 10_000) == [
        RebatePart(1, mid, 300, 300),
        RebatePart(2, top, 100, 100),
    ]
    set_levels(registry, creator, CREATOR_SETTER, [500])
    assert rebates(registry, creator, good, "shop", 10_000) == [RebatePart(1, mid, 500, 500)]
    with registry.engine.connect() as conn:
        product = good_product(conn, creator_bytes(creator), int(GoodType.CODE), good)
        assert product is not None
        assert applicable_levels(conn, product=product, platform="cardhub") == ("creator", (500,))
        # Another platform's own policy never applies on cardhub, the creator's applies there.
        assert applicable_levels(conn, product=product, platform="other") == ("creator", (500,))
    with write_transaction(registry.engine) as conn:
        assert remove_policy(
            conn, creator=creator_bytes(creator), product=PRODUCT, setter=CREATOR_SETTER
        )
    assert [p.bps for p in rebates(registry, creator, good, "shop", 10_000)] == [300, 100]


def test_no_rebates_when_nothing_applies(
    registry: Registry, creator: CreatorKeys, good: bytes
) -> None:
    place(registry, [("top", None), ("shop", "top")])
    set_levels(registry, creator, CREATOR_SETTER, [300, 200, 100])
    assert rebates(registry, creator, good, None, 10_000) == []  # the creator sells
    assert rebates(registry, creator, good, "top", 10_000) == []  # a root: no upline
    assert rebates(registry, creator, good, "stranger", 10_000) == []  # not in the tree
    assert rebates(registry, creator, good, "shop", 0) == []  # nothing to share
    assert rebates(registry, creator, good, "shop", 10_000, platform="other") == []
    # A chain shorter than the policy: only the levels with an agent are paid.
    assert [(p.level, p.amount) for p in rebates(registry, creator, good, "shop", 10_000)] == [
        (1, 300)
    ]


def test_a_part_rounding_to_zero_refuses_the_policy(
    registry: Registry, creator: CreatorKeys, good: bytes
) -> None:
    place(registry, [("top", None), ("mid", "top"), ("shop", "mid")])
    set_levels(registry, creator, CREATOR_SETTER, [300, 1])
    with pytest.raises(RebateRoundsToZero) as caught:
        rebates(registry, creator, good, "shop", 100)
    assert caught.value.http_status == 422
    assert [p.amount for p in rebates(registry, creator, good, "shop", 10_000)] == [300, 1]


def test_bad_policies_and_unknown_products_are_refused(
    registry: Registry, creator: CreatorKeys, good: bytes
) -> None:
    for levels in ([], [0], [6_000, 5_000], [1] * 17, "300"):
        with pytest.raises(InvalidRebatePolicy):
            set_levels(registry, creator, CREATOR_SETTER, levels)
    with pytest.raises(UnknownProduct):
        set_levels(registry, creator, CREATOR_SETTER, [100], product="no-such-card")


def test_two_moves_racing_to_close_a_cycle_never_both_land(
    db_url: str, registry: Registry, clock: Clock
) -> None:
    """a under b and b under a, at once from two registries on their own engines: the tree's
    lock makes them serial, so the second meets the first's move and is a cycle (3 rounds)."""
    racers = racing_registries(db_url, registry, clock, 2)
    try:
        for round_ in range(3):
            a, b = f"a{round_}", f"b{round_}"
            place(registry, [(a, None), (b, None)])
            results = race(
                [
                    lambda a=a, b=b: racers[0].place_agents("cardhub", [(a, b)]),  # type: ignore[misc]
                    lambda a=a, b=b: racers[1].place_agents("cardhub", [(b, a)]),  # type: ignore[misc]
                ]
            )
            refused = [r for r in results if isinstance(r, Exception)]
            assert len(refused) == 1 and isinstance(refused[0], AgentCycle), results
            with registry.engine.connect() as conn:
                # Exactly one of them has an upline: no cycle was stored.
                above = [uplines(conn, "cardhub", ref(registry, n)) for n in (a, b)]
            assert sorted(len(chain) for chain in above) == [0, 1], above
    finally:
        for racer in racers:
            racer.engine.dispose()
