"""Revocations (one and batch) and code-key enrolment, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import os

import pytest
from sqlalchemy import Engine, text

from registry.codekeyring import key_commitment
from registry.codekeys import seal, unseal
from registry.codesfile import codes_source, prepare_code_batch
from registry.creator import CreatorKeys, sign_batch_revocation, sign_enrollment, sign_revocation
from registry.eip712 import DEV_DOMAIN
from registry.errors import ConfigurationError, InvalidInput, NotFound
from registry.fingerprints import GoodType
from registry.leaf import EntryKind
from registry.service import Registry
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import counts, registration
from tests.registry.test_registration import _batch, _batch_request, _codes


def _revocation(creator: CreatorKeys, now: int, fingerprint: bytes, reason: str = "leaked"):  # type: ignore[no-untyped-def]
    return sign_revocation(
        creator,
        DEV_DOMAIN,
        good_type=GoodType.FILE,
        fingerprint=fingerprint,
        reason=reason,
        now=now,
    )


def test_revoke_own_good_once(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    fingerprint = os.urandom(32)
    registry.register(registration(creator, clock(), fingerprint=fingerprint))
    entry = registry.revoke(_revocation(creator, clock(), fingerprint))
    assert (entry.kind, entry.status) == (EntryKind.REVOKE, "queued")
    before = counts(engine)
    again = registry.revoke(_revocation(creator, clock(), fingerprint))
    assert (again.entry_id, again.status) == (entry.entry_id, "already-revoked")
    assert counts(engine) == before
    registry.sequence_all()
    kinds = [e.kind for e in registry.history(GoodType.FILE, fingerprint)]
    assert kinds == [EntryKind.REGISTER, EntryKind.REVOKE]


def test_others_goods_and_unknown_goods_get_the_same_answer(
    registry: Registry, engine: Engine, make_creator: CreatorFactory, clock: Clock
) -> None:
    """THREATS 35: no oracle for what another creator registered."""
    owner, stranger = make_creator(), make_creator()
    theirs = os.urandom(32)
    registry.register(registration(owner, clock(), fingerprint=theirs))
    before = counts(engine)
    messages = []
    for fingerprint in (theirs, os.urandom(32)):
        with pytest.raises(NotFound) as caught:
            registry.revoke(_revocation(stranger, clock(), fingerprint))
        messages.append(caught.value.detail.replace(fingerprint.hex(), "<fp>"))
    assert messages[0] == messages[1]
    assert counts(engine) == before


def test_batch_revocation_of_leaked_codes(
    registry: Registry, engine: Engine, make_creator: CreatorFactory, clock: Clock
) -> None:
    owner, stranger = make_creator(), make_creator()
    codes = _codes(500)
    batch = _batch(owner, codes)
    registry.register_batch(_batch_request(owner, batch, clock()), batch.fingerprints())
    assert owner.code_key is not None
    leaked = prepare_code_batch(codes_source("\n".join(codes[100:200])), owner.code_key)
    request = sign_batch_revocation(
        owner, DEV_DOMAIN, leaked, good_type=GoodType.CODE, reason="leaked lot", now=clock()
    )
    result = registry.revoke_batch(request, leaked.fingerprints())
    # Each batch's head ends with its state commitment (issue 14): 501 + 100 + 1.
    assert (result.registered, result.tree_size) == (100, 602)
    # The stranger cannot revoke them: the batch is refused whole, with the item number.
    theirs = sign_batch_revocation(
        stranger, DEV_DOMAIN, leaked, good_type=GoodType.CODE, reason="grief", now=clock()
    )
    before = counts(engine)
    with pytest.raises(NotFound, match="item 1:"):
        registry.revoke_batch(theirs, leaked.fingerprints())
    assert counts(engine) == before


def test_code_key_enrolment_is_sealed_and_idempotent(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    assert creator.code_key is not None
    result = registry.enroll_code_key(
        sign_enrollment(creator, DEV_DOMAIN, now=clock()), creator.code_key
    )
    assert result.status == "enrolled" and result.key_commitment == key_commitment(creator.code_key)
    again = registry.enroll_code_key(
        sign_enrollment(creator, DEV_DOMAIN, now=clock()), creator.code_key
    )
    assert again.status == "already-enrolled"
    assert registry.code_key_of(bytes.fromhex(creator.address[2:])) == creator.code_key
    with engine.connect() as conn:
        stored = b"".join(
            bytes(v) for (v,) in conn.execute(text("SELECT sealed_key FROM code_keys"))
        )
        payloads = " ".join(p for (p,) in conn.execute(text("SELECT payload FROM signed_records")))
    assert creator.code_key not in stored, "the code key is never stored in clear"
    assert creator.code_key.hex() not in payloads
    # Another key for the same creator is added next to it (rotation, issue 11), never in
    # its place: codes registered under the first keep verifying.
    other = dataclasses.replace(creator, code_key=os.urandom(32))
    added = registry.enroll_code_key(
        sign_enrollment(other, DEV_DOMAIN, now=clock()), other.code_key or b""
    )
    assert added.status == "enrolled"
    address = bytes.fromhex(creator.address[2:])
    assert registry.code_keys_of(address) == [other.code_key, creator.code_key]
    # The commitment binds the key that travels with it.
    signed = sign_enrollment(creator, DEV_DOMAIN, now=clock())
    with pytest.raises(InvalidInput):
        registry.enroll_code_key(signed, os.urandom(32))


def test_sealed_code_keys_are_bound_to_master_key_and_creator() -> None:
    master, key = os.urandom(32), os.urandom(32)
    alice, bob = os.urandom(20), os.urandom(20)
    sealed = seal(master, alice, key)
    assert unseal(master, alice, sealed) == key
    with pytest.raises(ConfigurationError) as wrong_master:
        unseal(os.urandom(32), alice, sealed)
    with pytest.raises(ConfigurationError):
        unseal(master, bob, sealed)  # copied onto another creator's row
    assert key.hex() not in wrong_master.value.detail
