"""Code-key rotation (issue 11): several keys a creator, retirement, and migration 0015; on
SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text

from registry.codekeyring import key_commitment, key_id
from registry.codekeys import MAX_LIVE_CODE_KEYS
from registry.creator import CreatorKeys, sign_enrollment, sign_retirement
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.errors import Conflict, NonceReused, NotFound
from registry.fingerprints import CodeFingerprinter, GoodType, Use
from registry.leaf import EntryKind
from registry.migrate import alembic_config, upgrade
from registry.service import Registry
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration


def _enrol(registry: Registry, keys: CreatorKeys, now: int) -> str:
    return registry.enroll_code_key(
        sign_enrollment(keys, DEV_DOMAIN, now=now), keys.require_code_key()
    ).status


def _register_code(registry: Registry, keys: CreatorKeys, now: int, code: str) -> bytes:
    fingerprint = CodeFingerprinter(keys.require_code_key()).fingerprint(code)
    registry.register(
        registration(
            keys,
            now,
            fingerprint=fingerprint,
            good_type=GoodType.CODE,
            product="card",
            use=Use.SINGLE,
            new_product=True,
        )
    )
    return fingerprint


def _retire(keys: CreatorKeys, commitment: bytes, now: int):  # type: ignore[no-untyped-def]
    return sign_retirement(keys, DEV_DOMAIN, key_commitment=commitment, now=now)


def test_key_id_is_the_commitments_first_eight_bytes() -> None:
    key = bytes(range(32))
    assert key_id(key_commitment(key)) == key_commitment(key)[:8].hex()
    assert len(key_id(key_commitment(key))) == 16


def test_rotate_then_retire(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    address = bytes.fromhex(creator.address[2:])
    first = creator
    second = dataclasses.replace(creator, code_key=os.urandom(32))
    assert _enrol(registry, first, clock()) == "enrolled"
    old_fp = _register_code(registry, first, clock(), "OLD-0001")
    clock.advance(1)
    # A different key with a fresh CodeKeyEnrollment adds a key (no conflict): the current one.
    assert _enrol(registry, second, clock()) == "enrolled"
    assert _enrol(registry, second, clock()) == "already-enrolled"
    assert registry.code_keys_of(address) == [second.code_key, first.code_key]
    assert registry.code_key_of(address) == second.code_key
    registry.sequence_all()
    history_before = registry.history(GoodType.CODE, old_fp)

    retirement = _retire(creator, key_commitment(first.require_code_key()), clock())
    assert registry.retire_code_key(retirement).status == "retired"
    # Not tried any more; its sealed copy is gone; its goods keep every entry.
    assert registry.code_keys_of(address) == [second.code_key]
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                text("SELECT key_commitment, sealed_key FROM code_keys WHERE creator = :c"),
                {"c": address},
            ).all()
        )
    assert bytes(rows[key_commitment(first.require_code_key())]) == b""
    assert len(bytes(rows[key_commitment(second.require_code_key())])) > 32
    assert registry.history(GoodType.CODE, old_fp) == history_before
    assert [e.kind for e in history_before] == [EntryKind.REGISTER]
    listed = registry.code_keys_info(address)
    assert [k.kid for k in listed] == [
        key_id(key_commitment(second.require_code_key())),
        key_id(key_commitment(first.require_code_key())),
    ]
    assert listed[0].retired_at is None and listed[1].retired_at == clock()

    # The same signed retirement again is a replay; a fresh one is idempotent.
    with pytest.raises(NonceReused):
        registry.retire_code_key(retirement)
    again = _retire(creator, key_commitment(first.require_code_key()), clock())
    assert registry.retire_code_key(again).status == "already-retired"
    # A retired key is never enrolled again (its copy is gone for a reason).
    with pytest.raises(Conflict):
        _enrol(registry, first, clock())
    # Retiring the last live key is allowed: no code lookups until another is enrolled.
    last = _retire(creator, key_commitment(second.require_code_key()), clock())
    assert registry.retire_code_key(last).status == "retired"
    assert registry.code_keys_of(address) == []
    with pytest.raises(NotFound):
        registry.code_key_of(address)


def test_retiring_a_key_one_does_not_hold_is_not_found(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    owner, stranger = make_creator(), make_creator()
    _enrol(registry, owner, clock())
    theirs = key_commitment(owner.require_code_key())
    # Signed by another creator: it names the owner's key, but the signer holds no such key.
    with pytest.raises(NotFound):
        registry.retire_code_key(_retire(stranger, theirs, clock()))
    with pytest.raises(NotFound):
        registry.retire_code_key(_retire(owner, os.urandom(32), clock()))
    assert registry.code_keys_of(bytes.fromhex(owner.address[2:])) == [owner.code_key]


def test_live_keys_are_capped(registry: Registry, creator: CreatorKeys, clock: Clock) -> None:
    keys = [
        dataclasses.replace(creator, code_key=os.urandom(32)) for _ in range(MAX_LIVE_CODE_KEYS)
    ]
    for keyed in keys:
        assert _enrol(registry, keyed, clock()) == "enrolled"
    extra = dataclasses.replace(creator, code_key=os.urandom(32))
    with pytest.raises(Conflict, match="retire one"):
        _enrol(registry, extra, clock())
    registry.retire_code_key(_retire(creator, key_commitment(keys[0].require_code_key()), clock()))
    assert _enrol(registry, extra, clock()) == "enrolled"


def test_migration_0015_keeps_every_code_key_and_goes_down(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'm.db'}")
    command.upgrade(alembic_config(engine), "0014")
    with engine.begin() as conn:
        for n in range(3):
            conn.execute(
                text(
                    "INSERT INTO signed_records (id, primary_type, signer, nonce, deadline,"
                    " payload, payload_hash, created_at)"
                    " VALUES (:id, 'CodeKeyEnrollment', :s, :id, 9, '{}', :h, '2026-01-01')"
                ),
                {"id": n + 1, "s": bytes([n]) * 20, "h": secrets.token_bytes(32)},
            )
            conn.execute(
                text("INSERT INTO code_keys VALUES (:c, :k, :sealed, :id, '2026-01-01 00:00:00')"),
                {"c": bytes([n]) * 20, "k": bytes([n]) * 32, "sealed": b"x" * 60, "id": n + 1},
            )
    upgrade(engine)
    with engine.connect() as conn:
        kept = conn.execute(
            text("SELECT creator, key_commitment, retired_at FROM code_keys ORDER BY record_id")
        ).all()
    assert [(bytes(c), bytes(k), r) for c, k, r in kept] == [
        (bytes([n]) * 20, bytes([n]) * 32, None) for n in range(3)
    ]
    command.downgrade(alembic_config(engine), "0014")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM code_keys")).scalar_one() == 3
    engine.dispose()
