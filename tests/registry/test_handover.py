"""A good held on a platform moves only with that platform's consent, and a holder's reference
cannot be recovered from public data (DESIGN "Holders, transfers, royalties"; issue 12), on
real SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, select, update

from readmodels import rules, signals
from readmodels.marketreads import read_inputs
from registry.creator import CreatorKeys
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.errors import InvalidInput
from registry.fingerprints import GoodType, Use
from registry.handover import (
    MAX_AUTHORIZATION_SECONDS,
    AuthorizationRefused,
    HandoverRequest,
    NotTheHolder,
    authorizations_t,
)
from registry.holding import holdings_t
from registry.log import entries_t
from registry.parties import LEGACY_REFERENCE_TAG, ReferenceScheme, legacy_reference_hash
from registry.records import records_t
from registry.service import Registry
from registry.transfers import (
    DoubleSale,
    Party,
    TransferReceipt,
    TransferRequest,
    attempts_t,
    transfers_t,
)
from tests.conftest import Clock
from tests.registry.helpers import registration
from tests.registry.test_concurrency import race
from tests.registry.test_transfers import CREATOR, POLICY, count, handover, sale

CAROL = Party("cardhub", "carol")
#: Registries (each its own engine) the twenty racing uses are spread over.
RACERS = 4


@pytest.fixture
def code(registry: Registry, creator: CreatorKeys, clock: Clock) -> bytes:
    """A registered single-use code that cardhub's user "carol" holds."""
    fingerprint = os.urandom(32)
    registry.register(
        registration(
            creator,
            clock(),
            fingerprint=fingerprint,
            good_type=GoodType.CODE,
            product="30-day-card",
            use=Use.SINGLE,
            policy=POLICY,
        )
    )
    registry.sequence_all()
    registry.transfer(sale(fingerprint, CREATOR, CAROL, price=1_000))
    return fingerprint


def state(engine: Engine) -> tuple[object, ...]:
    """Everything a refused transfer must leave as it was."""
    with engine.connect() as conn:
        holding = conn.execute(select(holdings_t)).all()
        authorizations = conn.execute(
            select(authorizations_t.c.id, authorizations_t.c.used_at)
        ).all()
    return (
        count(engine, transfers_t),
        count(engine, entries_t),
        tuple(tuple(row) for row in holding),
        tuple(tuple(row) for row in authorizations),
    )


def payload_of(registry: Registry, log_index: int) -> dict[str, object]:
    """The TRANSFER entry's payload: what every proof bundle of the good carries."""
    with registry.engine.connect() as conn:
        record_id = conn.execute(
            select(entries_t.c.record_id).where(entries_t.c.leaf_index == log_index)
        ).scalar_one()
        text = conn.execute(
            select(records_t.c.payload).where(records_t.c.id == record_id)
        ).scalar_one()
    return dict(json.loads(text))


def test_a_platform_cannot_move_a_good_another_platform_holds_by_guessing_its_reference(
    registry: Registry, code: bytes
) -> None:
    """The probe: keyshop names cardhub's holder ("carol", a guess) as its seller at a price of
    1. Refused with 403 whether the guess is right or wrong, nothing moves, the attempt is
    kept for the signals, and cardhub's own next sale still goes through."""
    before = state(registry.engine)
    for guess in ("carol", "not-carol"):
        with pytest.raises(NotTheHolder) as refused:
            registry.transfer(
                sale(
                    code,
                    Party("cardhub", guess),
                    Party("keyshop", "mallory"),
                    platform="keyshop",
                    price=1,
                )
            )
        assert refused.value.code == "not-the-holder"
        assert not isinstance(refused.value, DoubleSale)  # the same answer: no oracle
    assert state(registry.engine) == before
    with registry.engine.connect() as conn:
        attempts = conn.execute(select(attempts_t).order_by(attempts_t.c.id)).all()
    assert [(a.reason, a.platform, a.seller_platform) for a in attempts] == [
        ("not-the-holder", "keyshop", "cardhub")
    ] * 2

    receipt = registry.transfer(sale(code, CAROL, Party("cardhub", "dave"), price=2_000))
    assert receipt.platform == "cardhub" and receipt.royalties


def test_a_refused_claim_on_another_platforms_good_is_a_risk_signal(
    registry: Registry, code: bytes, clock: Clock
) -> None:
    """The refused attempt is what the risk worker reads: sold-by-non-holder names keyshop."""
    with pytest.raises(NotTheHolder):
        registry.transfer(
            sale(code, CAROL, Party("keyshop", "mallory"), platform="keyshop", price=1)
        )
    records, _ = read_inputs(registry.engine)
    found = [
        s
        for s in rules.evaluate(records, now=clock() + 86_400)
        if s.code == signals.SOLD_BY_NON_HOLDER
    ]
    assert len(found) == 1 and (GoodType.CODE, code) in found[0].goods
    assert "keyshop" in found[0].platforms and "without that platform's consent" in found[0].detail


def test_the_public_holder_hash_is_keyed_per_platform(
    registry: Registry, creator: CreatorKeys, code: bytes, clock: Clock
) -> None:
    """The holder hash in a TRANSFER payload is no tagged SHA-256 anyone can recompute, and
    the same reference on two platforms gives unrelated hashes."""
    other = os.urandom(32)
    registry.register(registration(creator, clock(), fingerprint=other))
    registry.sequence_all()
    receipts = [
        registry.transfer(
            sale(
                other,
                CREATOR,
                Party("keyshop", "carol"),
                platform="keyshop",
                price=None,
                good_type=GoodType.FILE,
            )
        ),
        registry.transfer(sale(code, CAROL, Party("cardhub", "carol-2"), price=None)),
    ]
    keyshop_carol = payload_of(registry, receipts[0].leaf_index)["transfer"]["buyer"]  # type: ignore[index]
    cardhub_carol = payload_of(registry, receipts[1].leaf_index)["transfer"]["seller"]  # type: ignore[index]
    assert keyshop_carol["platform"] == "keyshop" and cardhub_carol["platform"] == "cardhub"
    public = {keyshop_carol["reference_hash"], cardhub_carol["reference_hash"]}
    assert len(public) == 2
    guesses = {
        "0x" + hashlib.sha256(LEGACY_REFERENCE_TAG + b"carol").hexdigest(),
        "0x" + hashlib.sha256(b"carol").hexdigest(),
        "0x" + legacy_reference_hash("cardhub", "carol").hex(),
        "0x" + legacy_reference_hash("keyshop", "carol").hex(),
    }
    assert not public & guesses
    assert (
        cardhub_carol["reference_hash"] == "0x" + registry.reference_hash("cardhub", "carol").hex()
    )
    # The receipt says the same as the payload, and new holdings are written keyed.
    assert receipts[1].seller == cardhub_carol
    with registry.engine.connect() as conn:
        schemes = set(conn.execute(select(holdings_t.c.holder_ref_scheme)).scalars())
    assert schemes == {int(ReferenceScheme.KEYED)}


def test_an_authorization_lets_exactly_its_one_buyer_move_the_good_once(
    registry: Registry, creator: CreatorKeys, code: bytes, clock: Clock
) -> None:
    other = os.urandom(32)
    registry.register(registration(creator, clock(), fingerprint=other))
    registry.sequence_all()
    registry.transfer(sale(other, CREATOR, CAROL, price=None, good_type=GoodType.FILE))
    token = handover(registry, code, CAROL, "keyshop")
    assert token.startswith("tmho_") and token not in repr(
        registry.authorize_handover(
            HandoverRequest("cardhub", GoodType.CODE, code, "carol", "keyshop")
        )
    )
    with registry.engine.connect() as conn:
        stored = set(conn.execute(select(authorizations_t.c.token_hash)).scalars())
    assert hashlib.sha256(token.encode()).digest() in {bytes(h) for h in stored}

    def buy(
        *,
        platform: str = "keyshop",
        good: bytes = code,
        seller: Party = CAROL,
        authorization: str = token,
        good_type: GoodType = GoodType.CODE,
    ) -> TransferReceipt:
        return registry.transfer(
            sale(
                good,
                seller,
                Party(platform, "bob"),
                platform=platform,
                price=1_500,
                authorization=authorization,
                good_type=good_type,
            )
        )

    before = state(registry.engine)
    refusals: list[Callable[[], object]] = [
        lambda: buy(platform="gamemart"),  # another buyer
        lambda: buy(good=other, good_type=GoodType.FILE),  # another good, also carol's
        lambda: buy(seller=Party("cardhub", "dave")),  # another seller
        lambda: buy(seller=Party("gamemart", None)),
        lambda: buy(authorization="tmho_" + secrets.token_urlsafe(32)),  # unknown
    ]
    for refused in refusals:
        with pytest.raises(AuthorizationRefused):
            refused()
    assert state(registry.engine) == before

    # Its buyer, without even learning the holder's reference: the good moves, once.
    receipt = buy(seller=Party("cardhub", None))
    assert receipt.platform == "keyshop" and receipt.seller_amount is not None
    assert receipt.seller == {
        "platform": "cardhub",
        "reference_hash": "0x" + registry.reference_hash("cardhub", "carol").hex(),
    }
    with registry.engine.connect() as conn:
        used = conn.execute(
            select(authorizations_t).where(authorizations_t.c.transfer_id.is_not(None))
        ).one()
    assert used.transfer_id == receipt.transfer_id and used.used_at is not None
    with pytest.raises(AuthorizationRefused, match="already used"):
        registry.transfer(
            sale(
                code,
                Party("cardhub", None),
                Party("keyshop", "bob-2"),
                platform="keyshop",
                authorization=token,
            )
        )
    # The new holder is keyshop's bob: keyshop sells it as its own, cardhub no longer can.
    with pytest.raises(NotTheHolder):
        registry.transfer(
            sale(code, Party("keyshop", "bob"), Party("cardhub", "x"), platform="cardhub")
        )
    registry.transfer(
        sale(code, Party("keyshop", "bob"), Party("keyshop", "p"), platform="keyshop")
    )


def test_an_expired_authorization_is_refused(registry: Registry, code: bytes, clock: Clock) -> None:
    token = handover(registry, code, CAROL, "keyshop", seconds=60)
    clock.advance(60)
    before = state(registry.engine)
    with pytest.raises(AuthorizationRefused, match="expired"):
        registry.transfer(
            sale(code, CAROL, Party("keyshop", "bob"), platform="keyshop", authorization=token)
        )
    assert state(registry.engine) == before


def test_an_authorization_dies_when_the_holder_sells_elsewhere(
    registry: Registry, code: bytes
) -> None:
    token = handover(registry, code, CAROL, "keyshop")
    registry.transfer(sale(code, CAROL, Party("cardhub", "dave")))
    with pytest.raises(DoubleSale):
        registry.transfer(
            sale(code, CAROL, Party("keyshop", "bob"), platform="keyshop", authorization=token)
        )


def test_only_the_holder_may_issue_an_authorization(
    registry: Registry, creator: CreatorKeys, code: bytes, clock: Clock
) -> None:
    held_by_creator = os.urandom(32)
    registry.register(registration(creator, clock(), fingerprint=held_by_creator))
    asks = [
        HandoverRequest("keyshop", GoodType.CODE, code, "carol", "gamemart"),  # not its good
        HandoverRequest("cardhub", GoodType.CODE, code, "dave", "keyshop"),  # not that party
        HandoverRequest("cardhub", GoodType.FILE, held_by_creator, "carol", "keyshop"),
        HandoverRequest("cardhub", GoodType.CODE, os.urandom(32), "carol", "keyshop"),
    ]
    for ask in asks:
        with pytest.raises(NotTheHolder):
            registry.authorize_handover(ask)
    for bad in (
        {"buyer_platform": "cardhub"},
        {"seconds": MAX_AUTHORIZATION_SECONDS + 1},
        {"seconds": 0},
        {"buyer_platform": "key\u202eshop"},
        {"reference": ""},
    ):
        fields: dict[str, object] = {
            "platform": "cardhub",
            "good_type": GoodType.CODE,
            "fingerprint": code,
            "reference": "carol",
            "buyer_platform": "keyshop",
            **bad,
        }
        with pytest.raises(InvalidInput):
            HandoverRequest(**fields)  # type: ignore[arg-type]
    assert count(registry.engine, authorizations_t) == 0


@pytest.mark.parametrize(
    "platform",
    ["card\x00hub", "card\u202ehub", "cardhub\u200b", "card\u2066hub", "cardhub\n", "CardHub", ""],
)
def test_platform_ids_outside_the_grammar_are_refused(code: bytes, platform: str) -> None:
    with pytest.raises(InvalidInput):
        Party(platform, "carol")
    with pytest.raises(InvalidInput):
        TransferRequest(
            platform=platform,
            good_type=GoodType.CODE,
            fingerprint=code,
            seller=CAROL,
            buyer=Party("cardhub", "x"),
        )


def test_a_holding_written_before_keyed_references_still_moves_for_its_platform(
    registry: Registry, code: bytes
) -> None:
    """A pre-0017 holding keeps its unkeyed hash (scheme 1): its platform's next sale sends the
    reference again and is compared under scheme 1; the new holder is written keyed. Another
    platform still cannot move it, and a wrong reference is still the double sale."""
    with registry.engine.begin() as conn:
        conn.execute(
            update(holdings_t).values(
                holder_ref=legacy_reference_hash("cardhub", "carol"),
                holder_ref_scheme=int(ReferenceScheme.LEGACY),
            )
        )
    with pytest.raises(NotTheHolder):
        registry.transfer(sale(code, CAROL, Party("keyshop", "m"), platform="keyshop"))
    with pytest.raises(DoubleSale):
        registry.transfer(sale(code, Party("cardhub", "carla"), Party("cardhub", "x")))
    token = handover(registry, code, CAROL, "keyshop")  # its holder may consent, too
    registry.transfer(sale(code, CAROL, Party("cardhub", "dave")))
    with registry.engine.connect() as conn:
        holding = conn.execute(select(holdings_t)).one()
    assert holding.holder_ref_scheme == int(ReferenceScheme.KEYED)
    assert bytes(holding.holder_ref) == registry.reference_hash("cardhub", "dave")
    with pytest.raises(DoubleSale):  # the authorization died with the sale
        registry.transfer(
            sale(code, CAROL, Party("keyshop", "b"), platform="keyshop", authorization=token)
        )
    registry.transfer(sale(code, Party("cardhub", "dave"), Party("cardhub", "erin")))


def test_twenty_racing_uses_of_one_authorization_have_exactly_one_winner(
    db_url: str, registry: Registry, code: bytes, clock: Clock
) -> None:
    token = handover(registry, code, CAROL, "keyshop")
    racers = [
        Registry(
            create_db_engine(db_url),
            domain=DEV_DOMAIN,
            account=registry.account,
            master_key=secrets.token_bytes(32),
            clock=clock,
        )
        for _ in range(RACERS)
    ]
    for racer in racers:
        racer.latest_tree_head()
    calls: list[Callable[[], object]] = [
        lambda r=racers[i % RACERS], i=i: r.transfer(  # type: ignore[misc]
            sale(
                code,
                Party("cardhub", None),
                Party("keyshop", f"buyer-{i}"),
                platform="keyshop",
                price=100 + i,
                authorization=token,
            )
        )
        for i in range(20)
    ]
    before = count(registry.engine, transfers_t)
    results = race(calls)
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1, results
    assert all(isinstance(r, AuthorizationRefused) for r in losers), losers
    assert count(registry.engine, transfers_t) == before + 1
    with registry.engine.connect() as conn:
        holding = conn.execute(select(holdings_t)).one()
        used = conn.execute(select(authorizations_t)).one()
    assert holding.holder_platform == "keyshop"
    assert used.transfer_id == winners[0].transfer_id  # type: ignore[attr-defined]
    for racer in racers:
        racer.engine.dispose()
