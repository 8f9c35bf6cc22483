"""The laundering patterns of issue 18 item 2, injected with their honest near misses into the
scenario's market (``bench.scenario``), each labelled with the rule it is for.

``LaunderMarket`` is the scenario's ``Market`` (its honest agent chains, launch day, onboarding,
file trades, refunds, redemption service and its own fraud) with, on top, products that carry a
face value in CNY and, per laundering rule, ``LaunderParams.cases`` injected patterns (a
``Case`` with ``positive=True``: the rule should name it) and as many honest near misses
(``positive=False``: the rule must stay quiet), plus an honest CNY retail trade. Everything
goes through the registry's own use cases, as the scenario's market does; a party's plain
reference is known here, and after the run ``Case.names`` holds the keyed hashes the registry
stored for it, which is how a signal about a party is matched to its case.

The patterns and their near misses (prices in yuan, 1 yuan = 100 minor units):

===================== ======================================== ================================
rule                  injected (variants)                      near miss
===================== ======================================== ================================
below-face-value      a resale at 20-50 % of face value, from  a resale at 85-97 % of face
                      the first holder or after an honest hop
fast-cash-out         registered, sold first-hand, resold and  the same path over 4-40 hours
                      redeemed (final) within 3-25 minutes
fan-in                6-12 first holders each selling their    a distributor buying as many
                      1-2 codes to one reseller within hours   codes from 2-3 first holders
buyer-daily-amount    one card above 1,000 yuan, or 12-17      one card at 950-990 yuan, or a
                      cards in a day above 10,000 yuan         day's cards at 9,000-9,900 yuan
round-trip            a code back to its first holder after    a code resold onward through
                      1, 2 or 3 other holders, prices flat     3-5 holders, never back
verify-per-purchase   12-30 verifications of a code bought     2-4 verifications per purchase
                      once or twice (most by the holder's
                      platform, some anonymous)
redeemed-elsewhere    bought on platform A, redeemed (final)   redeemed on the platform that
                      on platform B: unpriced, or sold to a    sold it
                      recycler at 80-95 % of what was paid
===================== ======================================== ================================

A near miss is the honest twin a rule must tell apart: it is labelled honest, and a signal on
it counts as a false positive. The purchases of one buyer-daily-amount case happen within six
hours of one UTC day that is also one Beijing day (01:00-15:00 UTC), so a calendar-day and a
rolling-24-hour rule see the same sums.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Final

from bench.scenario import (
    CODE,
    DAY,
    HOUR,
    START,
    Market,
    MarketParams,
    SimClock,
)
from readmodels.market import GoodKey
from registry.facevalue import FaceValue, set_face_value
from registry.fingerprints import GoodType
from registry.service import Registry
from registry.transfers import Party, TransferRequest

BELOW_FACE_VALUE: Final = "below-face-value"
FAST_CASH_OUT: Final = "fast-cash-out"
FAN_IN: Final = "fan-in"
BUYER_DAILY_AMOUNT: Final = "buyer-daily-amount"
ROUND_TRIP: Final = "round-trip"
VERIFY_PER_PURCHASE: Final = "verify-per-purchase"
REDEEMED_ELSEWHERE: Final = "redeemed-elsewhere"
#: The seven signal codes agreed with the rules (``readmodels``) and the compliance report.
LAUNDER_RULES: Final = (
    BELOW_FACE_VALUE,
    FAST_CASH_OUT,
    FAN_IN,
    BUYER_DAILY_AMOUNT,
    ROUND_TRIP,
    VERIFY_PER_PURCHASE,
    REDEEMED_ELSEWHERE,
)

CNY: Final = "CNY"
YUAN: Final = 100
MINUTE: Final = 60
#: Face values (yuan) of the CNY products: one product, and one creator, each.
FACES: Final = (50, 100, 500, 1_000, 2_000)
#: The platforms laundering and CNY retail happen on: the scenario's honest ones.
CN_PLATFORMS: Final = ("cardhub", "keyshop", "gamemart", "agentnet", "playmarket")


@dataclass(frozen=True)
class LaunderParams:
    """How much is injected per run: per rule, this many patterns and as many near misses."""

    cases: int = 8
    near_misses: int = 8
    #: Honest CNY retail: blocks a platform buys first-hand, sold one card a user.
    retail_blocks: int = 2


@dataclass
class Case:
    """One injected pattern (``positive``) or honest near miss, for one rule."""

    code: str
    positive: bool
    variant: str
    goods: set[GoodKey] = field(default_factory=set)
    parties: set[Party] = field(default_factory=set)
    #: After the run: (platform, keyed reference hash, hex) of each party, as records name it.
    names: set[tuple[str, str]] = field(default_factory=set)


class LaunderMarket(Market):
    """The scenario's market with the laundering patterns and their near misses added."""

    def __init__(
        self,
        params: MarketParams,
        seed: int,
        registry: Registry,
        clock: SimClock,
        launder: LaunderParams | None = None,
    ) -> None:
        super().__init__(params, seed, registry, clock)
        self.lp = launder or LaunderParams()
        self.cases: list[Case] = []
        self._refs = itertools.count()
        self.face_creator: dict[int, int] = {}
        for face in FACES:
            self.creators.append(self._keys())
            self.face_creator[face] = len(self.creators) - 1
        self.face_of_creator = {c: f for f, c in self.face_creator.items()}
        #: Registered stock per face value, handed out by ``_take``.
        self._stock: dict[int, list[bytes]] = {face: [] for face in FACES}
        self._faced: set[int] = set()

    # -- set-up -----------------------------------------------------------------------------

    def _batch(self, face: int, size: int, at: float) -> list[bytes]:
        """A bulk batch of the product of face value ``face``, registered at ``at``."""
        creator = self.face_creator[face]
        codes = self._codes(creator, size)
        self.batches.append(codes)
        self.batch_creator.append(creator)
        for code, fp in codes:
            self.code_of[fp] = code
            self.creator_index[fp] = creator
        self._at(at, "batch", len(self.batches) - 1)
        return [fp for _, fp in codes]

    def _take(self, face: int, n: int) -> list[bytes]:
        stock = self._stock[face]
        if len(stock) < n:
            stock.extend(self._batch(face, max(n, 60), START + 120 + len(self.batches)))
        taken, self._stock[face] = stock[:n], stock[n:]
        return taken

    def _do_batch(self, index: int) -> None:
        super()._do_batch(index)
        creator = self.batch_creator[index]
        if creator in self.face_of_creator and creator not in self._faced:
            self._faced.add(creator)
            self._set_face_value(creator, self.face_of_creator[creator] * YUAN)

    def _set_face_value(self, creator: int, face_value: int) -> None:
        # The creator's own use case (its signed-in session's route calls the same), at its
        # first batch: before any sale of its cards, which are judged by the face value in
        # force when they were made (migration 0034).
        address = bytes.fromhex(self.creators[creator].address[2:])
        face = FaceValue(face_value, CNY)
        set_face_value(self.registry.engine, address, f"card-{creator}", face, now=self.clock())

    def _party(self, role: str, platform: str | None = None) -> Party:
        return Party(platform or self.rng.choice(CN_PLATFORMS), f"{role}-{next(self._refs)}")

    def _other(self, *platforms: str | None) -> str:
        return self.rng.choice([p for p in CN_PLATFORMS if p not in platforms])

    def _when(self, lo: float = 2 * DAY, tail: float = 4 * DAY) -> float:
        return START + self._u(lo, self.p.days * DAY - tail)

    def _case(self, code: str, positive: bool, variant: str) -> Case:
        case = Case(code, positive, variant)
        self.cases.append(case)
        return case

    def _sale(
        self,
        case: Case | None,
        t: float,
        fp: bytes,
        seller: Party,
        buyer: Party,
        yuan: float | None,
        *,
        final: bool = False,
        lead: float = 900,
    ) -> None:
        """``buyer``'s platform verifies the code (up to ``lead`` seconds before) and reports
        buying it, with the seller's platform's consent when it is another one."""
        assert buyer.platform is not None
        self.verify(t - self._u(lead / 20, lead), buyer.platform, fp)
        request = TransferRequest(
            platform=buyer.platform,
            good_type=GoodType.CODE,
            fingerprint=fp,
            seller=seller,
            buyer=buyer,
            price=None if yuan is None else round(yuan * YUAN),
            currency=None if yuan is None else CNY,
            final=final,
            idempotency_key=f"launder-{next(self._transfer_keys)}",
        )
        tag = "honest" if case is None or not case.positive else "launder"
        self._at(t, "transfer", request, tag, True)
        if case is not None:
            case.goods.add((CODE, fp))
            case.parties.update(p for p in (seller, buyer) if p.platform is not None)

    def _first_hand(
        self, case: Case | None, t: float, fp: bytes, buyer: Party, face: float, lead: float = 900
    ) -> None:
        self._sale(case, t, fp, Party(None, None), buyer, face * self._u(0.96, 1.0), lead=lead)

    # -- planning ---------------------------------------------------------------------------

    def plan(self) -> None:
        super().plan()
        for positive, count in ((True, self.lp.cases), (False, self.lp.near_misses)):
            for _ in range(count):
                self._below_face(positive)
                self._cash_out(positive)
                self._fan_in(positive)
                self._daily_amount(positive)
                self._round_trip(positive)
                self._verify_per_purchase(positive)
                self._redeemed_elsewhere(positive)
        for _ in range(self.lp.retail_blocks):
            self._cny_retail()

    def _below_face(self, positive: bool) -> None:
        rng = self.rng
        face = rng.choice((50, 100, 500))
        hop = rng.random() < 0.3
        case = self._case(BELOW_FACE_VALUE, positive, "after-a-hop" if hop else "first-holder")
        seller, buyer = self._party("mule"), self._party("taker")
        t = self._when()
        for fp in self._take(face, rng.randint(1, 3)):
            holder = seller
            self._first_hand(case, t, fp, seller, face)
            at = t + self._u(2 * HOUR, DAY)
            if hop:
                holder = self._party("agent", self._other(seller.platform))
                self._sale(case, at, fp, seller, holder, face * self._u(0.98, 1.03))
                at += self._u(2 * HOUR, DAY)
            share = self._u(0.2, 0.5) if positive else self._u(0.85, 0.97)
            self._sale(case, at, fp, holder, buyer, face * share)
            t += self._u(60, 1_800)

    def _cash_out(self, positive: bool) -> None:
        rng = self.rng
        face = rng.choice((100, 500))
        resales = rng.randint(1, 2)
        case = self._case(FAST_CASH_OUT, positive, f"{resales}-resales")
        t = self._when()
        for fp in self._batch(face, rng.randint(1, 2), t):
            at = t
            holder = self._party("dist")
            # Each platform checks the code just before buying (after the previous hop).
            lead = 50 if positive else 900
            for hop in range(resales + 2):
                at += self._u(MINUTE, 6 * MINUTE) if positive else self._u(HOUR, 12 * HOUR)
                if hop == 0:
                    self._first_hand(case, at, fp, holder, face, lead)
                    continue
                final = hop == resales + 1
                # Redeemed on the platform that sold it: nothing for redeemed-elsewhere.
                platform = holder.platform if final else self._other(holder.platform)
                buyer = self._party("end" if final else "cash", platform)
                price = face * self._u(0.98, 1.03)
                self._sale(case, at, fp, holder, buyer, price, final=final, lead=lead)
                holder = buyer

    def _fan_in(self, positive: bool) -> None:
        rng = self.rng
        face = rng.choice((50, 100))
        suppliers = rng.randint(6, 12) if positive else rng.randint(2, 3)
        case = self._case(FAN_IN, positive, "mules" if positive else "distributor")
        reseller = self._party("collector" if positive else "distributor")
        t = self._when()
        span = self._u(HOUR, 6 * HOUR)
        for i in range(suppliers):
            first = self._party("mule" if positive else "supplier")
            fps = self._take(face, rng.randint(1, 2) if positive else rng.randint(3, 5))
            bought = t - self._u(HOUR, DAY)
            for fp in fps:
                self._first_hand(case, bought, fp, first, face)
                bought += self._u(30, 300)
                at = t + span * (i + rng.random()) / suppliers
                self._sale(case, at, fp, first, reseller, face * self._u(0.97, 1.0))

    def _daily_amount(self, positive: bool) -> None:
        rng = self.rng
        one = rng.random() < 0.4
        variant = ("one-card" if one else "many-cards") + ("" if positive else "-just-under")
        case = self._case(BUYER_DAILY_AMOUNT, positive, variant)
        buyer = self._party("whale")
        day = START + rng.randint(2, self.p.days - 3) * DAY
        t = day + self._u(HOUR, 9 * HOUR)
        if one:
            face = 2_000 if positive else 1_000
            share = self._u(0.96, 1.0) if positive else self._u(0.95, 0.99)
            fp = self._take(face, 1)[0]
            self._sale(case, t, fp, Party(None, None), buyer, face * share)
            return
        # 1,000-yuan cards (none above the per-code limit) at a discount that brings the
        # day's total to the target: structuring just above, or honestly just below.
        target = self._u(11_000, 16_000) if positive else self._u(9_000, 9_900)
        cards = -(-int(target) // 990)
        for fp in self._take(1_000, cards):
            self._sale(case, t, fp, Party(None, None), buyer, target / cards)
            t += self._u(60, 6 * HOUR / cards)

    def _round_trip(self, positive: bool) -> None:
        rng = self.rng
        others = rng.choice((1, 2, 2, 3))
        variant = f"back-after-{others}" if positive else f"onward-{others + 1}"
        case = self._case(ROUND_TRIP, positive, variant)
        face = rng.choice((50, 100, 500))
        fp = self._take(face, 1)[0]
        first = self._party("holder")
        chain = [self._party("holder") for _ in range(others)]
        last = first if positive else self._party("holder")
        t = self._when()
        self._first_hand(case, t, fp, first, face)
        holder = first
        for buyer in [*chain, last]:
            # Not a refund: the way back takes days, and prices move both ways.
            t += self._u(8 * HOUR, 2 * DAY)
            self._sale(case, t, fp, holder, buyer, face * self._u(0.97, 1.03))
            holder = buyer

    def _verify_per_purchase(self, positive: bool) -> None:
        rng = self.rng
        purchases = rng.randint(1, 2)
        case = self._case(VERIFY_PER_PURCHASE, positive, f"{purchases}-purchases")
        face = rng.choice((50, 100, 500))
        fp = self._take(face, 1)[0]
        t = self._when()
        holder = self._party("buyer")
        self._first_hand(case, t, fp, holder, face)
        for purchase in range(purchases):
            if purchase:
                t += self._u(HOUR, DAY)
                buyer = self._party("buyer", self._other(holder.platform))
                self._sale(case, t, fp, holder, buyer, face * self._u(0.98, 1.03))
                holder = buyer
            # Besides the one check before buying: the holder's platform checks it again and
            # again (card testing), some checks come anonymously.
            checks = rng.randint(12, 30) if positive else rng.randint(1, 3)
            for _ in range(checks):
                at = t + self._u(10 * MINUTE, 2 * DAY)
                if positive and rng.random() < 0.25:
                    self._anonymous(at, fp)
                else:
                    assert holder.platform is not None
                    self.verify(at, holder.platform, fp, via=rng.choice(("code", "fingerprint")))
            t += 2 * DAY

    def _redeemed_elsewhere(self, positive: bool) -> None:
        rng = self.rng
        via_stock = rng.random() < 0.5
        priced = rng.random() < 0.5
        variant = ("via-stock" if via_stock else "first-hand") + ("" if priced else "-unpriced")
        case = self._case(REDEEMED_ELSEWHERE, positive, variant)
        face = rng.choice((50, 100, 500))
        fp = self._take(face, 1)[0]
        t = self._when()
        user = self._party("user")
        paid = face * self._u(0.99, 1.02)
        if via_stock:
            stock = self._party("stock", user.platform)
            self._first_hand(case, t - self._u(HOUR, 2 * DAY), fp, stock, face * 0.9)
            self._sale(case, t, fp, stock, user, paid)
        else:
            self._sale(case, t, fp, Party(None, None), user, paid)
        where = self._other(user.platform) if positive else user.platform
        redeemer = self._party("redeem", where)
        # Cashed out to a card-recycling (回收) account that redeems it: at a discount on
        # what the holder paid, or recorded as a redemption without a price. (An honest
        # retailer's final sale of an agent's code, issue 12's hand-over, sells at a markup:
        # the scenario's market is full of those.)
        price = paid * self._u(0.8, 0.95) if priced else None
        self._sale(case, t + self._u(HOUR, 3 * DAY), fp, user, redeemer, price, final=True)

    def _cny_retail(self) -> None:
        """Honest: a platform buys a block first-hand (a retailer's size: at most ~8,000 yuan
        a day) and sells the cards one by one to its users, who redeem them there."""
        rng = self.rng
        face = rng.choice((50, 100))
        platform = rng.choice(CN_PLATFORMS)
        stock = self._party("cn-stock", platform)
        t = self._when()
        for fp in self._take(face, rng.randint(15, 40)):
            self._sale(None, t, fp, Party(None, None), stock, face * self._u(0.88, 0.95))
            at = t + self._u(HOUR, 5 * DAY)
            self._sale(None, at, fp, stock, self._party("user", platform), face, final=True)
            t += self._u(30, 300)

    # -- after the run ----------------------------------------------------------------------

    def run(self) -> None:
        super().run()
        for case in self.cases:
            for party in case.parties:
                assert party.platform is not None and party.reference is not None
                ref = self.registry.reference_hash(party.platform, party.reference)
                case.names.add((party.platform, ref.hex()))


__all__ = [
    "BELOW_FACE_VALUE",
    "BUYER_DAILY_AMOUNT",
    "FAN_IN",
    "FAST_CASH_OUT",
    "LAUNDER_RULES",
    "REDEEMED_ELSEWHERE",
    "ROUND_TRIP",
    "VERIFY_PER_PURCHASE",
    "Case",
    "LaunderMarket",
    "LaunderParams",
]
