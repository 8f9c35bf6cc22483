"""The registry's use cases behind one facade: what the CLI and the API call.

Each method owns its transaction (STYLE 8); the modules it calls only flush. The clock is
injected so tests and the sequencer agree on time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import DBAPIError

from registry import (
    codekeys,
    entries,
    handover,
    log,
    registration,
    registrykeys,
    revocation,
    statecommit,
    telemetry,
    transfers,
)
from registry.batches import BatchCheck, BatchResult, Progress
from registry.checkpoints import CheckpointSigner
from registry.db import read_transaction, retrying, write_transaction
from registry.distribution import load_distribution, save_distribution
from registry.distribution_policy import Distribution, NotADistributor
from registry.eip712 import Domain
from registry.entries import GoodRecord
from registry.errors import ConfigurationError, TracemarkError
from registry.fingerprints import GoodType
from registry.logdesk import LogDesk
from registry.logkeys import LogNoteKeys, default_log_origin
from registry.opening import open_registry
from registry.orderdesk import OrderDesk
from registry.orders import GoodReserved
from registry.parties import REFERENCE_KEY_PURPOSE, ReferenceKeys
from registry.payoutdesk import PayoutDesk
from registry.rebatedesk import RebateDesk
from registry.receipts import TransferReceipt
from registry.records import checksum
from registry.registration import EntryRef
from registry.requests import RegistrationRequest, RevocationRequest
from registry.settings import Settings
from registry.signed import SignedMessage
from registry.statecommit import StateMapCache
from registry.statements import Period, Statement, royalty_statement
from registry.telemetry import VerificationRecord, VerificationStats
from registry.tilestore import TileCache
from registry.transferrequests import TransferRequest
from registry.treehead import TreeHead
from registry.witnesspolicy import WitnessPolicy

Clock = Callable[[], int]
logger = logging.getLogger("tracemark.registry")


#: Where a registry built without its settings (tests, benchmarks) says it is served.
DEV_PUBLIC_URL = "http://127.0.0.1:8000"


def system_clock() -> int:
    return int(time.time())


class Registry(OrderDesk, PayoutDesk, RebateDesk, LogDesk):
    """The registry on one database, with its signing key and EIP-712 domain (its orders'
    use cases are ``registry.orderdesk``, its reads of the log ``registry.logdesk``)."""

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
        state_map: bool = True,
        note_keys: LogNoteKeys | None = None,
        witness_policy: WitnessPolicy | None = None,
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
        #: The state map of goods, in memory, in step with the database (issue 14).
        self.state_cache = StateMapCache()
        # NOTE: ``state_map=False`` exists only for the benchmarks' peer (the same ingest
        # without the map, bench/): its heads carry no STATE_COMMITMENT, so no state proofs.
        # It is not a setting: a registry that mixed both on one log would sign heads that
        # prove nothing about the goods' states.
        self._committing: StateMapCache | None = self.state_cache if state_map else None
        #: The witnesses asked to cosign each checkpoint before it is published (issue 15);
        #: None: a checkpoint is published as soon as it is signed.
        self.witness_policy = witness_policy
        # NOTE: a registry built without note keys (tests, benchmarks) derives them from its
        # master key, so every head still gets its checkpoint; ``open`` loads the data dir's.
        keys = note_keys or LogNoteKeys.from_seeds(
            default_log_origin(DEV_PUBLIC_URL),
            self.derived_key("log-note/ed25519"),
            self.derived_key("log-note/ml-dsa-44"),
        )
        #: Signs each head's C2SP checkpoint in the head's transaction (``registry.checkpoints``).
        self.checkpoint_signer = CheckpointSigner(keys, witnessed=witness_policy is not None)

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock = system_clock) -> Registry:
        """The composition root: data dir, keys, database (migrated to head); see
        ``registry.opening``."""
        return open_registry(cls, settings, clock=clock)

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
                state_map=self._committing,
                checkpoint_signer=self.checkpoint_signer,
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

    def enroll_code_key(self, signed: SignedMessage, code_key: bytes) -> codekeys.CodeKeyResult:
        with write_transaction(self.engine) as conn:
            return codekeys.enroll_code_key(
                conn, signed, code_key, self.domain, self._master_key, now=self.clock()
            )

    def retire_code_key(self, signed: SignedMessage) -> codekeys.CodeKeyResult:
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
        check: BatchCheck | None = None,
    ) -> BatchResult:
        return self._sequenced_batch(
            lambda conn, now: registration.register_batch(
                conn, request, fingerprints, self.domain, now=now, progress=progress
            ),
            check,
        )

    def revoke(self, request: RevocationRequest) -> EntryRef:
        with write_transaction(self.engine) as conn:
            return revocation.revoke_good(conn, request, self.domain, now=self.clock())

    def revoke_batch(
        self,
        request: RevocationRequest,
        fingerprints: Iterable[bytes],
        *,
        progress: Progress | None = None,
        check: BatchCheck | None = None,
    ) -> BatchResult:
        return self._sequenced_batch(
            lambda conn, now: revocation.revoke_batch(
                conn, request, fingerprints, self.domain, now=now, progress=progress
            ),
            check,
        )

    def _sequenced_batch(
        self, write: Callable[[Connection, int], BatchResult], check: BatchCheck | None
    ) -> BatchResult:
        """A bulk batch, which goes straight into the log (no queue), and the head it leads
        to, signed in the same transaction at the sequencer's time. The result's
        ``tree_size`` is that head's (its state commitment included). ``check`` runs last,
        in the same transaction: if it raises, nothing of the batch is written."""
        with write_transaction(self.engine) as conn:
            now = log.sequencer_time(conn, self.clock())
            with statecommit.leaves_from_batches(conn, self._committing):
                result = write(conn, now)
            log.publish_tree_head(
                conn,
                account=self._signing_account(conn),
                domain=self.domain,
                now=now,
                state_map=self._committing,
                checkpoint_signer=self.checkpoint_signer,
            )
            result = replace(result, tree_size=log.tree_size(conn))
            if check is not None:
                check(conn, result)
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
                    state_map=self._committing,
                    checkpoint_signer=self.checkpoint_signer,
                )

        try:
            return retrying(attempt)
        except (
            transfers.DoubleSale,
            transfers.GoodConsumed,
            transfers.GoodRevoked,
            GoodReserved,
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
        with read_transaction(self.engine) as conn:
            return entries.goods_of(conn, creator, after=after, limit=limit)

    def record_verifications(self, records: Sequence[VerificationRecord]) -> None:
        with write_transaction(self.engine) as conn:
            telemetry.record_verifications(conn, records)

    def verification_stats(self, good_type: GoodType, fingerprint: bytes) -> VerificationStats:
        with read_transaction(self.engine) as conn:
            return telemetry.verification_stats(conn, int(good_type), fingerprint)

    def royalty_statement(
        self, creator: bytes, *, since: int, until: int, period: Period
    ) -> Statement:
        with read_transaction(self.engine) as conn:
            return royalty_statement(conn, creator, since=since, until=until, period=period)

    # -- the sequencer ----------------------------------------------------------------------

    def sequence(self, fence: Callable[[Connection], None] | None = None) -> TreeHead | None:
        """Integrate one batch of queued entries and sign the new head (one transaction).

        ``fence`` (``registry.lease.Lease.fence``) runs first in that transaction: it raises
        when this process no longer holds the sequencer's lease, and nothing is integrated.
        """
        with write_transaction(self.engine) as conn:
            if fence is not None:
                fence(conn)
            now = log.sequencer_time(conn, self.clock())
            integrated = log.integrate_queue(conn, limit=self.sequencer_batch_size, now=now)
            if integrated == 0:
                return None
            return log.publish_tree_head(
                conn,
                account=self._signing_account(conn),
                domain=self.domain,
                now=now,
                state_map=self._committing,
                checkpoint_signer=self.checkpoint_signer,
            )

    def sequence_all(self) -> TreeHead | None:
        """Drain the queue; returns the last head published, if any."""
        head = None
        while (published := self.sequence()) is not None:
            head = published
        return head
