"""PostgreSQL's bulk path (registry.pgbulk): rows by binary COPY keep every rule an INSERT kept.

The batch tests of test_registration run on both databases and cover the ordinary rules
(conflicts, idempotent re-upload, repeats, rollback, leaves); these cover what only the COPY
path can get wrong: a unique violation raised inside COPY, the rows' exact columns, and the
work a batch runs while the server checks a COPY's rows (``copy_rows``' ``during``).
"""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Connection, Engine, MetaData, text
from sqlalchemy.exc import IntegrityError

from registry import pgbulk
from registry.batches import BatchIngest, Existing
from registry.codesfile import PreparedBatch, codes_source, prepare_code_batch
from registry.creator import CreatorKeys, sign_batch_registration
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.requests import RegistrationRequest
from registry.service import Registry
from registry.statemaptree import StateMap
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import NO_ROYALTY, counts, registration

# The COPY path is PostgreSQL's (SQLite inserts, with one writer: no such race), so these
# tests take the database fixtures' PostgreSQL half only.
ON_POSTGRES = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def _signed_batch(
    creator: CreatorKeys, n: int, now: int
) -> tuple[PreparedBatch, RegistrationRequest]:
    assert creator.code_key is not None
    batch = prepare_code_batch(
        codes_source("".join(f"RACE-{i:05d}\n" for i in range(n))), creator.code_key
    )
    request = sign_batch_registration(
        creator,
        DEV_DOMAIN,
        batch,
        good_type=GoodType.CODE,
        product="card",
        use=Use.SINGLE,
        royalty_policy=NO_ROYALTY,
        metadata={},
        now=now,
        new_product=True,
    )
    return batch, request


@ON_POSTGRES
def test_a_register_committed_between_lookup_and_copy_rolls_the_batch_back(
    registry: Registry,
    engine: Engine,
    make_creator: CreatorFactory,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another creator's REGISTER that commits after a chunk's lookup found the good free
    makes COPY hit the one-REGISTER-per-good index: SQLAlchemy's IntegrityError (as the
    INSERT path raised), nothing of the batch written; the rival's entry stands, and the
    batch sent again records a CONFLICT for that good."""
    owner, rival = make_creator(), make_creator()
    batch, request = _signed_batch(owner, 5_000, clock())
    prints = list(batch.fingerprints())
    lookup = BatchIngest.registered
    raced: list[bytes] = []

    def racing_lookup(ingest: BatchIngest, chunk: list[bytes]) -> dict[bytes, Existing]:
        found = lookup(ingest, chunk)
        if not raced and len(chunk) > 7:
            # Fault injection: the real race needs a commit inside a few microseconds.
            raced.append(chunk[7])
            registry.register(
                registration(
                    rival, clock(), fingerprint=chunk[7], good_type=GoodType.CODE, product="rival"
                )
            )
        return found

    monkeypatch.setattr(BatchIngest, "registered", racing_lookup)
    before = counts(engine)
    with pytest.raises(IntegrityError, match="uq_entries_registered_good"):
        registry.register_batch(request, iter(prints))
    after = counts(engine)
    # Only the rival's single registration (entry, record, product) is new.
    assert after["entries"] == before["entries"] + 1
    assert after["batch_tiles"] == before["batch_tiles"]
    assert after["tree_size"] == before["tree_size"]
    monkeypatch.setattr(BatchIngest, "registered", lookup)
    result = registry.register_batch(request, iter(prints))
    assert (result.registered, result.conflicts) == (4_999, 1)
    with engine.connect() as conn:
        kind = conn.execute(
            text("SELECT kind FROM entries WHERE fingerprint = :f AND actor = :a"),
            {"f": raced[0], "a": bytes.fromhex(owner.address[2:])},
        ).scalar_one()
    assert kind == int(EntryKind.CONFLICT)


@ON_POSTGRES
def test_copied_rows_hold_the_columns_an_insert_wrote(
    registry: Registry, engine: Engine, make_creator: CreatorFactory, clock: Clock
) -> None:
    """Every column of a copied entry, NULLs included (a revocation's product), read back."""
    owner = make_creator()
    batch, request = _signed_batch(owner, 300, clock())
    registry.register_batch(request, batch.fingerprints())
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT leaf_index, kind, good_type, actor, timestamp, position, product_id "
                "FROM entries WHERE kind = :k ORDER BY leaf_index"
            ),
            {"k": int(EntryKind.REGISTER)},
        ).all()
    assert [r.leaf_index for r in rows] == list(range(300))
    assert [r.position for r in rows] == list(range(300))
    assert {(r.kind, r.good_type, bytes(r.actor)) for r in rows} == {
        (int(EntryKind.REGISTER), int(GoodType.CODE), bytes.fromhex(owner.address[2:]))
    }
    assert len({r.timestamp for r in rows}) == 1 and rows[0].product_id is not None


def _in_flight(conn: Connection) -> bool:
    """Whether the connection's last statement is still unanswered (the server at work)."""
    pgconn = conn.connection.driver_connection.pgconn  # type: ignore[union-attr]
    return bool(pgconn.transaction_status == psycopg.pq.TransactionStatus.ACTIVE)


@ON_POSTGRES
def test_during_runs_once_the_rows_are_sent_and_before_the_answer(engine: Engine) -> None:
    """``during`` runs while the COPY is unanswered; the rows are all there after; a COPY
    that breaks the table's rules is still refused with SQLAlchemy's error after ``during``;
    an error of ``during`` is raised once the answer is read, and the connection is left
    able to roll back and go on."""
    columns = (
        "leaf_index",
        "kind",
        "good_type",
        "fingerprint",
        "actor",
        "payload_hash",
        "timestamp",
        "record_id",
    )
    scratch = entries_t.to_metadata(MetaData(), name="scratch_copy")
    seen: list[bool] = []
    with engine.connect() as conn:
        conn.execute(
            text(
                "CREATE TEMP TABLE scratch_copy (leaf_index bigint, kind smallint, "
                "good_type smallint, fingerprint bytea UNIQUE, actor bytea, "
                "payload_hash bytea, timestamp bigint, record_id bigint)"
            )
        )
        rows = [(i, 1, 1, i.to_bytes(32, "big"), bytes(20), bytes(32), 7, 1) for i in range(500)]

        def during() -> None:
            seen.append(_in_flight(conn))

        pgbulk.copy_rows(conn, scratch, columns, rows, during=during)
        assert seen == [True]
        assert conn.execute(text("SELECT count(*) FROM scratch_copy")).scalar_one() == 500
        conn.commit()
        conn.execute(text("SELECT 1"))  # SQLAlchemy's transaction, as a batch's is
        with pytest.raises(IntegrityError, match="scratch_copy_fingerprint_key"):
            pgbulk.copy_rows(conn, scratch, columns, rows[:3], during=during)
        assert seen == [True, True]
        conn.rollback()
        conn.execute(text("SELECT 1"))

        def failing() -> None:
            raise RuntimeError("the map's merge failed")

        with pytest.raises(RuntimeError, match="merge failed"):
            pgbulk.copy_rows(
                conn,
                scratch,
                columns,
                [(9_999, *rows[0][1:3], bytes(32), *rows[0][4:])],
                during=failing,
            )
        conn.rollback()
        assert conn.execute(text("SELECT count(*) FROM scratch_copy")).scalar_one() == 500


@ON_POSTGRES
def test_a_bulk_batch_merges_its_state_map_while_the_copy_is_checked(
    registry: Registry,
    engine: Engine,
    make_creator: CreatorFactory,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every chunk's merge into the live map runs inside its COPY (the server checking the
    rows meanwhile), and the batch's commitment is still the map of every good."""
    merged: list[bool] = []
    append = StateMap.append
    connections: list[Connection] = []
    copy_rows = pgbulk.copy_rows

    def watched_copy(conn, *args, **kwargs):  # type: ignore[no-untyped-def]
        connections[:] = [conn]
        return copy_rows(conn, *args, **kwargs)

    def watched_append(tree: StateMap, entries: list[tuple[bytes, int, bytes]]) -> None:
        merged.append(bool(connections) and _in_flight(connections[0]))
        append(tree, entries)

    monkeypatch.setattr(pgbulk, "copy_rows", watched_copy)
    monkeypatch.setattr(StateMap, "append", watched_append)
    owner = make_creator()
    batch, request = _signed_batch(owner, 9_000, clock())
    registry.register_batch(request, batch.fingerprints())
    # Three chunks (4,096 + 4,096 + 808): three merges, each inside its COPY.
    assert merged == [True, True, True]
    head = registry.latest_tree_head()
    assert head is not None and head.tree_size == 9_001
    proof = registry.state_proof(GoodType.CODE, list(batch.fingerprints())[-1], head.tree_size)
    assert proof is not None and proof.value is not None and proof.value.entry_count == 1
