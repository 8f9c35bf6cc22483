"""The registry's use cases behind one facade: what the CLI (and later the API) call.

Each method owns its transaction (STYLE 8); the modules it calls only flush. The clock is
injected so tests and the sequencer agree on time.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import DBAPIError

from registry import (
    codekeys,
    handover,
    log,
    registration,
    registrykeys,
    revocation,
    transfers,
    verifications,
)
from registry.audit import LogReport, check_log
from registry.batches import BatchResult, Progress
from registry.db import create_db_engine, read_transaction, retrying, write_transaction
from registry.distribution import load_distribution, save_distribution
from registry.distribution_policy import Distribution, NotADistributor
from registry.eip712 import Domain
from registry.errors import ConfigurationError, InvalidInput, NotFound, TracemarkError
from registry.fingerprints import GoodType, fingerprint_hex
from registry.keyring import (
    ensure_private_dir,
    load_or_create_master_key,
    load_or_create_registry_key,
    load_registry_key,
)
from registry.leaf import NO_GOOD, EntryKind, encode_leaf
from registry.log import TreeHead, entries_t
from registry.parties import REFERENCE_KEY_PURPOSE, ReferenceKeys
from registry.records import checksum, records_t
from registry.registration import EntryRef
from registry.requests import RegistrationRequest, RevocationRequest
from registry.settings import Settings
from registry.signed import SignedMessage
from registry.statements import Period, Statement, royalty_statement
from registry.tilestore import TileCache
from registry.transfers import TransferReceipt, TransferRequest
from registry.verifications import VerificationRecord, VerificationStats

Clock = Callable[[], int]
logger = logging.getLogger("tracemark.registry")


def system_clock() -> int:
    return int(time.time())


@dataclass(frozen=True)
class BatchProof:
    """A fingerprint's place under a bulk batch's signed items root (RFC 9162 shape)."""

    items_root: bytes
    position: int
    count: int
    inclusion_proof: list[bytes]

    def as_dict(self) -> dict[str, Any]:
        return {
            "items_root": "0x" + self.items_root.hex(),
            "position": self.position,
            "count": self.count,
            "inclusion_proof": ["0x" + node.hex() for node in self.inclusion_proof],
        }


@dataclass(frozen=True)
class LoggedEntry:
    """A sequenced (or queued) entry with everything needed to rebuild its leaf."""

    entry_id: int
    leaf_index: int | None
    kind: EntryKind
    #: None for an entry about a subject, not a good (``leaf.SUBJECT_KINDS``: good_type 0).
    good_type: GoodType | None
    fingerprint: bytes
    actor: bytes
    payload_hash: bytes
    timestamp: int | None
    record_id: int
    position: int | None

    @classmethod
    def from_row(cls, row: Any) -> LoggedEntry:
        """An ``entries`` row (its mapping) as a ``LoggedEntry``."""
        return cls(
            entry_id=int(row["id"]),
            leaf_index=row["leaf_index"],
            kind=EntryKind(int(row["kind"])),
            good_type=GoodType(int(row["good_type"])) if row["good_type"] != NO_GOOD else None,
            fingerprint=bytes(row["fingerprint"]),
            actor=bytes(row["actor"]),
            payload_hash=bytes(row["payload_hash"]),
            timestamp=row["timestamp"],
            record_id=int(row["record_id"]),
            position=row["position"],
        )

    def leaf_data(self) -> bytes:
        if self.timestamp is None:
            raise NotFound("the entry is queued and has no leaf yet")
        return encode_leaf(
            int(self.kind),
            NO_GOOD if self.good_type is None else int(self.good_type),
            self.fingerprint,
            self.actor,
            self.payload_hash,
            self.timestamp,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "leaf_index": self.leaf_index,
            "kind": self.kind.name,
            "good_type": None if self.good_type is None else self.good_type.name.lower(),
            "fingerprint": fingerprint_hex(self.fingerprint),
            "actor": checksum(self.actor),
            "payload_hash": "0x" + self.payload_hash.hex(),
            "timestamp": self.timestamp,
            "batch_position": self.position,
        }


@dataclass(frozen=True)
class GoodRecord:
    """One of a creator's goods, as their list shows it."""

    entry_id: int
    good_type: GoodType
    fingerprint: bytes
    product: str | None
    leaf_index: int | None
    registered_at: int | None
    batch_position: int | None


class Registry:
    """The registry on one database, with its signing key and EIP-712 domain."""

    def __init__(
        self,
        engine: Engine,
        *,
        domain: Domain,
        account: LocalAccount,
        master_key: bytes,
        clock: Clock = system_clock,
        sequencer_batch_size: int = 1000,
        key_loader: Callable[[str], LocalAccount] | None = None,
    ) -> None:
        self.engine = engine
        self.domain = domain
        #: The key this process signs with: the registry's current key (``_signing_account``).
        self.account = account
        #: Loads another registry key by address, after a hand-over made elsewhere.
        self._key_loader = key_loader
        self._master_key = master_key
        self.clock = clock
        self.sequencer_batch_size = sequencer_batch_size
        #: Immutable tiles read for proofs, shared by this registry's read transactions.
        self.tile_cache = TileCache()
        #: Keys platforms' references are hashed under (``registry.parties``).
        self._reference_keys = ReferenceKeys(self.derived_key(REFERENCE_KEY_PURPOSE))

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock = system_clock) -> Registry:
        """The composition root: data dir, keys, database (migrated to head)."""
        from registry.migrate import upgrade

        ensure_private_dir(settings.data_dir)
        try:
            domain = settings.domain
        except InvalidInput as exc:
            raise ConfigurationError(
                f"TRACEMARK_CHAIN_ID / CONTRACT_ADDRESS: {exc.detail}"
            ) from exc
        master = settings.master_key.get_secret_value() if settings.master_key else None
        engine = create_db_engine(settings.resolved_database_url)
        upgrade(engine)
        data_dir = settings.data_dir
        first = load_or_create_registry_key(data_dir)
        with write_transaction(engine) as conn:
            registrykeys.adopt_first_key(conn, bytes.fromhex(first.address[2:]))
            current = registrykeys.current_key(conn)
        assert current is not None
        account = load_registry_key(data_dir, checksum(current))
        return cls(
            engine,
            domain=domain,
            account=account,
            master_key=load_or_create_master_key(data_dir, master),
            clock=clock,
            sequencer_batch_size=settings.sequencer_batch_size,
            key_loader=lambda address: load_registry_key(data_dir, address),
        )

    def _signing_account(self, conn: Connection) -> LocalAccount:
        """The registry's current key, read in the caller's transaction: a hand-over made by
        another process (``tracemark registry-key rotate``) is picked up before the next head,
        receipt or attestation is signed, never after."""
        current = registrykeys.current_key(conn)
        mine = bytes.fromhex(self.account.address[2:])
        if current is None:
            # A database made without ``Registry.open`` (tests): this key is the first.
            registrykeys.adopt_first_key(conn, mine)
            return self.account
        if current != mine:
            if self._key_loader is None:
                raise ConfigurationError(
                    f"the registry's signing key is now {checksum(current)}, not "
                    f"{self.account.address}; restart with that key"
                )
            self.account = self._key_loader(checksum(current))
        return self.account

    def rotate_key(self, new: LocalAccount) -> registrykeys.Handover:
        """Hand the signing key over to ``new`` (one transaction; see ``registrykeys``)."""
        with write_transaction(self.engine) as conn:
            handover = registrykeys.hand_over(
                conn,
                old=self._signing_account(conn),
                new=new,
                domain=self.domain,
                now=self.clock(),
                batch_size=self.sequencer_batch_size,
            )
        self.account = new
        return handover

    def key_periods(self) -> list[registrykeys.KeyPeriod]:
        """Every registry key and the head sizes it signs, oldest first."""
        with read_transaction(self.engine) as conn:
            periods = registrykeys.key_periods(conn)
        if not periods:
            return [registrykeys.KeyPeriod(bytes.fromhex(self.address[2:]), 1, None, None)]
        return periods

    @property
    def address(self) -> str:
        return str(self.account.address)

    def derived_key(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (e.g. signing session tokens), derived from the master
        key with HKDF so that no two uses ever share key material."""
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"tracemark/" + purpose.encode()
        ).derive(self._master_key)

    # -- creators ---------------------------------------------------------------------------

    def enroll_code_key(self, signed: SignedMessage, code_key: bytes) -> codekeys.EnrollmentResult:
        with write_transaction(self.engine) as conn:
            return codekeys.enroll_code_key(
                conn, signed, code_key, self.domain, self._master_key, now=self.clock()
            )

    def retire_code_key(self, signed: SignedMessage) -> codekeys.RetirementResult:
        with write_transaction(self.engine) as conn:
            return codekeys.retire_code_key(conn, signed, self.domain, now=self.clock())

    def register(self, request: RegistrationRequest) -> EntryRef:
        with write_transaction(self.engine) as conn:
            return registration.register_good(conn, request, self.domain, now=self.clock())

    def register_batch(
        self,
        request: RegistrationRequest,
        fingerprints: Iterable[bytes],
        *,
        progress: Progress | None = None,
    ) -> BatchResult:
        with write_transaction(self.engine) as conn:
            now = log.sequencer_time(conn, self.clock())
            result = registration.register_batch(
                conn, request, fingerprints, self.domain, now=now, progress=progress
            )
            log.publish_tree_head(
                conn, account=self._signing_account(conn), domain=self.domain, now=now
            )
            return result

    def revoke(self, request: RevocationRequest) -> EntryRef:
        with write_transaction(self.engine) as conn:
            return revocation.revoke_good(conn, request, self.domain, now=self.clock())

    def revoke_batch(
        self,
        request: RevocationRequest,
        fingerprints: Iterable[bytes],
        *,
        progress: Progress | None = None,
    ) -> BatchResult:
        with write_transaction(self.engine) as conn:
            now = log.sequencer_time(conn, self.clock())
            result = revocation.revoke_batch(
                conn, request, fingerprints, self.domain, now=now, progress=progress
            )
            log.publish_tree_head(
                conn, account=self._signing_account(conn), domain=self.domain, now=now
            )
            return result

    def code_key_of(self, creator: bytes) -> bytes:
        with read_transaction(self.engine) as conn:
            return codekeys.code_key_of(conn, creator, self._master_key)

    def code_keys_of(self, creator: bytes) -> list[bytes]:
        """The creator's live code keys, unsealed, newest first (what a code lookup tries)."""
        with read_transaction(self.engine) as conn:
            return codekeys.live_code_keys(conn, creator, self._master_key)

    def code_keys_info(self, creator: bytes) -> list[codekeys.CodeKeyInfo]:
        """Every code key the creator enrolled, retired ones included, newest first."""
        with read_transaction(self.engine) as conn:
            return codekeys.code_keys_info(conn, creator)

    # -- platforms ---------------------------------------------------------------------------

    def transfer(self, request: TransferRequest) -> TransferReceipt:
        """Record a hand-over or sale (sequenced at once) and return the signed receipt."""

        def attempt() -> TransferReceipt:
            with write_transaction(self.engine) as conn:
                return transfers.record_transfer(
                    conn,
                    request,
                    account=self._signing_account(conn),
                    domain=self.domain,
                    keys=self._reference_keys,
                    now=self.clock(),
                )

        try:
            return retrying(attempt)
        except (
            transfers.DoubleSale,
            transfers.GoodConsumed,
            transfers.GoodRevoked,
            NotADistributor,
            handover.NotTheHolder,
        ) as refusal:
            self._record_refused(request, refusal)
            raise

    def _record_refused(self, request: TransferRequest, refusal: transfers.Refusal) -> None:
        """The refused transfer rolled back; keep a trace of it in a short transaction of its
        own (evidence for the fraud signals). Failing to keep it never changes the answer."""
        try:
            with write_transaction(self.engine) as conn:
                transfers.record_refused(
                    conn, request, refusal, keys=self._reference_keys, now=self.clock()
                )
        except (TracemarkError, DBAPIError):
            logger.warning("a refused transfer was not recorded (%s)", refusal.code)

    def authorize_handover(self, request: handover.HandoverRequest) -> handover.IssuedAuthorization:
        """The holding platform's one-time consent that ``request.buyer_platform`` may move the
        good (``registry.handover``): the token is in the answer and nowhere else."""
        with write_transaction(self.engine) as conn:
            return handover.issue_authorization(
                conn, request, keys=self._reference_keys, now=self.clock()
            )

    def reference_hash(self, platform: str, reference: str) -> bytes:
        """The stored (keyed) hash of a platform's reference: what entries and traces show."""
        return self._reference_keys.reference_hash(platform, reference)

    def distribution(self, creator: bytes) -> Distribution:
        """Who may sell the creator's goods first-hand (``registry.distribution``)."""
        with read_transaction(self.engine) as conn:
            return load_distribution(conn, creator)

    def set_distribution(
        self, creator: bytes, *, restricted: bool, platforms: Iterable[str]
    ) -> Distribution:
        with write_transaction(self.engine) as conn:
            return save_distribution(conn, creator, restricted, platforms, self.clock())

    def receipt(self, transfer_id: int) -> TransferReceipt:
        with read_transaction(self.engine) as conn:
            return transfers.load_receipt(conn, transfer_id, self.domain)

    def transfer_ids(
        self,
        platform: str,
        *,
        after: int,
        limit: int,
        good: tuple[GoodType, bytes] | None = None,
    ) -> list[int]:
        """Ids of the transfers a platform reported, oldest first, after a cursor."""
        c = transfers.transfers_t.c
        query = select(c.id).where(c.platform == platform, c.id > after)
        if good is not None:
            query = query.where(c.good_type == int(good[0]), c.fingerprint == good[1])
        with read_transaction(self.engine) as conn:
            return [int(i) for i in conn.execute(query.order_by(c.id).limit(limit)).scalars()]

    def goods_of(self, creator: bytes, *, after: int, limit: int) -> list[GoodRecord]:
        """A creator's registered goods (REGISTER entries), oldest first, after a cursor."""
        c = entries_t.c
        products = registration.products_t.c
        query = (
            select(
                c.id,
                c.good_type,
                c.fingerprint,
                c.leaf_index,
                c.timestamp,
                c.position,
                products.slug,
            )
            .outerjoin(registration.products_t, products.id == c.product_id)
            .where(c.kind == int(EntryKind.REGISTER), c.actor == creator, c.id > after)
            .order_by(c.id)
            .limit(limit)
        )
        with read_transaction(self.engine) as conn:
            return [
                GoodRecord(
                    entry_id=int(row.id),
                    good_type=GoodType(int(row.good_type)),
                    fingerprint=bytes(row.fingerprint),
                    product=row.slug,
                    leaf_index=row.leaf_index,
                    registered_at=row.timestamp,
                    batch_position=row.position,
                )
                for row in conn.execute(query)
            ]

    def record_verifications(self, records: Sequence[VerificationRecord]) -> None:
        with write_transaction(self.engine) as conn:
            verifications.record_verifications(conn, records)

    def verification_stats(self, good_type: GoodType, fingerprint: bytes) -> VerificationStats:
        with read_transaction(self.engine) as conn:
            return verifications.verification_stats(conn, int(good_type), fingerprint)

    def royalty_statement(
        self, creator: bytes, *, since: int, until: int, period: Period
    ) -> Statement:
        with read_transaction(self.engine) as conn:
            return royalty_statement(conn, creator, since=since, until=until, period=period)

    # -- the sequencer ----------------------------------------------------------------------

    def sequence(self) -> TreeHead | None:
        """Integrate one batch of queued entries and sign the new head (one transaction)."""
        with write_transaction(self.engine) as conn:
            now = log.sequencer_time(conn, self.clock())
            integrated = log.integrate_queue(conn, limit=self.sequencer_batch_size, now=now)
            if integrated == 0:
                return None
            return log.publish_tree_head(
                conn, account=self._signing_account(conn), domain=self.domain, now=now
            )

    def sequence_all(self) -> TreeHead | None:
        """Drain the queue; returns the last head published, if any."""
        head = None
        while (published := self.sequence()) is not None:
            head = published
        return head

    # -- reading the log --------------------------------------------------------------------

    def latest_tree_head(self) -> TreeHead | None:
        with read_transaction(self.engine) as conn:
            return log.latest_tree_head(conn)

    def tree_head(self, size: int) -> TreeHead:
        with read_transaction(self.engine) as conn:
            head = log.tree_head_at(conn, size)
        if head is None:
            raise NotFound(f"no signed tree head of size {size}")
        return head

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        with read_transaction(self.engine) as conn:
            return log.inclusion_proof(conn, leaf_index, tree_size, self.tile_cache)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        with read_transaction(self.engine) as conn:
            return log.consistency_proof(conn, size1, size2, self.tile_cache)

    def entry_at(self, leaf_index: int) -> LoggedEntry:
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(entries_t).where(entries_t.c.leaf_index == leaf_index)
            ).first()
        if row is None:
            raise NotFound(f"the log has no leaf {leaf_index}")
        return LoggedEntry.from_row(row._mapping)

    def batch_proof(self, entry: LoggedEntry) -> BatchProof:
        """For a good registered (or revoked) in a bulk batch: the proof that the creator's one
        signature over the batch's items root covers this very fingerprint (DESIGN.md,
        "Proof bundle", ``batch_proof``)."""
        if entry.position is None:
            raise NotFound("the entry was not part of a bulk batch")
        with read_transaction(self.engine) as conn:
            payload = conn.execute(
                select(records_t.c.payload).where(records_t.c.id == entry.record_id)
            ).scalar_one()
            message = json.loads(payload)["signed"]["message"]
            count = int(message["count"])
            proof = log.batch_inclusion_proof(conn, entry.record_id, entry.position, count)
        return BatchProof(
            items_root=bytes.fromhex(message["itemsRoot"][2:]),
            position=entry.position,
            count=count,
            inclusion_proof=proof,
        )

    def check_log(self) -> LogReport:
        """Rebuild the whole log from its entries and compare with tiles and signed heads."""
        with read_transaction(self.engine) as conn:
            return check_log(conn, self.address)

    def history(self, good_type: GoodType, fingerprint: bytes) -> list[LoggedEntry]:
        """Every entry naming the good, in log order (queued ones last)."""
        c = entries_t.c
        good = (c.good_type == int(good_type), c.fingerprint == fingerprint)
        # NOTE: "kind = 1" and "kind <> 1" as written terms, so that SQLite uses the two
        # partial indexes; without a condition on kind it scans the whole table.
        with read_transaction(self.engine) as conn:
            rows = [
                *conn.execute(select(entries_t).where(*good, text("kind = 1"))).all(),
                *conn.execute(select(entries_t).where(*good, text("kind <> 1"))).all(),
            ]
        rows.sort(key=lambda r: (r.leaf_index is None, r.leaf_index or 0, r.id))
        return [LoggedEntry.from_row(row._mapping) for row in rows]
