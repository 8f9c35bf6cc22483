"""THREATS 46, 48 and 50 completed, on real SQLite and PostgreSQL: a race over a final,
consuming sale and the UNIQUE backstop alone; bounded, jittered retries and a concurrent
23505 answered 409; durable commits, and a restore older than the chain refused by the
anchoring worker, then reconciled from a newer backup."""

from __future__ import annotations

import functools
import secrets
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

import registry.db as db
from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.errors import ChainMismatch
from anchoring.loop import run_anchoring
from anchoring.worker import AnchorPolicy, AnchorWorker
from api.errors import status_of
from registry.creator import CreatorKeys
from registry.db import create_db_engine, create_telemetry_engine, retrying
from registry.eip712 import DEV_DOMAIN
from registry.errors import NonceReused
from registry.holding import holdings_t
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.records import records_t
from registry.service import Registry
from registry.transfers import (
    DoubleSale,
    GoodConsumed,
    attempts_t,
    royalty_lines_t,
    transfers_t,
)

# The anchoring tests' real anvil, its account #0 and the contract; the registry is the
# suite's own, on both databases.
from tests.anchoring.conftest import chain, devchain, operator  # noqa: F401
from tests.conftest import POSTGRES_URL, Clock
from tests.registry.helpers import registration
from tests.registry.test_concurrency import race
from tests.registry.test_concurrency import registration as with_nonce
from tests.registry.test_transfers import CREATOR, POLICY, code, party, sale  # noqa: F401


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def tree_size(registry: Registry) -> int:
    head = registry.latest_tree_head()
    return 0 if head is None else head.tree_size


@pytest.fixture
def racers(
    db_url: str, registry: Registry, clock: Clock
) -> Iterator[Callable[[int], list[Registry]]]:
    """Registries on their own engines over the shared database, as separate processes."""
    made: list[Registry] = []

    def make(n: int) -> list[Registry]:
        fresh = [
            Registry(
                create_db_engine(db_url),
                domain=DEV_DOMAIN,
                account=registry.account,
                # One deployment, one master key: party references are keyed under it.
                master_key=registry._master_key,
                clock=clock,
            )
            for _ in range(n)
        ]
        for racer in fresh:
            racer.latest_tree_head()  # connect now: the race is not about connecting
        made.extend(fresh)
        return fresh

    yield make
    for racer in made:
        racer.engine.dispose()


# -- THREATS 46 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [2, 6])
def test_threat_46_platforms_race_a_final_consuming_sale(
    registry: Registry,
    code: bytes,  # noqa: F811 - the fixture imported above
    racers: Callable[[int], list[Registry]],
    threads: int,
) -> None:
    """The holder resells a single-use code to its end user on several platforms at once:
    exactly one sale, every other answer 409, and the sale's royalty rows written once."""
    agent = party("cardhub", "agent-7")
    registry.transfer(sale(code, CREATOR, agent, price=1_000))  # first hand: no royalty
    before = (count(registry.engine, transfers_t), count(registry.engine, entries_t))
    assert count(registry.engine, royalty_lines_t) == 0

    # The holder's own platform reports the sale, once per racing request (a retried click,
    # two shop workers): each to another end user.
    results = race(
        [
            functools.partial(
                racer.transfer, sale(code, agent, party("cardhub", f"player-{i}"), final=True)
            )
            for i, racer in enumerate(racers(threads))
        ]
    )

    winners = [(i, r) for i, r in enumerate(results) if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1, results
    assert all(isinstance(r, DoubleSale | GoodConsumed) for r in losers), losers
    assert {status_of(r) for r in losers} <= {409}
    ((index, receipt),) = winners
    assert receipt.final and len(receipt.royalties) == len(POLICY.recipients) == 2
    assert count(registry.engine, transfers_t) == before[0] + 1
    # One TRANSFER entry logged, and the state commitment of its head (issue 14).
    assert count(registry.engine, entries_t) == before[1] + 2
    lines = royalty_lines_t.c
    assert count(registry.engine, royalty_lines_t) == len(POLICY.recipients)
    assert count(registry.engine, royalty_lines_t, lines.transfer_id == receipt.transfer_id) == 2
    assert count(registry.engine, attempts_t) == threads - 1  # each refusal kept once
    with registry.engine.connect() as conn:
        holding = conn.execute(select(holdings_t)).one()
    assert holding.consumed and holding.last_transfer_id == receipt.transfer_id
    # Consumed: not even its buyer can sell it on.
    with pytest.raises(GoodConsumed):
        registry.transfer(sale(code, party("cardhub", f"player-{index}"), party("cardhub", "z")))
    assert count(registry.engine, royalty_lines_t) == len(POLICY.recipients)


def test_threat_46_the_unique_constraint_alone_catches_the_race(
    registry: Registry,
    code: bytes,  # noqa: F811
    racers: Callable[[int], list[Registry]],
) -> None:
    """NOTE: a fault injection. The loser's read of the holder is made to miss the winner's
    committed first sale (what READ COMMITTED allows without the log's lock); the holdings
    primary key then decides alone: 409, and the loser's transfer, entry, tree head and
    royalty rows all roll back."""
    (late,) = racers(1)
    winner = registry.transfer(sale(code, CREATOR, party("cardhub", "agent-7")))
    missed = []

    @event.listens_for(late.engine, "before_cursor_execute", retval=True)
    def _miss(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> Any:
        if not missed and statement.lstrip().startswith("SELECT") and "FROM holdings" in statement:
            missed.append(statement)
            statement += " AND 1 = 0"
        return statement, params

    before = {
        table.name: count(registry.engine, table)
        for table in (transfers_t, entries_t, records_t, royalty_lines_t, holdings_t)
    }
    size = tree_size(registry)
    with pytest.raises(DoubleSale) as refused:
        late.transfer(sale(code, CREATOR, party("keyshop", "u1"), platform="keyshop"))
    assert missed, "the injected read never ran"
    assert status_of(refused.value) == 409 and "just transferred" in refused.value.detail
    assert isinstance(refused.value.__cause__, Exception)
    assert (
        "unique" in str(refused.value.__cause__).lower()
        or "duplicate" in str(refused.value.__cause__).lower()
    )
    after = {
        table.name: count(registry.engine, table)
        for table in (transfers_t, entries_t, records_t, royalty_lines_t, holdings_t)
    }
    assert after == before and tree_size(registry) == size
    with registry.engine.connect() as conn:
        holding = conn.execute(select(holdings_t)).one()
    assert holding.last_transfer_id == winner.transfer_id and holding.holder_platform == "cardhub"


# -- THREATS 48 -----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_threat_48_retries_are_bounded_and_jittered(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction PostgreSQL keeps aborting (40001) is tried ``WRITE_ATTEMPTS`` times, with
    a random pause below a doubling bound between tries, then its error goes to the caller."""
    engine = create_db_engine(postgres_url)
    pauses: list[float] = []
    monkeypatch.setattr(db.time, "sleep", pauses.append)
    tries = []

    def always_aborted() -> None:
        tries.append(1)
        with db.write_transaction(engine) as conn:
            conn.execute(text("DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40001'; END $$"))

    try:
        runs = 6
        for _ in range(runs):
            with pytest.raises(DBAPIError) as raised:
                retrying(always_aborted)
            assert db._sqlstate(raised.value) == "40001"
    finally:
        engine.dispose()
    assert db.WRITE_ATTEMPTS >= 2
    assert len(tries) == runs * db.WRITE_ATTEMPTS
    assert len(pauses) == runs * (db.WRITE_ATTEMPTS - 1)  # no pause after the last try
    per_run = db.WRITE_ATTEMPTS - 1
    for run in range(runs):
        for attempt, pause in enumerate(pauses[run * per_run : (run + 1) * per_run], start=1):
            assert 0 <= pause <= 0.02 * 2**attempt
    # Jitter: the pauses are drawn, not fixed (six runs never draw one value twice).
    assert len(set(pauses)) == len(pauses)


def _behind_a_concurrent_insert(url: str, row: dict[str, Any], operation: Callable[[], Any]) -> Any:
    """Run ``operation`` while another transaction holds an uncommitted ``records`` row; that
    transaction commits 0.3 s later, while ``operation``'s insert of the same (signer, nonce)
    waits on it (PostgreSQL's unique index; SQLite's write lock). Its result or exception."""
    other = create_db_engine(url)
    holding_row, release = threading.Event(), threading.Event()

    def first_writer() -> None:
        with db.write_transaction(other) as conn:
            conn.execute(records_t.insert().values(**row))
            holding_row.set()
            release.wait(30)

    def commit_first() -> None:
        time.sleep(0.3)
        release.set()

    writer = threading.Thread(target=first_writer)
    writer.start()
    try:
        assert holding_row.wait(30)
        _, result = race([commit_first, operation])
    finally:
        release.set()
        writer.join(30)
        other.dispose()
    return result


def test_threat_48_a_concurrent_unique_violation_is_a_409_not_a_retry(
    db_url: str,
    registry: Registry,
    creator: CreatorKeys,
    clock: Clock,
) -> None:
    """A concurrent insert of the same (signer, nonce) commits first: ours fails on the
    unique index (23505 on PostgreSQL). The retry helper lets it through at once (it is an
    answer, not bad luck), and the use case answers 409 NonceReused, leaving nothing behind."""

    def row(nonce: int) -> dict[str, Any]:
        return {
            "primary_type": "Registration",
            "signer": bytes.fromhex(creator.address[2:]),
            "nonce": nonce,
            "deadline": clock() + 600,
            "payload": "{}",
            "payload_hash": bytes(32),
            "created_at": datetime.fromtimestamp(clock(), UTC),
        }

    # 1. The helper itself, given the raw unique violation.
    nonce, attempts = secrets.randbits(62), []

    def insert_again() -> None:
        attempts.append(1)
        with db.write_transaction(registry.engine) as conn:
            conn.execute(records_t.insert().values(**row(nonce)))

    raw = _behind_a_concurrent_insert(db_url, row(nonce), lambda: retrying(insert_again))
    assert isinstance(raw, IntegrityError), raw
    if registry.engine.dialect.name == "postgresql":
        assert db._sqlstate(raw) == "23505"
    assert attempts == [1]

    # 2. The registration use case under the helper: one attempt, a 409, nothing written.
    nonce, attempts = secrets.randbits(62), []
    request = with_nonce(creator, fingerprint=secrets.token_bytes(32), nonce=nonce, now=clock())
    before = (count(registry.engine, entries_t), count(registry.engine, records_t))

    def register() -> Any:
        attempts.append(1)
        return registry.register(request)

    result = _behind_a_concurrent_insert(db_url, row(nonce), lambda: retrying(register))
    assert isinstance(result, NonceReused), result
    assert status_of(result) == 409
    if registry.engine.dialect.name == "postgresql":
        assert db._sqlstate(result.__cause__) == "23505"  # type: ignore[arg-type]
    assert attempts == [1]
    assert count(registry.engine, entries_t) == before[0]
    assert count(registry.engine, records_t) == before[1] + 1  # the first writer's alone


# -- THREATS 50 -----------------------------------------------------------------------------------


def _setting(engine: Engine, name: str) -> Any:
    with db.write_transaction(engine) as conn:
        if engine.dialect.name == "sqlite":
            return conn.exec_driver_sql(f"PRAGMA {name}").scalar()
        return conn.exec_driver_sql(f"SHOW {name}").scalar()


def test_threat_50_acknowledged_writes_wait_for_the_disk(registry: Registry) -> None:
    """The engine that writes acknowledged records commits only after fsync: SQLite
    ``synchronous=FULL`` in WAL; PostgreSQL ``fsync``, ``synchronous_commit`` and
    ``full_page_writes`` on. The telemetry engine's relaxed settings never reach it."""
    engine = registry.engine
    telemetry = create_telemetry_engine(engine)
    try:
        if engine.dialect.name == "sqlite":
            assert _setting(telemetry, "synchronous") == 1  # NORMAL: telemetry may lag
            assert _setting(engine, "synchronous") == 2  # FULL
            assert _setting(engine, "journal_mode") == "wal"
        else:
            assert _setting(telemetry, "synchronous_commit") == "off"
            for name in ("fsync", "synchronous_commit", "full_page_writes"):
                assert _setting(engine, name) == "on", name
    finally:
        telemetry.dispose()


CONFIRMATIONS = 2
ANCHOR_POLICY = AnchorPolicy(max_entries=1, max_age_seconds=0, confirmations=CONFIRMATIONS)


def _schema(url: str) -> str:
    options = parse_qs(urlsplit(url).query)["options"][0]
    return options.removeprefix("-csearch_path=")


def _pg_args() -> list[str]:
    parts = urlsplit(POSTGRES_URL.replace("+psycopg", ""))
    return [
        f"--host={parts.hostname}",
        f"--port={parts.port or 5432}",
        f"--username={parts.username}",
        f"--dbname={parts.path.lstrip('/')}",
    ]


class Backups:
    """Backups of the registry's database and their restore, the way an operator does it:
    SQLite's online backup API; ``pg_dump -Fc`` of the schema and ``pg_restore`` over it."""

    def __init__(self, url: str, directory: Path) -> None:
        self.url = url
        self.directory = directory

    def take(self, name: str) -> Path:
        target = self.directory / name
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self._sqlite_path()) as source, sqlite3.connect(target) as copy:
                source.backup(copy)
        else:
            subprocess.run(
                [
                    "pg_dump",
                    *_pg_args(),
                    "-Fc",
                    f"--schema={_schema(self.url)}",
                    f"--file={target}",
                ],
                check=True,
                capture_output=True,
            )
        return target

    def restore(self, backup: Path) -> None:
        if self.url.startswith("sqlite"):
            with sqlite3.connect(backup) as source, sqlite3.connect(self._sqlite_path()) as live:
                source.backup(live)
            return
        admin = create_db_engine(POSTGRES_URL)
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {_schema(self.url)} CASCADE"))
        admin.dispose()
        subprocess.run(["pg_restore", *_pg_args(), str(backup)], check=True, capture_output=True)

    def _sqlite_path(self) -> str:
        return self.url.removeprefix("sqlite:///")


def _fresh(registry: Registry, url: str, clock: Clock) -> Registry:
    """The registry process started again on the (restored) database: same key, new engine."""
    registry.engine.dispose()
    return Registry(
        create_db_engine(url),
        domain=DEV_DOMAIN,
        account=registry.account,
        master_key=secrets.token_bytes(32),
        clock=clock,
    )


def _anchor(worker: AnchorWorker, anvil: DevChain) -> None:
    worker.run_until_idle()
    anvil.rpc("anvil_mine", hex(CONFIRMATIONS))
    worker.run_until_idle()


def _anchors(registry: Registry) -> list[tuple[int, str]]:
    with registry.engine.connect() as conn:
        rows = conn.execute(text("SELECT tree_size, state FROM anchors ORDER BY tree_size"))
        return [(int(size), state) for size, state in rows]


def _grow(registry: Registry, keys: CreatorKeys, clock: Clock, n: int) -> int:
    for _ in range(n):
        registry.register(registration(keys, clock()))
    head = registry.sequence_all()
    assert head is not None
    return head.tree_size


def test_threat_50_a_restore_older_than_the_chain_refuses_then_a_newer_backup_reconciles(
    db_url: str,
    engine: Engine,
    registry: Registry,
    chain: Chain,  # noqa: F811 - the fixture imported above
    devchain: DevChain,  # noqa: F811
    operator: LocalAccount,  # noqa: F811
    creator: CreatorKeys,
    clock: Clock,
    tmp_path: Path,
) -> None:
    backups = Backups(db_url, tmp_path)
    engine.dispose()
    empty = backups.take("empty")  # before anything was registered
    # Each head ends with its state commitment (issue 14): 3 entries make head 4.
    assert _grow(registry, creator, clock, 3) == 4
    _anchor(AnchorWorker(registry, chain, operator, ANCHOR_POLICY), devchain)
    assert _grow(registry, creator, clock, 2) == 7
    newer = backups.take("log-at-7")  # holds head 7, not its anchor
    _anchor(AnchorWorker(registry, chain, operator, ANCHOR_POLICY), devchain)
    assert chain.last_anchored()[0] == 7 and _anchors(registry) == [(4, "final"), (7, "final")]
    root_7 = chain.root_at(7)

    # 1. A restore older than the chain: the worker's loop refuses before it sends anything,
    #    even with a different log grown on the stale database since.
    backups.restore(empty)
    stale = _fresh(registry, db_url, clock)
    assert _grow(stale, creator, clock, 7) == 8
    sent = chain.nonce(operator.address)
    stop = threading.Event()
    deadline = threading.Timer(10, stop.set)  # a worker that did not refuse still ends
    deadline.start()
    with pytest.raises(ChainMismatch, match="restore the log from a newer backup"):
        run_anchoring(AnchorWorker(stale, chain, operator, ANCHOR_POLICY), interval=0.01, stop=stop)
    deadline.cancel()
    assert chain.nonce(operator.address) == sent and chain.last_anchored() == (7, root_7)
    assert _anchors(stale) == []

    # 2. The way back: the newer backup holds the chain's head. The worker adopts it (no
    #    transaction), a second reconcile changes nothing, and anchoring goes on from it.
    backups.restore(newer)
    restored = _fresh(stale, db_url, clock)
    worker = AnchorWorker(restored, chain, operator, ANCHOR_POLICY)
    assert worker.reconcile() == ["head 7 was anchored on chain but unknown here: adopted"]
    assert worker.reconcile() == []
    assert _anchors(restored) == [(4, "final"), (7, "final")]
    assert chain.nonce(operator.address) == sent
    assert worker.run_until_idle() == []  # nothing to re-anchor
    assert _grow(restored, creator, clock, 2) == 10
    _anchor(worker, devchain)  # the contract checks 7 -> 10's consistency proof
    head = restored.latest_tree_head()
    assert head is not None and chain.last_anchored() == (10, head.root)
    assert _anchors(restored)[-1] == (10, "final")
    assert count(restored.engine, entries_t, entries_t.c.kind == int(EntryKind.REGISTER)) == 7
    restored.engine.dispose()
