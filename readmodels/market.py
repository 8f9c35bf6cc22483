"""The market as the fraud signals see it: plain records of entries, transfers, refused
attempts, holdings and verifications (pure: no database, no web framework).

The rules (``readmodels.rules``) and the anomaly score (``readmodels.anomaly``) are functions
over these records, so a test hands them records made by hand, while the API's risk index and
the scenario benchmark read them from the database (``readmodels.marketreads.read_inputs``).
``Chains`` answers who held a good when, from its accepted transfers.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from registry.distribution_policy import NotADistributor
from registry.fingerprints import Use
from registry.transferrequests import (
    AuthorizationRefused,
    DoubleSale,
    GoodConsumed,
    GoodRevoked,
    NotTheHolder,
)

#: A good as the rules key it: (good_type value, fingerprint bytes).
GoodKey = tuple[int, bytes]

#: The platform name verification events carry for unauthenticated callers.
ANONYMOUS: Final = "anonymous"
#: Refusal reasons of a recorded transfer attempt: ``registry.transfers`` records the code of
#: the error it refused the transfer with, so the rules read each code from its error class.
REFUSED_DOUBLE_SALE: Final = DoubleSale.code
REFUSED_REVOKED: Final = GoodRevoked.code
REFUSED_CONSUMED: Final = GoodConsumed.code
REFUSED_NOT_DISTRIBUTOR: Final = NotADistributor.code
#: A platform named another platform's holder as its seller without that platform's consent
#: (``not-the-holder``), or presented a hand-over authorization that did not hold.
REFUSED_NOT_THE_HOLDER: Final = NotTheHolder.code
REFUSED_AUTHORIZATION: Final = AuthorizationRefused.code


# -- records ---------------------------------------------------------------------------------


class OfGood:
    """A record about one good: ``good`` is its key as the rules use it."""

    __slots__ = ()
    good_type: int
    fingerprint: bytes

    @property
    def good(self) -> GoodKey:
        return (self.good_type, self.fingerprint)


@dataclass(frozen=True, slots=True)
class FaceSetting:
    """One setting of a product's face value (``face_value_history``, migration 0034): in
    force for the sales made after ``set_at`` (strictly: a sale in the same second may have
    been made before it), until the product's next setting. ``value`` None: cleared."""

    set_at: int
    value: int | None
    currency: str | None


def face_in_force(faces: Sequence[FaceSetting], at: int) -> FaceSetting | None:
    """The face value a sale made at ``at`` is judged by: the last setting made before that
    second (``faces`` in ``set_at`` order); None if none was, or the last one cleared it."""
    found = None
    for face in faces:
        if face.set_at >= at:
            break
        found = face
    return None if found is None or found.value is None else found


@dataclass(frozen=True, slots=True)
class EntryRecord(OfGood):
    """An entry of the log (REGISTER, REVOKE, TRANSFER, CONFLICT) with its good's ``use``."""

    entry_id: int
    kind: int
    good_type: int
    fingerprint: bytes
    actor: bytes
    leaf_index: int | None
    timestamp: int | None
    #: The signed record it came from: for a bulk batch, the batch.
    record_id: int
    #: Position in the bulk batch (None for a single registration).
    position: int | None
    use: int
    #: Its product's face value settings, oldest first (migration 0034): the
    #: ``below-face-value`` laundering rule judges each sale by the one in force when it was
    #: made (``face_in_force``), never by a later one. Shared by the product's goods.
    faces: tuple[FaceSetting, ...] = ()
    #: Its product's id (None: no product), to re-read the face values when they change.
    product_id: int | None = None


@dataclass(frozen=True, slots=True)
class TransferRecord(OfGood):
    """An accepted transfer. Parties are ``(platform, reference hash)``; None is the creator."""

    transfer_id: int
    good_type: int
    fingerprint: bytes
    creator: bytes
    #: The platform that reported it.
    platform: str
    seller_platform: str | None
    seller_ref: bytes | None
    buyer_platform: str
    buyer_ref: bytes
    price: int | None
    currency: str | None
    final: bool
    created_at: int

    @property
    def platforms(self) -> set[str]:
        """Every platform that took part: the reporter, the seller's and the buyer's."""
        found = {self.platform, self.buyer_platform}
        if self.seller_platform is not None:
            found.add(self.seller_platform)
        return found


@dataclass(frozen=True, slots=True)
class AttemptRecord(OfGood):
    """A transfer the registry refused (double sale, revoked, consumed) and recorded."""

    attempt_id: int
    at: int
    platform: str
    good_type: int
    fingerprint: bytes
    seller_platform: str | None
    seller_ref: bytes | None
    buyer_platform: str
    buyer_ref: bytes
    price: int | None
    final: bool
    reason: str
    earlier_transfer_id: int | None


@dataclass(frozen=True, slots=True)
class HoldingRecord(OfGood):
    good_type: int
    fingerprint: bytes
    holder_platform: str
    consumed: bool
    last_transfer_id: int


@dataclass(frozen=True, slots=True)
class VerificationEventRecord(OfGood):
    """One verification event: who asked (``anonymous`` without a key), how, the answer."""

    event_id: int
    at: int
    platform: str
    good_type: int
    fingerprint: bytes
    via: str
    verdict: str

    @property
    def failed_code_lookup(self) -> bool:
        return self.via == "code" and self.verdict == "unknown"


def single_use_verifications(
    verifications: Iterable[VerificationEventRecord], registrations: Mapping[GoodKey, EntryRecord]
) -> Iterator[VerificationEventRecord]:
    """The verifications a platform (not an anonymous caller) made of a registered
    single-use code, the ones the holder and velocity rules weigh."""
    for v in verifications:
        if v.platform == ANONYMOUS or v.verdict == "unknown":
            continue
        entry = registrations.get(v.good)
        if entry is not None and entry.use == int(Use.SINGLE):
            yield v


@dataclass(frozen=True, slots=True)
class ProbeFlag:
    """A key (``Principal.rate_key``) that ran out of its failed-probe budget: what the API's
    rate limiter flags (``api.ratelimit.RateLimiter.flags``) and the rules read.

    Times are the limiter's clock (Unix seconds by default); counts run from the flag on.
    """

    key: str
    first_at: float
    last_at: float
    #: Failed code lookups reported for this key since it was flagged.
    failed_probes: int
    #: Requests refused (429) for this key's probe budget since it was flagged.
    refused: int


@dataclass(frozen=True)
class SignalInputs:
    """Everything the rules read, for one period."""

    #: REGISTER entries of the goods the other records name.
    registrations: Mapping[GoodKey, EntryRecord] = field(default_factory=dict)
    conflicts: Sequence[EntryRecord] = ()
    transfers: Sequence[TransferRecord] = ()
    attempts: Sequence[AttemptRecord] = ()
    holdings: Mapping[GoodKey, HoldingRecord] = field(default_factory=dict)
    verifications: Sequence[VerificationEventRecord] = ()
    probe_flags: Sequence[ProbeFlag] = ()


# -- what happened to each good, from its transfers ----------------------------------------


class Chains:
    """Each good's accepted transfers in order, to ask who held it and who acquired it when."""

    def __init__(
        self, transfers: Iterable[TransferRecord], holdings: Mapping[GoodKey, HoldingRecord]
    ) -> None:
        by_good: dict[GoodKey, list[TransferRecord]] = defaultdict(list)
        for t in transfers:
            by_good[t.good].append(t)
        for chain in by_good.values():
            chain.sort(key=lambda t: (t.created_at, t.transfer_id))
        self.by_good: dict[GoodKey, list[TransferRecord]] = dict(by_good)
        self.holdings = holdings
        self._by_id = {t.transfer_id: t for chain in by_good.values() for t in chain}
        # (good, platform) -> when the platform first took part in a transfer of the good.
        self._first_dealt: dict[tuple[GoodKey, str], int] = {}
        for good, chain in self.by_good.items():
            for t in chain:
                for platform in t.platforms:
                    self._first_dealt.setdefault((good, platform), t.created_at)

    def transfer(self, transfer_id: int | None) -> TransferRecord | None:
        return None if transfer_id is None else self._by_id.get(transfer_id)

    def dealt_by(self, good: GoodKey, platform: str, until: int) -> bool:
        """Did ``platform`` take part in a transfer of ``good`` at or before ``until``?"""
        first = self._first_dealt.get((good, platform))
        return first is not None and first <= until

    def state_at(self, good: GoodKey, at: int) -> tuple[bool, str | None, bool]:
        """(moved, holder platform, consumed) just before ``at``."""
        chain = self.by_good.get(good, [])
        times = [t.created_at for t in chain]
        done = bisect.bisect_left(times, at)
        if done:
            last = chain[done - 1]
            return True, last.buyer_platform, last.final
        if chain:  # the earliest transfer we see was made by the holder of the time
            return chain[0].seller_platform is not None, chain[0].seller_platform, False
        holding = self.holdings.get(good)
        if holding is not None:  # it moved before the period we read
            return True, holding.holder_platform, holding.consumed
        return False, None, False


__all__ = [
    "ANONYMOUS",
    "REFUSED_AUTHORIZATION",
    "REFUSED_CONSUMED",
    "REFUSED_DOUBLE_SALE",
    "REFUSED_NOT_DISTRIBUTOR",
    "REFUSED_NOT_THE_HOLDER",
    "REFUSED_REVOKED",
    "AttemptRecord",
    "Chains",
    "EntryRecord",
    "FaceSetting",
    "GoodKey",
    "HoldingRecord",
    "OfGood",
    "ProbeFlag",
    "SignalInputs",
    "TransferRecord",
    "VerificationEventRecord",
    "face_in_force",
    "single_use_verifications",
]
