"""The registry's tables, one module per concept; importing the package declares them all.

SQLModel declares them (so alembic and typed reads share one definition); the hot paths
(bulk ingest, sequencing, proof reads) go through SQLAlchemy Core on ``Model.__table__``.
Bytes are stored as bytes (fingerprints, hashes, addresses); hex lives only at the edges.
"""

from __future__ import annotations

# NOTE: columns sets the metadata's naming convention before any table exists; each table
# module imports it first (checkpoints sorts before it).
from registry.models.attestations import RealNameAttestationRow
from registry.models.checkpoints import CheckpointRecord, CheckpointWitness
from registry.models.columns import ID_TYPE
from registry.models.credit import CreditPlatformRow, CreditSellerRow
from registry.models.facevalues import FaceValueSettingRow
from registry.models.identity import CreatorIdentityRow
from registry.models.leases import RoleLease
from registry.models.log import BatchTile, Entry, LogState, TreeHeadRecord, TreeTile
from registry.models.orders import Order, OrderChange, OrderReservation
from registry.models.payouts import Payout, PayoutLine
from registry.models.platformkeys import PlatformKeyRow
from registry.models.rebates import RebateAgent, RebateAgentChange, RebatePolicy, RebateTree
from registry.models.receipts import DeliveryReceiptRow
from registry.models.records import CodeKey, Product, RegistryKey, SignedRecord
from registry.models.risk import ProbeFlagRow, RiskGood, RiskSignal, RiskState
from registry.models.signalhistory import SignalHistoryRow
from registry.models.transfers import (
    DistributionPolicy,
    Holding,
    RoyaltyLine,
    Transfer,
    TransferAttempt,
    TransferAuthorization,
)
from registry.models.verifications import (
    EventIndexState,
    VerificationCount,
    VerificationEvent,
    VerificationEventByGood,
    VerificationFoldState,
)

__all__ = [
    "ID_TYPE",
    "BatchTile",
    "CheckpointRecord",
    "CheckpointWitness",
    "CodeKey",
    "CreatorIdentityRow",
    "CreditPlatformRow",
    "CreditSellerRow",
    "DeliveryReceiptRow",
    "DistributionPolicy",
    "Entry",
    "EventIndexState",
    "FaceValueSettingRow",
    "Holding",
    "LogState",
    "Order",
    "OrderChange",
    "OrderReservation",
    "Payout",
    "PayoutLine",
    "PlatformKeyRow",
    "ProbeFlagRow",
    "Product",
    "RealNameAttestationRow",
    "RebateAgent",
    "RebateAgentChange",
    "RebatePolicy",
    "RebateTree",
    "RegistryKey",
    "RiskGood",
    "RiskSignal",
    "RiskState",
    "RoleLease",
    "RoyaltyLine",
    "SignalHistoryRow",
    "SignedRecord",
    "Transfer",
    "TransferAttempt",
    "TransferAuthorization",
    "TreeHeadRecord",
    "TreeTile",
    "VerificationCount",
    "VerificationEvent",
    "VerificationEventByGood",
    "VerificationFoldState",
]
