"""Transfers, holders, consumption, receipts and royalty statements (DESIGN "Holders,
transfers, royalties"; THREATS 46-48), on real SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable

import pytest
from eth_account import Account
from sqlalchemy import Engine, func, select

from registry.creator import CreatorKeys, sign_revocation
from registry.db import create_db_engine
from registry.distribution_policy import NotADistributor
from registry.eip712 import DEV_DOMAIN, digest
from registry.errors import InvalidInput, NotFound
from registry.fingerprints import GoodType, Use
from registry.handover import HandoverRequest
from registry.holding import holdings_t
from registry.leaf import EntryKind, payload_hash
from registry.log import entries_t
from registry.merkle import hash_leaf, verify_inclusion
from registry.royalty import RoyaltyPolicy, split
from registry.service import Registry
from registry.signatures import Signature, recover_signer
from registry.telemetry import VerificationRecord
from registry.transfers import (
    DoubleSale,
    GoodConsumed,
    GoodRevoked,
    IdempotencyKeyReused,
    Party,
    TransferRequest,
    attempts_t,
    royalty_lines_t,
    transfers_t,
)
from tests.conftest import Clock
from tests.registry.helpers import registration
from tests.registry.test_concurrency import race

CREATOR = Party(None, None)
POLICY = RoyaltyPolicy.parse(
    {
        "recipients": [
            {"address": "0x" + "11" * 20, "bps": 500, "label": "studio"},
            {"address": "0x" + "22" * 20, "bps": 333},
        ]
    }
)


def party(platform: str, reference: str) -> Party:
    return Party(platform, reference)


def sale(
    fingerprint: bytes,
    seller: Party,
    buyer: Party,
    *,
    platform: str = "cardhub",
    price: int | None = 1_000,
    final: bool = False,
    key: str | None = None,
    good_type: GoodType = GoodType.CODE,
    authorization: str | None = None,
) -> TransferRequest:
    return TransferRequest(
        platform=platform,
        good_type=good_type,
        fingerprint=fingerprint,
        seller=seller,
        buyer=buyer,
        price=price,
        currency=None if price is None else "EUR",
        final=final,
        idempotency_key=key,
        authorization=authorization,
    )


def handover(
    registry: Registry,
    fingerprint: bytes,
    holder: Party,
    buyer_platform: str,
    *,
    seconds: int = 600,
    good_type: GoodType = GoodType.CODE,
) -> str:
    """The holding platform's one-time consent that ``buyer_platform`` may move the good."""
    assert holder.platform is not None and holder.reference is not None
    return registry.authorize_handover(
        HandoverRequest(
            platform=holder.platform,
            good_type=good_type,
            fingerprint=fingerprint,
            reference=holder.reference,
            buyer_platform=buyer_platform,
            seconds=seconds,
        )
    ).token


@pytest.fixture
def code(registry: Registry, creator: CreatorKeys, clock: Clock) -> bytes:
    """A registered single-use code with a two-recipient royalty policy, sequenced."""
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
    return fingerprint


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_a_receipt_is_signed_by_the_registry_and_names_a_logged_entry(
    registry: Registry, code: bytes
) -> None:
    receipt = registry.transfer(sale(code, CREATOR, party("cardhub", "agent-7")))

    signed = digest("TransferReceipt", receipt.message(), DEV_DOMAIN)
    assert recover_signer(signed, Signature.parse(receipt.signature)) == registry.address
    assert receipt.signer == registry.address
    entry = registry.entry_at(receipt.leaf_index)
    assert entry.kind is EntryKind.TRANSFER
    assert entry.actor == bytes.fromhex(registry.address[2:])
    assert entry.payload_hash == receipt.transfer_hash
    assert entry.timestamp == receipt.timestamp
    # Sequenced at once, under a signed head that proves it.
    head = registry.latest_tree_head()
    assert head is not None and head.tree_size > receipt.leaf_index
    proof = registry.inclusion_proof(receipt.leaf_index, head.tree_size)
    verify_inclusion(
        hash_leaf(entry.leaf_data()), receipt.leaf_index, head.tree_size, proof, head.root
    )


def test_the_transfer_payload_is_the_one_hashed_into_the_leaf(
    registry: Registry, code: bytes
) -> None:
    receipt = registry.transfer(sale(code, CREATOR, party("cardhub", "agent-7")))
    with registry.engine.connect() as conn:
        from registry.records import records_t

        entry = conn.execute(
            select(entries_t.c.record_id).where(entries_t.c.leaf_index == receipt.leaf_index)
        ).scalar_one()
        payload = conn.execute(
            select(records_t.c.payload).where(records_t.c.id == entry)
        ).scalar_one()
    document = json.loads(payload)
    assert payload_hash(document) == receipt.transfer_hash
    # Only a hash of each reference is kept: the agent's name appears nowhere.
    assert "agent-7" not in payload
    assert document["transfer"]["seller"] == {"creator": True}


def test_royalties_apply_only_when_the_seller_is_not_the_creator(
    registry: Registry, code: bytes
) -> None:
    agent, buyer = party("cardhub", "agent-7"), party("keyshop", "buyer-1")
    first = registry.transfer(sale(code, CREATOR, agent, price=10_000))
    assert first.royalties == [] and first.seller_amount == 10_000

    # The holding platform reports its agent's sale to a buyer on another platform.
    second = registry.transfer(sale(code, agent, buyer, platform="cardhub", price=12_345))
    expected = split(12_345, POLICY)
    assert [(s.recipient, s.amount) for s in second.royalties] == list(expected.royalties)
    assert second.seller_amount == expected.seller_amount
    assert sum(s.amount for s in second.royalties) + second.seller_amount == 12_345
    assert count(registry.engine, royalty_lines_t) == 2


def test_a_seller_who_is_not_the_holder_gets_the_earlier_transfer(
    registry: Registry, code: bytes
) -> None:
    agent, stranger = party("cardhub", "agent-7"), party("keyshop", "someone-else")
    first = registry.transfer(sale(code, CREATOR, agent))
    with pytest.raises(DoubleSale) as raised:
        registry.transfer(sale(code, stranger, party("keyshop", "buyer-2"), platform="keyshop"))
    assert raised.value.earlier is not None
    assert raised.value.earlier["transfer_id"] == first.transfer_id
    # The creator sold it already: the creator is not its holder any more either.
    with pytest.raises(DoubleSale):
        registry.transfer(sale(code, CREATOR, party("keyshop", "buyer-3")))
    # Same reference on another platform is another party.
    with pytest.raises(DoubleSale):
        registry.transfer(
            sale(code, party("keyshop", "agent-7"), party("keyshop", "b"), platform="keyshop")
        )


def test_a_final_sale_consumes_a_single_use_good(registry: Registry, code: bytes) -> None:
    agent, player = party("cardhub", "agent-7"), party("cardhub", "player-1")
    registry.transfer(sale(code, CREATOR, agent))
    registry.transfer(sale(code, agent, player, final=True))
    before = count(registry.engine, transfers_t)
    with pytest.raises(GoodConsumed):
        registry.transfer(sale(code, player, party("cardhub", "player-2")))
    assert count(registry.engine, transfers_t) == before


def test_final_is_refused_for_a_transferable_good(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    fingerprint = os.urandom(32)
    registry.register(registration(creator, clock(), fingerprint=fingerprint))
    with pytest.raises(InvalidInput, match="single-use"):
        registry.transfer(
            sale(fingerprint, CREATOR, party("a", "b"), final=True, good_type=GoodType.FILE)
        )


def test_revoked_and_unknown_goods_do_not_move(
    registry: Registry, creator: CreatorKeys, code: bytes, clock: Clock
) -> None:
    registry.revoke(
        sign_revocation(
            creator,
            DEV_DOMAIN,
            good_type=GoodType.CODE,
            fingerprint=code,
            reason="leaked",
            now=clock(),
        )
    )
    with pytest.raises(GoodRevoked):
        registry.transfer(sale(code, CREATOR, party("cardhub", "agent-7")))
    with pytest.raises(NotFound):
        registry.transfer(sale(os.urandom(32), CREATOR, party("cardhub", "agent-7")))
    assert count(registry.engine, transfers_t) == 0


def test_a_retried_transfer_records_once_and_a_reused_key_is_refused(
    registry: Registry, code: bytes
) -> None:
    request = sale(code, CREATOR, party("cardhub", "agent-7"), key="order-981")
    first = registry.transfer(request)
    again = registry.transfer(request)
    assert again.replayed and again.transfer_id == first.transfer_id
    assert again.signature == first.signature
    assert count(registry.engine, transfers_t) == 1
    with pytest.raises(IdempotencyKeyReused):
        registry.transfer(sale(code, CREATOR, party("cardhub", "agent-8"), key="order-981"))
    # Keys are per platform: another platform's same key is another request.
    with pytest.raises(DoubleSale):
        registry.transfer(
            sale(code, CREATOR, party("keyshop", "x"), platform="keyshop", key="order-981")
        )


@pytest.mark.parametrize(
    "bad",
    [
        {"price": 5, "currency": None},
        {"price": -1, "currency": "EUR"},
        {"price": 5, "currency": "eur"},
        {"buyer": Party(None, None)},
        {"platform": ""},
    ],
)
def test_malformed_requests_are_refused(code: bytes, bad: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "platform": "cardhub",
        "good_type": GoodType.CODE,
        "fingerprint": code,
        "seller": CREATOR,
        "buyer": party("cardhub", "x"),
        "price": 5,
        "currency": "EUR",
    }
    with pytest.raises(InvalidInput):
        TransferRequest(**{**fields, **bad})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        Party("cardhub", "")


@pytest.mark.parametrize("threads", [2, 6])
def test_platforms_racing_for_one_good_have_exactly_one_winner(
    db_url: str, registry: Registry, code: bytes, clock: Clock, threads: int
) -> None:
    """THREATS 46/47: six platforms sell the same code at once; one wins, five get 409."""
    racers = [
        Registry(
            create_db_engine(db_url),
            domain=DEV_DOMAIN,
            account=registry.account,
            master_key=secrets.token_bytes(32),
            clock=clock,
        )
        for _ in range(threads)
    ]
    for racer in racers:
        racer.latest_tree_head()
    calls: list[Callable[[], object]] = [
        lambda r=racer, i=i: r.transfer(  # type: ignore[misc]
            sale(code, CREATOR, party(f"platform-{i}", "buyer"), platform=f"platform-{i}")
        )
        for i, racer in enumerate(racers)
    ]
    results = race(calls)
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1, results
    assert all(isinstance(r, DoubleSale) for r in losers), losers
    assert count(registry.engine, transfers_t) == 1
    assert count(registry.engine, holdings_t) == 1
    for racer in racers:
        racer.engine.dispose()


def test_royalty_statement_adds_up_per_good_platform_and_period(
    registry: Registry, creator: CreatorKeys, code: bytes, clock: Clock
) -> None:
    agent, sub, player = party("cardhub", "a"), party("keyshop", "s"), party("keyshop", "p")
    start = clock()
    registry.transfer(sale(code, CREATOR, agent, price=1_000))
    token = handover(registry, code, agent, "keyshop")
    registry.transfer(sale(code, agent, sub, platform="keyshop", price=2_000, authorization=token))
    clock.advance(40 * 86_400)
    registry.transfer(sale(code, sub, player, platform="keyshop", price=3_001, final=True))

    statement = registry.royalty_statement(
        bytes.fromhex(creator.address[2:]),
        since=start,
        until=clock() + 1,
        period="month",
    )
    owed = {t["recipient"]: int(str(t["amount"])) for t in statement.totals()}
    studio, other = (r.address for r in POLICY.recipients)
    assert owed[studio] == 2_000 * 500 // 10_000 + 3_001 * 500 // 10_000
    assert owed[other] == 2_000 * 333 // 10_000 + 3_001 * 333 // 10_000
    assert len({line.period for line in statement.lines}) == 2
    assert all(line.platform == "keyshop" for line in statement.lines)
    csv_text = "".join(statement.csv_rows())
    assert csv_text.splitlines()[0].startswith("period,good_type,fingerprint,platform")
    assert len(csv_text.splitlines()) == 1 + len(statement.lines)
    # Another creator's statement is empty.
    stranger = Account.create()
    other_statement = registry.royalty_statement(
        bytes.fromhex(stranger.address[2:]), since=start, until=clock() + 1, period="all"
    )
    assert other_statement.lines == []


def test_verification_counts_fold_events(registry: Registry, code: bytes, clock: Clock) -> None:
    now = clock()
    records = [
        VerificationRecord(now + i, platform, int(GoodType.CODE), code, "code", "authentic")
        for i, platform in enumerate(["cardhub", "keyshop", "cardhub"])
    ]
    registry.record_verifications(records[:2])
    registry.record_verifications(records[2:])
    stats = registry.verification_stats(GoodType.CODE, code)
    assert (stats.times, stats.platforms, stats.first_at, stats.last_at) == (3, 2, now, now + 2)
    never = registry.verification_stats(GoodType.CODE, os.urandom(32))
    assert (never.times, never.platforms, never.first_at) == (0, 0, None)


def test_a_flush_larger_than_a_statement_loses_nothing(registry: Registry, clock: Clock) -> None:
    """Telemetry is written as multi-row statements in chunks: every event lands once, and
    counts fold repeats across chunks and across flushes."""
    from sqlalchemy import func, select

    from registry.telemetry import CHUNK_SIZES, events_t

    now = clock()
    # More than the largest chunk, and a remainder that needs every smaller size.
    goods = [os.urandom(32) for _ in range(CHUNK_SIZES[0] + 7)]
    platforms = ["cardhub", "keyshop", "agent-7"]
    records = [
        VerificationRecord(
            now + i % 50, platforms[i % 3], int(GoodType.CODE), fp, "code", "unknown"
        )
        for i, fp in enumerate(goods * 2)
    ]
    registry.record_verifications(records)
    registry.record_verifications(records[:1])
    with registry.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events_t)).scalar() == len(records) + 1
    first, last = goods[0], goods[-1]
    stats = registry.verification_stats(GoodType.CODE, first)
    # goods[0] is record 0 (cardhub) and record len(goods) (platform (len(goods)) % 3), then again.
    expected_platforms = len({platforms[0], platforms[len(goods) % 3]})
    assert (stats.times, stats.platforms) == (3, expected_platforms)
    assert stats.first_at == now
    assert registry.verification_stats(GoodType.CODE, last).times == 2


@pytest.mark.parametrize("count", [0, 1, 3, 4, 17, 1023, 1024, 1025, 2 * 1024 + 345])
def test_flush_chunks_cover_every_row_once_with_few_sizes(count: int) -> None:
    from registry.telemetry import CHUNK_SIZES, _chunks

    chunks = _chunks(count)
    covered = [i for start, size in chunks for i in range(start, start + size)]
    assert covered == list(range(count))
    assert {size for _, size in chunks} <= set(CHUNK_SIZES)
    # Greedy: no size appears more often than it takes to reach the next larger one.
    sizes = [size for _, size in chunks]
    for smaller, larger in zip(CHUNK_SIZES[1:], CHUNK_SIZES, strict=False):
        assert sizes.count(smaller) < larger // smaller


@pytest.mark.postgres
@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_serialization_failures_and_deadlocks_retry_the_whole_transaction(
    postgres_url: str, sqlstate: str
) -> None:
    """THREATS 48: the server's own 40001/40P01 aborts one attempt; the retry commits once."""
    from sqlalchemy import text

    from registry.db import retrying, write_transaction

    engine = create_db_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE once (n integer)"))
    attempts = []

    def operation() -> int:
        attempts.append(1)
        with write_transaction(engine) as conn:
            conn.execute(text("INSERT INTO once VALUES (1)"))
            if len(attempts) == 1:  # a real error from the server, not a Python fake
                conn.execute(
                    text(
                        f"DO $$ BEGIN RAISE EXCEPTION 'abort' USING ERRCODE = '{sqlstate}'; END $$"
                    )
                )
            return len(attempts)

    assert retrying(operation) == 2
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM once")).scalar_one() == 1

    def always_unique_violation() -> None:
        with write_transaction(engine) as conn:
            conn.execute(text("DO $$ BEGIN RAISE EXCEPTION 'dup' USING ERRCODE = '23505'; END $$"))

    attempts.clear()
    with pytest.raises(Exception, match="dup"):
        retrying(lambda: (attempts.append(1), always_unique_violation())[1])
    assert len(attempts) == 1  # not retried: a unique violation is an answer (409), not luck
    engine.dispose()


def test_a_restricted_creator_sells_first_hand_only_through_its_distributors(
    registry: Registry, code: bytes, creator: CreatorKeys, clock: Clock
) -> None:
    """A platform the creator did not name cannot claim a first sale (403, nothing written,
    the attempt kept); named ones can, and resales are nobody's business but the holder's."""
    maker = bytes.fromhex(creator.address[2:])
    assert registry.distribution(maker).as_dict() == {
        "restricted": False,
        "platforms": [],
        "updated_at": None,
    }
    policy = registry.set_distribution(maker, restricted=True, platforms=["cardhub", "keyshop"])
    assert policy.allows("cardhub") and not policy.allows("shadowkeys")
    assert registry.distribution(maker) == policy
    before = (count(registry.engine, transfers_t), count(registry.engine, entries_t))

    with pytest.raises(NotADistributor) as refused:
        registry.transfer(sale(code, CREATOR, party("shadowkeys", "u1"), platform="shadowkeys"))
    assert "shadowkeys" in refused.value.detail and "cardhub" not in refused.value.detail
    assert (count(registry.engine, transfers_t), count(registry.engine, entries_t)) == before
    with registry.engine.connect() as conn:
        (attempt,) = conn.execute(select(attempts_t)).all()
    assert (attempt.reason, attempt.platform, attempt.seller_platform) == (
        "not-a-distributor",
        "shadowkeys",
        None,
    )

    first = registry.transfer(sale(code, CREATOR, party("cardhub", "agent-7")))
    resale = registry.transfer(
        sale(code, party("cardhub", "agent-7"), party("gamemart", "u2"), platform="cardhub")
    )
    assert resale.leaf_index > first.leaf_index
    # Open again: anyone may sell first-hand; the list is kept for the next restriction.
    reopened = registry.set_distribution(maker, restricted=False, platforms=["cardhub"])
    assert reopened.allows("shadowkeys") and registry.distribution(maker).platforms == {"cardhub"}
    for bad in (["Card Hub"], ["-cardhub"], ["x" * 65], [f"p{n}" for n in range(201)]):
        with pytest.raises(InvalidInput):
            registry.set_distribution(maker, restricted=True, platforms=bad)
    assert registry.distribution(maker) == reopened


def test_events_are_indexed_by_good_off_the_hot_path_and_traces_see_them_all(
    registry: Registry, clock: Clock
) -> None:
    """The API appends events without an index; ``index_verifications`` indexes them by good
    in windows of ids (gaps included); a good's events are the same before and after."""
    from registry.db import read_transaction, write_transaction
    from registry.telemetry import event_ids_of, index_verifications, indexed_through

    goods = [os.urandom(32) for _ in range(3)]
    now = clock()

    def ids_of(fingerprint: bytes) -> list[int]:
        with read_transaction(registry.engine) as conn:
            return sorted(
                conn.execute(event_ids_of(conn, int(GoodType.CODE), fingerprint)).scalars()
            )

    def index(limit: int) -> int:
        with write_transaction(registry.engine) as conn:
            return index_verifications(conn, limit=limit)

    registry.record_verifications(
        [
            VerificationRecord(now + i, "cardhub", int(GoodType.CODE), goods[i % 3], "code", "x")
            for i in range(10)
        ]
    )
    before = [ids_of(g) for g in goods]
    assert [len(ids) for ids in before] == [4, 3, 3]
    assert index(4) == 4 and index(4) == 4 and index(4) == 2 and index(4) == 0
    with read_transaction(registry.engine) as conn:
        mark = indexed_through(conn)
    assert mark == max(max(ids) for ids in before)
    assert [ids_of(g) for g in goods] == before  # indexed or in the tail: the same events
    # More events after the mark are found by the tail scan until indexed, then by the index.
    registry.record_verifications(
        [VerificationRecord(now + 20, "keyshop", int(GoodType.CODE), goods[0], "code", "x")]
    )
    assert len(ids_of(goods[0])) == 5
    assert index(1_000) == 1 and len(ids_of(goods[0])) == 5
