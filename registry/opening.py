"""Opening a registry from its settings: the data dir, keys and database behind one process.

``Registry.open`` (``registry.service``) is the public entry point and delegates here: this
is the composition root's half that touches files and migrates, kept apart from the use cases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry import checkpoints, log, registrykeys
from registry.db import create_db_engine, write_transaction
from registry.errors import ConfigurationError, InvalidInput
from registry.keyring import (
    ensure_private_dir,
    load_or_create_master_key,
    load_or_create_registry_key,
    load_registry_key,
)
from registry.logkeys import load_log_note_keys
from registry.records import checksum
from registry.settings import Settings
from registry.witnesspolicy import load_witness_policy

if TYPE_CHECKING:
    from registry.service import Clock, Registry


def open_registry(cls: type[Registry], settings: Settings, *, clock: Clock) -> Registry:
    """The composition root: data dir, keys, database (migrated to head)."""
    from registry.migrate import upgrade

    ensure_private_dir(settings.data_dir)
    try:
        domain = settings.domain
    except InvalidInput as exc:
        raise ConfigurationError(f"TRACEMARK_CHAIN_ID / CONTRACT_ADDRESS: {exc.detail}") from exc
    master = settings.master_key.get_secret_value() if settings.master_key else None
    policy = load_witness_policy(settings.witness_policy)
    engine = create_db_engine(settings.resolved_database_url)
    upgrade(engine)
    data_dir = settings.data_dir
    first = load_or_create_registry_key(data_dir)
    note_keys = load_log_note_keys(data_dir, settings.resolved_log_origin)
    with write_transaction(engine) as conn:
        registrykeys.adopt_first_key(conn, bytes.fromhex(first.address[2:]))
        current = registrykeys.current_key(conn)
    assert current is not None
    account = load_registry_key(data_dir, checksum(current))
    registry = cls(
        engine,
        domain=domain,
        account=account,
        master_key=load_or_create_master_key(data_dir, master),
        clock=clock,
        sequencer_batch_size=settings.sequencer_batch_size,
        key_loader=lambda address: load_registry_key(data_dir, address),
        note_keys=note_keys,
        witness_policy=policy,
    )
    registry.payout_overdue_seconds = settings.payout_overdue_days * 86_400
    with write_transaction(engine) as conn:
        # A head signed before checkpoints existed gets one now (``checkpoints``); under
        # the log's lock, as a head is signed, so two processes starting never race.
        log.lock_log(conn)
        checkpoints.checkpoint_latest_head(conn, registry.checkpoint_signer, now=clock())
    return registry
