"""Races between writers (THREATS 17, 47): one nonce, one first registration, a busy SQLite.

Each racing thread has its own ``Registry`` over its own engine on the shared database, as
separate server processes would; a ``threading.Barrier`` releases them at the same moment.
"""

from __future__ import annotations

import functools
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from registry import registration as registration_module
from registry.creator import DEFAULT_VALIDITY_SECONDS, CreatorKeys, sign_registration
from registry.db import SQLITE_BUSY_TIMEOUT_MS, create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.errors import InvalidInput, NonceReused, StorageBusy
from registry.fingerprints import GoodType, Use
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.migrate import upgrade
from registry.records import records_t
from registry.registration import EntryRef
from registry.requests import RegistrationRequest, metadata_hash
from registry.royalty import RoyaltyPolicy, policy_hash
from registry.service import Registry
from registry.signatures import sign
from registry.signed import SignedMessage
from tests.conftest import Clock, CreatorFactory

#: Generous: a thread that is still running after this is a deadlock, not a slow machine.
JOIN_TIMEOUT = 60.0


def registration(
    keys: CreatorKeys,
    *,
    fingerprint: bytes,
    nonce: int,
    now: int,
    product: str = "",
    use: Use = Use.TRANSFERABLE,
) -> RegistrationRequest:
    """A signed file registration with a chosen nonce (``sign_registration`` draws its own)."""
    policy = RoyaltyPolicy()
    message = {
        "goodType": int(GoodType.FILE),
        "fingerprint": fingerprint,
        "product": product,
        "use": int(use),
        "royaltyPolicy": policy_hash(policy),
        "metadata": metadata_hash({}),
        "nonce": nonce,
        "deadline": now + DEFAULT_VALIDITY_SECONDS,
    }
    signature = sign("Registration", message, DEV_DOMAIN, bytes(keys.account.key))
    return RegistrationRequest(
        SignedMessage("Registration", message, signature, keys.address), policy, {}, True
    )


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together; each result is a value or the exception."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait(timeout=JOIN_TIMEOUT)
        try:
            results[index] = calls[index]()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a racing thread never finished"
    return results


@pytest.fixture
def registries(
    db_url: str, engine: Engine, clock: Clock
) -> Iterator[Callable[[int], list[Registry]]]:
    """A factory of registries, each on its own engine over the (migrated) shared database."""
    made: list[Registry] = []

    def make(count: int) -> list[Registry]:
        fresh = [
            Registry(
                create_db_engine(db_url),
                domain=DEV_DOMAIN,
                account=Account.create(),
                master_key=secrets.token_bytes(32),
                clock=clock,
            )
            for _ in range(count)
        ]
        for registry in fresh:
            registry.latest_tree_head()  # connect now, so the race is not about connecting
        made.extend(fresh)
        return fresh

    yield make
    for registry in made:
        registry.engine.dispose()


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


# -- THREATS 17: one (signer, nonce), one acceptance ---------------------------------------------


@pytest.mark.parametrize("threads", [2, 6])
def test_concurrent_uses_of_one_nonce_accept_exactly_one(
    registries: Callable[[int], list[Registry]],
    engine: Engine,
    creator: CreatorKeys,
    clock: Clock,
    threads: int,
) -> None:
    nonce = secrets.randbits(63)
    fingerprints = [secrets.token_bytes(32) for _ in range(threads)]
    requests = [
        registration(creator, fingerprint=fp, nonce=nonce, now=clock()) for fp in fingerprints
    ]
    racers = registries(threads)

    results = race(
        [functools.partial(r.register, q) for r, q in zip(racers, requests, strict=True)]
    )

    accepted = [r for r in results if isinstance(r, EntryRef)]
    refused = [r for r in results if isinstance(r, NonceReused)]
    assert len(accepted) == 1, results
    assert len(refused) == threads - 1, results
    assert accepted[0].status == "queued"
    assert count(engine, records_t) == 1
    assert count(engine, records_t, records_t.c.nonce == nonce) == 1
    with engine.connect() as conn:
        stored = conn.execute(select(entries_t.c.fingerprint)).scalars().all()
    assert [bytes(fp) for fp in stored] == [accepted[0].fingerprint]


def test_a_refused_registration_consumes_no_nonce(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    # The nonce is inserted before the product is checked: both must roll back together.
    registry.register(
        registration(
            creator,
            fingerprint=secrets.token_bytes(32),
            nonce=1,
            now=clock(),
            product="card",
            use=Use.SINGLE,
        )
    )
    nonce = secrets.randbits(63)
    refused = registration(
        creator, fingerprint=secrets.token_bytes(32), nonce=nonce, now=clock(), product="card"
    )

    with pytest.raises(InvalidInput, match="cannot take transferable"):
        registry.register(refused)

    assert count(engine, records_t, records_t.c.nonce == nonce) == 0
    assert count(engine, entries_t) == 1
    fixed = registration(creator, fingerprint=secrets.token_bytes(32), nonce=nonce, now=clock())
    assert registry.register(fixed).status == "queued"


# -- one accepted REGISTER per good, however many creators race for it -------------------------


def test_creators_racing_for_one_fingerprint_get_one_register_and_conflicts(
    registries: Callable[[int], list[Registry]],
    engine: Engine,
    make_creator: CreatorFactory,
    clock: Clock,
) -> None:
    creators = [make_creator() for _ in range(6)]
    racers = registries(6)
    for _round in range(3):
        fingerprint = secrets.token_bytes(32)
        requests = [
            sign_registration(
                keys,
                DEV_DOMAIN,
                good_type=GoodType.FILE,
                fingerprint=fingerprint,
                product="",
                use=Use.TRANSFERABLE,
                royalty_policy=RoyaltyPolicy(),
                metadata={},
                now=clock(),
            )
            for keys in creators
        ]

        results = race(
            [functools.partial(r.register, q) for r, q in zip(racers, requests, strict=True)]
        )

        assert all(isinstance(r, EntryRef) for r in results), results
        winners = [r for r in results if r.status == "queued"]
        assert len(winners) == 1, results
        assert sorted(r.status for r in results) == ["conflict"] * 5 + ["queued"]
        assert {r.kind for r in results if r.status == "conflict"} == {EntryKind.CONFLICT}
        history = racers[0].history(GoodType.FILE, fingerprint)
        registered = [e for e in history if e.kind is EntryKind.REGISTER]
        conflicts = [e for e in history if e.kind is EntryKind.CONFLICT]
        assert len(history) == 6
        assert [e.actor for e in registered] == [bytes.fromhex(winners[0].actor[2:])]
        assert {e.actor for e in conflicts} == {
            bytes.fromhex(k.address[2:]) for k in creators if k.address != winners[0].actor
        }
        assert registered[0].entry_id == winners[0].entry_id

        # Log order proves who was first: the REGISTER precedes every CONFLICT.
        racers[0].sequence_all()
        history = racers[0].history(GoodType.FILE, fingerprint)
        assert history[0].kind is EntryKind.REGISTER
        assert history[0].actor == registered[0].actor
    assert count(engine, entries_t, entries_t.c.kind == int(EntryKind.REGISTER)) == 3


def test_the_unique_index_decides_when_the_read_misses_the_winner(
    registry: Registry,
    engine: Engine,
    make_creator: CreatorFactory,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # NOTE: a fault injection: the race where a second creator reads "not registered" just
    # before the first one commits is rare on demand, so the read is made to miss.
    first, second = make_creator(), make_creator()
    fingerprint = secrets.token_bytes(32)
    registry.register(registration(first, fingerprint=fingerprint, nonce=1, now=clock()))
    monkeypatch.setattr(registration_module, "registered_entry", lambda *_: None)

    late = registry.register(registration(second, fingerprint=fingerprint, nonce=1, now=clock()))

    assert (late.status, late.kind) == ("conflict", EntryKind.CONFLICT)
    history = registry.history(GoodType.FILE, fingerprint)
    assert [(e.kind, e.actor) for e in history] == [
        (EntryKind.REGISTER, bytes.fromhex(first.address[2:])),
        (EntryKind.CONFLICT, bytes.fromhex(second.address[2:])),
    ]
    assert count(engine, records_t) == 2


# -- THREATS 47: SQLite's one write lock -----------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{(tmp_path / 'registry.db').as_posix()}"
    setup = create_db_engine(url)
    upgrade(setup)
    setup.dispose()
    yield url


def pragma(engine: Engine, name: str) -> Any:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


@pytest.mark.parametrize(
    ("kwargs", "timeout"),
    [({}, SQLITE_BUSY_TIMEOUT_MS), ({"busy_timeout_ms": 100}, 100)],
    ids=["default", "custom"],
)
def test_sqlite_connections_are_configured_for_durability_and_waiting(
    sqlite_url: str, kwargs: dict[str, int], timeout: int
) -> None:
    engine = create_db_engine(sqlite_url, **kwargs)
    try:
        assert pragma(engine, "busy_timeout") == timeout
        assert pragma(engine, "journal_mode") == "wal"
        assert pragma(engine, "synchronous") == 2  # FULL
        assert pragma(engine, "foreign_keys") == 1
    finally:
        engine.dispose()
    assert SQLITE_BUSY_TIMEOUT_MS > 0


def test_a_locked_sqlite_database_is_busy_then_accepts_the_same_request(
    sqlite_url: str, clock: Clock, creator: CreatorKeys, tmp_path: Path
) -> None:
    registry = Registry(
        create_db_engine(sqlite_url, busy_timeout_ms=100),
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    request = registration(
        creator, fingerprint=secrets.token_bytes(32), nonce=secrets.randbits(63), now=clock()
    )
    other = sqlite3.connect(tmp_path / "registry.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock

        with pytest.raises(StorageBusy) as busy:
            registry.register(request)
        assert isinstance(busy.value.__cause__, OperationalError)
        with pytest.raises(StorageBusy):
            registry.sequence()
        assert registry.latest_tree_head() is None  # readers do not wait for writers (WAL)

        other.execute("ROLLBACK")
        entry = registry.register(request)  # the busy attempt consumed nothing
        head = registry.sequence()
    finally:
        other.close()
        registry.engine.dispose()

    assert entry.status == "queued"
    assert head is not None and head.tree_size == 2  # the entry and its head's state commitment


def test_database_errors_never_carry_bound_values(db_url: str) -> None:
    """No secret reaches a log or a message through an error's SQL parameters."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from registry.db import create_db_engine

    engine = create_db_engine(db_url)
    secret = "0x" + "5e" * 32
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table WHERE x = :secret"), {"secret": secret})
    except DBAPIError as exc:
        assert secret not in str(exc)
        assert "hidden due to hide_parameters" in str(exc)
    else:
        raise AssertionError("the query should have failed")
    finally:
        engine.dispose()
