"""A labelled fraud scenario: a simulated market written into a real registry, with piracy and
fraud injected and their ground truth kept, and the signals scored against it.

Run: ``.venv/bin/python -m bench.scenario`` (full size: 10^5 codes a run, ~4 min each on the
2-core machine; tunes on the tuning seeds, then scores the thresholds *frozen in*
``readmodels.signals.Thresholds`` on held-out seeds and parameter mixes; writes
``bench/results/signals.json``), ``--small`` (~2k codes a run, ~10 s each; prints only),
``--tune-only`` (print the tuned thresholds, to freeze them), ``--cache DIR`` (keep each run's
records and reuse them: re-scoring after a change to the rules needs no new simulation).

The market (``MarketParams``): code creators selling bulk batches, file creators, honest
platforms at several agent levels (a wholesaler buys blocks of codes from the creators, agents
two levels deep resell them, retailers sell them to end users, who check them anonymously),
a platform that checks codes bought at physical shops (it verifies codes it never acquires,
all day long), honest file trades with buy-backs, refunds, platforms retrying a report without
an Idempotency-Key, typos in code lookups, declined offers, post-sale support lookups, and two
honest bursts as hard negatives: a launch-day sale (a retailer sells a new batch in one day)
and a new platform's first wholesale purchase. Everything goes through the registry's own use
cases: ``Registry.register_batch`` for bulk batches, ``Registry.transfer`` for every transfer
(refusals included), ``Registry.record_verifications`` for verification events, and code
lookups through the API's own ``RateLimiter`` (whose probing flags feed the rules). An injected
clock runs three weeks in minutes.

Injected (``Injection``, each with the subjects it involves and, per signal, the subjects a
perfect detector of that signal would flag): a leaked batch listed by pirate platforms (then
revoked, then offered for sale), a card-draining bot (a platform key, one IP or many IPs),
a double seller (lists codes on three platforms, sells each twice, re-offers consumed ones),
a laundering ring (goods going round a few parties at rising prices) and a pirate creator
re-registering another creator's files.

Scoring: per signal, precision = fired subjects that belong to any injection / fired
subjects; recall = expected subjects fired / expected subjects; a run "finds every pattern"
when every injection has at least one signal naming one of its subjects or goods.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import hashlib
import itertools
import pickle
import random
import secrets
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from eth_account import Account
from sqlalchemy import Engine, event

from api.ratelimit import CODE_LOOKUP, RateLimited, RateLimiter
from bench.common import save
from readmodels import holderrules, market, rules, velocityrules
from readmodels import signals as S
from readmodels.anomaly import good_features, platform_features, score_population
from readmodels.market import GoodKey, SignalInputs
from readmodels.marketreads import read_inputs
from readmodels.riskindex import RiskIndex, flags_from
from readmodels.riskstate import RiskState
from registry import merkle
from registry.codesfile import PreparedBatch
from registry.creator import (
    CreatorKeys,
    sign_batch_registration,
    sign_registration,
    sign_revocation,
)
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.errors import NotFound
from registry.fingerprints import CodeFingerprinter, GoodType, Use
from registry.handover import HandoverRequest, NotTheHolder
from registry.migrate import upgrade
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
from registry.telemetry import VerificationRecord as Telemetry
from registry.transfers import DoubleSale, GoodConsumed, GoodRevoked, Party, TransferRequest

START = 1_790_000_000
HOUR = 3_600
DAY = 86_400
CODE = int(GoodType.CODE)
FILE = int(GoodType.FILE)
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
POLICY = RoyaltyPolicy.parse(
    {"recipients": [{"address": "0x" + "5a" * 20, "bps": 500, "label": "studio"}]}
)

WHOLESALE = "cardhub"
AGENTS_1 = ("agentnet", "keyshop", "cardhub")
AGENTS_2 = ("agentnet", "gamemart", "keyshop")
RETAIL = ("keyshop", "gamemart", "playmarket")
ART = ("artmarket", "playmarket")
REDEEMER = "redeemer"
NEWSHOP = "newshop"
LAUNCH_SHOP = "gamemart"
PIRATES = ("shadowkeys", "darkcards", "greybay")
BOT_PLATFORM = "rogue-api"
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class MarketParams:
    """One market: its size, its honest behaviour, and what is injected."""

    codes: int = 100_000
    batches: int = 24
    code_creators: int = 3
    files: int = 300
    days: int = 21
    sold_codes: int = 1_500
    launch_sales: int = 800
    abandoned: float = 0.03
    onboarding: int = 300
    redeem_per_hour: float = 3.0
    anonymous_per_hour: float = 1.0
    typo_rate: float = 0.02
    declined: float = 0.03
    support: float = 0.05
    retries: float = 0.01
    refunds: float = 0.02
    file_chains: int = 100
    buy_back: float = 0.1
    anonymous_checks: float = 0.3
    # -- injected
    leak_codes: int = 150
    leak_platforms: int = 1
    leak_hours: float = 4.0
    leak_via_known_platform: bool = False
    leak_sale_attempts: int = 4
    bot: str = "key"  # key | ip | distributed
    bot_lookups: int = 1_500
    bot_hours: float = 1.0
    double_sold: int = 12
    ring_goods: int = 6
    ring_parties: int = 3
    ring_cycles: int = 3
    pirate_files: int = 8


FULL = MarketParams()
SMALL = MarketParams(
    codes=2_000,
    batches=6,
    files=40,
    days=14,
    sold_codes=80,
    launch_sales=80,
    onboarding=40,
    file_chains=10,
    leak_codes=60,
    bot_lookups=400,
    double_sold=5,
    ring_goods=4,
    pirate_files=4,
)

#: Parameter mixes (applied over FULL or SMALL). Tuning sees the first two only.
MIXES: dict[str, dict[str, Any]] = {
    "base": {},
    "tuning-ip-bot": {"bot": "ip", "ring_parties": 4, "ring_cycles": 2},
    "split-leak-busy-market": {
        "leak_platforms": 2,
        "launch_sales_factor": 1.5,
        "redeem_per_hour": 4.5,
        "anonymous_per_hour": 2.0,
        "typo_rate": 0.03,
        "double_sold_factor": 1.5,
        "bot_lookups_factor": 1.5,
        "bot_hours": 2.0,
        "ring_parties": 2,
        "ring_cycles": 3,
    },
    "distributed-bot-insider-leak": {
        "bot": "distributed",
        "leak_via_known_platform": True,
        "launch_sales_factor": 0.7,
        "ring_cycles": 4,
        "retries": 0.03,
        "declined": 0.05,
        "abandoned": 0.05,
        "leak_hours": 6.0,
        "bot_hours": 3.0,
    },
}
TUNING = ((101, "base"), (102, "tuning-ip-bot"))
HELD_OUT = ((201, "base"), (202, "split-leak-busy-market"), (203, "distributed-bot-insider-leak"))
TUNING_SEEDS = tuple(seed for seed, _ in TUNING)


def with_mix(base: MarketParams, mix: str) -> MarketParams:
    changes = dict(MIXES[mix])
    for name in ("launch_sales", "double_sold", "bot_lookups"):
        factor = changes.pop(f"{name}_factor", None)
        if factor is not None:
            changes[name] = max(1, round(getattr(base, name) * factor))
    return replace(base, **changes)


class SimClock:
    """The injected clock: Unix seconds that move only when the simulation moves them."""

    def __init__(self, now: int = START) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass
class Injection:
    """One injected pattern: every subject it involves, and per signal what should fire."""

    pattern: str
    name: str
    subjects: set[S.Subject] = field(default_factory=set)
    goods: set[GoodKey] = field(default_factory=set)
    expected: dict[str, set[S.Subject]] = field(default_factory=lambda: defaultdict(set))

    def expect(self, code: str, subject: S.Subject) -> None:
        self.expected[code].add(subject)
        self.subjects.add(subject)

    def add_good(self, good: GoodKey) -> None:
        self.goods.add(good)
        self.subjects.add(S.good_subject(good))


@dataclass
class ScenarioRun:
    """A finished run: what the rules read, the ground truth, and what happened."""

    seed: int
    mix: str
    params: MarketParams
    inputs: SignalInputs
    injections: list[Injection]
    now: int
    since: int
    stats: dict[str, Any]

    @property
    def fraud_subjects(self) -> set[S.Subject]:
        return set().union(*(i.subjects for i in self.injections))

    @functools.cached_property
    def chains(self) -> market.Chains:
        return market.Chains(self.inputs.transfers, self.inputs.holdings)


class Market:
    """Plans a market's actions in time order, then plays them against a real registry."""

    def __init__(self, params: MarketParams, seed: int, registry: Registry, clock: SimClock):
        self.p = params
        self.rng = random.Random(seed)
        self.registry = registry
        self.clock = clock
        self.limiter = RateLimiter(clock=lambda: float(clock.now))
        self.horizon = START + params.days * DAY
        self.actions: list[tuple[int, int, str, tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._transfer_keys = itertools.count()
        #: The hand-over authorization each honest request used, by its idempotency key.
        self._authorizations: dict[str, str] = {}
        self._users = itertools.count()
        self.injections: list[Injection] = []
        self.live: set[bytes] = set()
        self.revoked: set[bytes] = set()
        self.consumed: set[bytes] = set()
        self.telemetry: list[Telemetry] = []
        self.outcomes: Counter[str] = Counter()
        self.batch_records: dict[int, int] = {}
        rng = self.rng
        self.creators = [self._keys() for _ in range(params.code_creators)]
        self.file_creators = [self._keys() for _ in range(2)]
        self.pirate = self._keys()
        # Codes: per batch, (code, fingerprint); batches belong to code creators in turn.
        self.batches: list[list[tuple[str, bytes]]] = []
        self.batch_creator: list[int] = []
        sizes = self._split(params.codes, params.batches)
        for index, size in enumerate(sizes):
            creator = index % params.code_creators
            self.batches.append(self._codes(creator, size))
            self.batch_creator.append(creator)
        self.launch_batch = len(self.batches)
        self.batches.append(self._codes(0, int(params.launch_sales * 1.2) + 10))
        self.batch_creator.append(0)
        self.code_of = {fp: code for batch in self.batches for code, fp in batch}
        self.creator_index = {
            fp: self.batch_creator[i] for i, batch in enumerate(self.batches) for _, fp in batch
        }
        self.products: set[tuple[str, str]] = set()
        self.files = [(i % 2, rng.randbytes(32)) for i in range(params.files)]
        #: Files no trade has used yet: each trade chain (or ring) has its files to itself.
        self.free_files = [fp for _, fp in self.files]
        rng.shuffle(self.free_files)
        # The leaked batch is kept out of every honest use but the background lookups.
        self.leaked_batch = 1 % params.batches
        self.idle: list[bytes] = []
        self.bot_hits: set[bytes] = set()

    # -- set-up helpers -------------------------------------------------------------------

    def _keys(self) -> CreatorKeys:
        return CreatorKeys(Account.from_key(self.rng.randbytes(32)), self.rng.randbytes(32))

    def _split(self, total: int, parts: int) -> list[int]:
        weights = [self.rng.uniform(0.7, 1.3) for _ in range(parts)]
        sizes = [max(1, int(total * w / sum(weights))) for w in weights]
        sizes[-1] += total - sum(sizes)
        return sizes

    def _codes(self, creator: int, size: int) -> list[tuple[str, bytes]]:
        fingerprinter = CodeFingerprinter(self.creators[creator].require_code_key())
        out = []
        for _ in range(size):
            s = "".join(self.rng.choices(ALPHABET, k=16))
            code = f"{s[:4]}-{s[4:8]}-{s[8:12]}-{s[12:]}"
            out.append((code, fingerprinter.fingerprint(code)))
        return out

    def _u(self, lo: float, hi: float) -> float:
        return self.rng.uniform(lo, hi)

    def _user(self, platform: str) -> Party:
        return Party(platform, f"user-{next(self._users)}")

    def _price(self) -> int:
        return self.rng.choice((500, 1_000, 2_000, 5_000))

    # -- scheduling -----------------------------------------------------------------------

    def _at(self, t: float, kind: str, *data: Any) -> None:
        self.actions.append((int(t), next(self._seq), kind, data))

    def verify(
        self, t: float, platform: str, fp: bytes, *, via: str = "code", key: str | None = None
    ) -> None:
        """A platform (or an anonymous caller, ``key`` its IP) checks a good at ``t``."""
        good_type = CODE if fp in self.code_of else FILE
        key = key or f"key:{platform}"
        if via == "code" and self.rng.random() < self.p.typo_rate:
            self._at(t - self._u(5, 60), "verify", platform, key, CODE, self.rng.randbytes(32), via)
        self._at(t, "verify", platform, key, good_type, fp, via)

    def transfer(
        self,
        t: float,
        reporter: str,
        fp: bytes,
        seller: Party,
        buyer: Party,
        price: float | None,
        *,
        final: bool = False,
        tag: str = "honest",
        consent: bool | None = None,
    ) -> None:
        """``reporter`` reports a sale; when the seller is held on another platform, that
        platform consents (a one-time hand-over authorization, issue 12) if ``consent`` (by
        default: honest trades do, fraud does not)."""
        good_type = GoodType.CODE if fp in self.code_of else GoodType.FILE
        consent = tag == "honest" if consent is None else consent
        request = TransferRequest(
            platform=reporter,
            good_type=good_type,
            fingerprint=fp,
            seller=seller,
            buyer=buyer,
            price=None if price is None else int(price),
            currency=None if price is None else "EUR",
            final=final,
            # An honest platform retries with the same Idempotency-Key (and the same
            # authorization): the registry answers the recorded receipt again.
            idempotency_key=f"sim-{next(self._transfer_keys)}" if tag == "honest" else None,
        )
        self._at(t, "transfer", request, tag, consent)
        if tag == "honest" and self.rng.random() < self.p.retries:
            self._at(t + self._u(5, 300), "transfer", request, "retry", consent)

    # -- the honest market ----------------------------------------------------------------

    def plan(self) -> None:
        p, rng = self.p, self.rng
        for index in range(len(self.batches)):
            if index != self.launch_batch:
                self._at(START + 60 + index, "batch", index)
        for i, (creator, fp) in enumerate(self.files):
            self._at(START + self._u(HOUR, 2 * DAY), "file", self.file_creators[creator], fp, i)
        # Codes for each use, drawn from the regular batches (never the leaked one).
        regular = [i for i in range(len(self.batches)) if i not in (self.leaked_batch,)]
        regular.remove(self.launch_batch)
        pool = [fp for i in regular for _, fp in self.batches[i]]
        used: set[bytes] = set()

        def take_block(size: int) -> list[bytes]:
            for _ in range(100):
                batch = self.batches[rng.choice(regular)]
                if len(batch) <= size:
                    continue
                start = rng.randrange(len(batch) - size)
                block = [fp for _, fp in batch[start : start + size]]
                if not used.intersection(block):
                    used.update(block)
                    return block
            block = [fp for fp in pool if fp not in used][:size]
            used.update(block)
            return block

        sold = 0
        while sold < p.sold_codes:
            size = min(p.sold_codes - sold, rng.randint(40, 200))
            self._wholesale(take_block(size), START + self._u(0.3 * DAY, p.days * DAY - 5 * DAY))
            sold += size
        self._launch_day()
        self._onboarding(take_block(p.onboarding))
        self._file_trades()
        damaged = take_block(20)
        for fp in damaged:
            self._at(START + 3 * DAY + self._u(0, HOUR), "revoke", self._creator_of(fp), fp)
        # Injected patterns take their codes now; what is left is idle stock.
        self._leak()
        self._double_seller(take_block(p.double_sold))
        self._ring(take_block(max(1, p.ring_goods // 2)))
        self._pirate()
        self.idle = [fp for fp in pool if fp not in used]
        rng.shuffle(self.idle)
        self._bot()
        self._background()

    def _creator_of(self, fp: bytes) -> CreatorKeys:
        return self.creators[self.creator_index[fp]]

    def _wholesale(self, block: Sequence[bytes], t: float, *, to: str = WHOLESALE) -> None:
        """The wholesaler buys a block of codes from their creator, then they go down the
        agent levels to end users."""
        for fp in block:
            t += self._u(5, 30)
            self.verify(t, to, fp)
            bought = t + self._u(10, 120)
            price = self._price()
            self.transfer(bought, to, fp, Party(None, None), Party(to, "stock"), price)
            if to == WHOLESALE:
                self._chain(fp, Party(to, "stock"), bought, price)

    def _chain(self, fp: bytes, holder: Party, t: float, price: float) -> None:
        rng, p = self.rng, self.p
        end = self.horizon - DAY
        declined = False
        for level, (platforms, chance) in enumerate(((AGENTS_1, 0.85), (AGENTS_2, 0.6))):
            if rng.random() > chance:
                break
            nxt = t + self._u(3 * HOUR, 3 * DAY)
            if nxt > end:
                return
            buyer = Party(rng.choice(platforms), f"agent-{level}-{rng.randrange(40)}")
            if not declined and rng.random() < p.declined and nxt - t > 8 * HOUR:
                declined = True
                others = [
                    x for x in RETAIL + AGENTS_2 if x not in (holder.platform, buyer.platform)
                ]
                self.verify(self._u(t + 3 * HOUR, nxt - 3 * HOUR), rng.choice(others), fp)
            assert buyer.platform is not None
            self.verify(nxt - self._u(60, 1_800), buyer.platform, fp)
            price *= self._u(1.02, 1.06)
            self.transfer(nxt, buyer.platform, fp, holder, buyer, price)
            self._support(nxt, holder, fp)
            if rng.random() < p.refunds:
                back = nxt + self._u(HOUR, DAY)
                self.transfer(back, buyer.platform, fp, buyer, holder, price)
                nxt = back
                buyer = holder
            holder, t = buyer, nxt
        if rng.random() > 0.8:
            return
        final = t + self._u(HOUR, 4 * DAY)
        if final > end:
            return
        shop = rng.choice(RETAIL)
        self.verify(final - self._u(30, 900), shop, fp)
        self.transfer(
            final, shop, fp, holder, self._user(shop), price * self._u(1.02, 1.1), final=True
        )
        self._support(final, holder, fp)
        if rng.random() < p.anonymous_checks:
            self._anonymous(final + self._u(60, 2 * DAY), fp)

    def _support(self, t: float, seller: Party, fp: bytes) -> None:
        if seller.platform is not None and self.rng.random() < self.p.support:
            self.verify(t + self._u(600, DAY), seller.platform, fp, via="fingerprint")

    def _anonymous(self, t: float, fp: bytes) -> None:
        ip = f"ip:10.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(256)}"
        self.verify(t, ANONYMOUS, fp, key=ip)

    def _launch_day(self) -> None:
        """A new batch registered in the morning and sold by one retailer the same day."""
        p, rng = self.p, self.rng
        day = START + rng.randint(p.days // 3, p.days // 2) * DAY
        self._at(day + 8 * HOUR, "batch", self.launch_batch)
        codes = [fp for _, fp in self.batches[self.launch_batch]]
        rng.shuffle(codes)
        for i, fp in enumerate(codes[: int(p.launch_sales * (1 + p.abandoned))]):
            t = day + 9 * HOUR + 12 * HOUR * i / p.launch_sales + self._u(0, 60)
            self.verify(t, LAUNCH_SHOP, fp)
            if rng.random() < p.abandoned:
                continue
            user = self._user(LAUNCH_SHOP)
            self.transfer(
                t + self._u(30, 300), LAUNCH_SHOP, fp, Party(None, None), user, 1_000, final=True
            )
            if rng.random() < p.anonymous_checks:
                self._anonymous(t + self._u(600, DAY), fp)

    def _onboarding(self, block: Sequence[bytes]) -> None:
        """A new platform's first purchase: hundreds of codes verified and bought in an hour."""
        t = START + self.rng.randint(4, self.p.days - 4) * DAY + 10 * HOUR
        self._wholesale(block, t, to=NEWSHOP)

    def _file_trades(self) -> None:
        p, rng = self.p, self.rng
        for _ in range(p.file_chains):
            if not self.free_files:
                break
            fp = self.free_files.pop()
            t = START + self._u(3 * DAY, p.days * DAY - 6 * DAY)
            holder, price = Party(None, None), float(self._price())
            previous: Party | None = None
            for hop in range(rng.randint(1, 5)):
                t += self._u(6 * HOUR, 3 * DAY)
                if t > self.horizon - DAY:
                    break
                if previous is not None and rng.random() < p.buy_back:
                    buyer, price = previous, price * self._u(1.05, 1.3)
                else:
                    platform = rng.choice(ART)
                    buyer = Party(platform, f"collector-{rng.randrange(60)}")
                    price *= self._u(0.8, 1.25)
                if buyer == holder:
                    continue
                assert buyer.platform is not None
                self.verify(
                    t - self._u(60, 3_600),
                    buyer.platform,
                    fp,
                    via=rng.choice(("file", "fingerprint")),
                )
                self.transfer(t, buyer.platform, fp, holder, buyer, price)
                previous, holder = holder if hop else None, buyer

    def _background(self) -> None:
        """All day long: a redemption service checks shop-bought codes (which it never
        acquires), and people check cards anonymously."""
        p, rng = self.p, self.rng
        t: float = START + DAY
        while True:
            t += rng.expovariate(p.redeem_per_hour / HOUR)
            if t > self.horizon:
                break
            self.verify(t, REDEEMER, rng.choice(self.idle))
        t = START + DAY
        while True:
            t += rng.expovariate(p.anonymous_per_hour / HOUR)
            if t > self.horizon:
                break
            self._anonymous(t, rng.choice(self.idle))

    # -- injected -------------------------------------------------------------------------

    def _leak(self) -> None:
        p, rng = self.p, self.rng
        inj = Injection("leaked-batch", "leak")
        self.injections.append(inj)
        batch = self.batches[self.leaked_batch]
        size = min(p.leak_codes, len(batch) - 1)
        first = rng.randrange(len(batch) - size)
        listed = [fp for _, fp in batch[first : first + size]]
        pirates = ["playmarket"] if p.leak_via_known_platform else list(PIRATES[: p.leak_platforms])
        start = START + self._u(p.days * DAY / 4, p.days * DAY - 6 * DAY)
        for i, fp in enumerate(listed):
            pirate = pirates[i % len(pirates)]
            self.verify(start + p.leak_hours * HOUR * i / size, pirate, fp)
            inj.add_good((CODE, fp))
            if rng.random() < 0.2:
                self._anonymous(start + self._u(HOUR, 2 * DAY), fp)
        for pirate in pirates:
            inj.expect(S.PLATFORM_VELOCITY, S.Subject("platform", pirate))
        self.leak = inj
        revoked_at = start + self._u(DAY, 2 * DAY)
        for fp in listed:
            self._at(revoked_at + self._u(0, 600), "revoke", self._creator_of(fp), fp)
        sample = rng.sample(listed, min(len(listed), 2 * p.leak_sale_attempts))
        for i, fp in enumerate(sample):
            pirate = pirates[i % len(pirates)]
            before = i < p.leak_sale_attempts
            t = (
                start + p.leak_hours * HOUR + self._u(600, 3 * HOUR)
                if before
                else (revoked_at + self._u(2 * HOUR, DAY))
            )
            self.transfer(
                t, pirate, fp, Party(pirate, "stock"), self._user(pirate), 800, tag="fraud"
            )
            code = S.SOLD_BY_NON_HOLDER if before else S.DEAD_GOOD_TRANSFER
            inj.expect(code, S.good_subject((CODE, fp)))

    def _double_seller(self, codes: Sequence[bytes]) -> None:
        """An agent lists each of its codes on three platforms at once, sells it twice, and
        offers the ones already consumed again elsewhere."""
        rng = self.rng
        inj = Injection("double-selling", "double-seller")
        self.injections.append(inj)
        seller = Party("agentnet", "agent-d")
        t = START + self._u(2 * DAY, self.p.days * DAY - 7 * DAY)
        for fp in codes:
            good = (CODE, fp)
            inj.add_good(good)
            t += self._u(60, 600)
            self.verify(t, WHOLESALE, fp)
            self.transfer(
                t + 60, WHOLESALE, fp, Party(None, None), Party(WHOLESALE, "stock"), 1_000
            )
            got = t + self._u(3 * HOUR, DAY)
            self.verify(got - 300, "agentnet", fp)
            self.transfer(got, "agentnet", fp, Party(WHOLESALE, "stock"), seller, 1_050)
            listed = got + self._u(2 * HOUR, DAY)
            first, second, third = rng.sample(RETAIL, 3)
            self.verify(listed, "agentnet", fp)
            self.verify(listed + self._u(300, 1_800), first, fp)
            self.verify(listed + self._u(600, 3_000), second, fp)
            inj.expect(S.CODE_VELOCITY, S.good_subject(good))
            sold = listed + self._u(3_600, 5_400)
            final = rng.random() < 0.5
            # The agent's own platform reports both sales (it alone may: issue 12).
            self.transfer(
                sold, "agentnet", fp, seller, self._user(first), 1_200, final=final, tag="fraud"
            )
            again = sold + self._u(600, 7_200)
            self.transfer(again, "agentnet", fp, seller, self._user(second), 1_150, tag="fraud")
            if final:
                inj.expect(S.DEAD_GOOD_TRANSFER, S.good_subject(good))
                self.verify(again + self._u(HOUR, DAY), third, fp)
                inj.expect(S.OFFERED_BY_NON_HOLDER, S.good_subject(good))
            else:
                inj.expect(S.SOLD_BY_NON_HOLDER, S.good_subject(good))

    def _ring(self, codes: Sequence[bytes]) -> None:
        """A few parties pass the same goods round and round, each time at a higher price."""
        p, rng = self.p, self.rng
        inj = Injection("laundering-ring", "ring")
        self.injections.append(inj)
        platforms = rng.sample(("agentnet", "keyshop", "playmarket"), min(3, p.ring_parties))
        parties = [Party(platforms[i % len(platforms)], f"ring-{i}") for i in range(p.ring_parties)]
        files = [self.free_files.pop() for _ in range(max(1, p.ring_goods - len(codes)))]
        for fp in [*codes, *files]:
            inj.add_good((CODE if fp in self.code_of else FILE, fp))
            inj.expect(
                S.LAUNDERING_RING, S.good_subject((CODE if fp in self.code_of else FILE, fp))
            )
            t = START + self._u(3 * DAY, 6 * DAY)
            price = float(self._price())
            first = parties[0]
            assert first.platform is not None
            self.verify(t - 600, first.platform, fp, via="fingerprint")
            self.transfer(t, first.platform, fp, Party(None, None), first, price, tag="fraud")
            holder = first
            for hop in range(1, p.ring_parties * p.ring_cycles + 1):
                buyer = parties[hop % p.ring_parties]
                t += self._u(2 * HOUR, 12 * HOUR)
                price *= self._u(1.1, 1.3)
                assert buyer.platform is not None
                self.verify(t - self._u(60, 900), buyer.platform, fp, via="fingerprint")
                # Colluding platforms give each other their consent.
                self.transfer(
                    t, buyer.platform, fp, holder, buyer, price, tag="fraud", consent=True
                )
                holder = buyer

    def _pirate(self) -> None:
        """A pirate creator registers copies of another creator's files; the owner re-uploads
        some of its own (idempotent, the honest twin)."""
        p, rng = self.p, self.rng
        inj = Injection("pirate-registration", "pirate")
        self.injections.append(inj)
        victims = [fp for creator, fp in self.files if creator == 0]
        t = START + self._u(3 * DAY, p.days * DAY - 3 * DAY)
        for i, fp in enumerate(rng.sample(victims, min(p.pirate_files, len(victims)))):
            self._at(t + 60 * i, "file", self.pirate, fp, -1 - i)
            inj.add_good((FILE, fp))
            inj.expect(S.DUPLICATE_CLAIM, S.good_subject((FILE, fp)))
        inj.subjects.add(S.Subject("creator", self.pirate.address))
        for fp in rng.sample(victims, 3):
            self._at(
                START + self._u(3 * DAY, p.days * DAY - DAY), "file", self.file_creators[0], fp, 0
            )

    def _bot(self) -> None:
        """Card draining: lookups of guessed codes, a few of which exist (drained)."""
        p, rng = self.p, self.rng
        inj = Injection("draining-bot", f"bot-{p.bot}")
        self.injections.append(inj)
        self.bot = inj
        start = START + self._u(2 * DAY, p.days * DAY - 3 * DAY)
        platform = BOT_PLATFORM if p.bot == "key" else ANONYMOUS
        ips = [f"ip:198.51.{i // 256}.{i % 256}" for i in range(400)]
        for i in range(p.bot_lookups):
            t = start + p.bot_hours * HOUR * i / p.bot_lookups
            if p.bot == "key":
                key = f"key:{BOT_PLATFORM}"
            elif p.bot == "ip":
                key = "ip:203.0.113.7"
            else:
                key = rng.choice(ips)
            if rng.random() < 0.004:
                # A real code: drained once the bot gets its answer (not if refused, 429).
                fp = self.idle.pop()
                self.bot_hits.add(fp)
            else:
                fp = rng.randbytes(32)
            self._at(t, "verify", platform, key, CODE, fp, "code")
        inj.expect(S.PROBE_BURST, S.Subject("key", f"platform:{platform}"))

    # -- playing it ---------------------------------------------------------------------------

    def run(self) -> None:
        self.actions.sort(key=lambda a: (a[0], a[1]))
        for at, _, kind, data in self.actions:
            if at > self.clock.now:
                self.clock.now = at
            getattr(self, f"_do_{kind}")(*data)
            if len(self.telemetry) >= 2_000:
                self._flush()
        self._flush()
        self.registry.sequence_all()
        self.clock.now = self.horizon + DAY
        if self.p.bot != "distributed":
            for flag in self.limiter.flags():
                if flag.key in (f"key:{BOT_PLATFORM}", "ip:203.0.113.7"):
                    self.bot.expect(S.PROBE_BURST, S.Subject("key", flag.key))
        leak = self.batch_records[self.leaked_batch]
        self.leak.expect(S.BATCH_VELOCITY, S.Subject("batch", f"batch:{leak}"))

    def _flush(self) -> None:
        if self.telemetry:
            self.registry.record_verifications(self.telemetry)
            self.telemetry = []

    def _do_batch(self, index: int) -> None:
        fps = [fp for _, fp in self.batches[index]]
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the PreparedBatch
        builder = merkle.RootBuilder()
        for fp in fps:
            spool.write(fp)
            builder.append(hashlib.sha256(b"\x00" + fp).digest())
        prepared = PreparedBatch(spool, len(fps), builder.root())
        creator = self.batch_creator[index]
        request = sign_batch_registration(
            self.creators[creator],
            DEV_DOMAIN,
            prepared,
            good_type=GoodType.CODE,
            product=f"card-{creator}",
            use=Use.SINGLE,
            royalty_policy=POLICY,
            metadata={"lot": index},
            now=self.clock(),
            new_product=self._new_product(self.creators[creator], f"card-{creator}"),
        )
        result = self.registry.register_batch(request, prepared.fingerprints())
        prepared.close()
        self.batch_records[index] = result.record_id
        self.live.update(fps)

    def _new_product(self, keys: CreatorKeys, product: str) -> bool:
        if (keys.address, product) in self.products:
            return False
        self.products.add((keys.address, product))
        return True

    def _do_file(self, keys: CreatorKeys, fp: bytes, index: int) -> None:
        product = "art" if index >= 0 else "copies"
        request = sign_registration(
            keys,
            DEV_DOMAIN,
            good_type=GoodType.FILE,
            fingerprint=fp,
            product=product,
            use=Use.TRANSFERABLE,
            royalty_policy=POLICY,
            metadata={},
            now=self.clock(),
            new_product=self._new_product(keys, product),
        )
        self.registry.register(request)
        self.live.add(fp)

    def _do_revoke(self, keys: CreatorKeys, fp: bytes) -> None:
        request = sign_revocation(
            keys,
            DEV_DOMAIN,
            good_type=GoodType.CODE,
            fingerprint=fp,
            reason="leaked",
            now=self.clock(),
        )
        self.registry.revoke(request)
        self.revoked.add(fp)

    def _do_verify(self, platform: str, key: str, good_type: int, fp: bytes, via: str) -> None:
        try:
            if via == "code":
                if platform == ANONYMOUS:
                    self.limiter.check(CODE_LOOKUP, key)
                self.limiter.ensure_probe_budget(key)
        except RateLimited:
            self.outcomes["verify-refused-429"] += 1
            return
        if fp in self.revoked:
            verdict = "revoked"
        elif fp in self.consumed:
            verdict = "consumed"
        elif fp in self.live:
            verdict = "authentic"
        else:
            verdict = "unknown"
        self.telemetry.append(Telemetry(self.clock(), platform, good_type, fp, via, verdict))
        self.outcomes["verifications"] += 1
        if fp in self.bot_hits:
            self.bot.add_good((CODE, fp))
        if via == "code" and verdict == "unknown":
            try:
                self.limiter.record_probe_failure(key)
            except RateLimited:
                self.outcomes["probe-flagged-429"] += 1

    def _authorized(self, request: TransferRequest, seller: Party) -> TransferRequest:
        """The request with the holding platform's hand-over authorization, if it still holds
        the good (else as it is: the registry refuses it, as it should)."""
        assert seller.platform is not None and seller.reference is not None
        try:
            issued = self.registry.authorize_handover(
                HandoverRequest(
                    platform=seller.platform,
                    good_type=request.good_type,
                    fingerprint=request.fingerprint,
                    reference=seller.reference,
                    buyer_platform=request.platform,
                )
            )
        except (NotTheHolder, NotFound):
            return request  # it moved meanwhile
        if request.idempotency_key is not None:
            self._authorizations[request.idempotency_key] = issued.token
        return replace(request, authorization=issued.token)

    def _do_transfer(self, request: TransferRequest, tag: str, consent: bool) -> None:
        seller = request.seller
        if (
            consent
            and seller.platform is not None
            and seller.reference is not None
            and seller.platform != request.platform
        ):
            # A cross-platform resale with the holding platform's consent: its one-time
            # hand-over authorization (issue 12). Honest trades and colluding rings have it; a
            # non-holder selling what another platform holds has none, and is refused.
            known = self._authorizations.get(request.idempotency_key or "")
            if known is not None:  # a retry: the same request, the same token
                request = replace(request, authorization=known)
            else:
                request = self._authorized(request, seller)
        try:
            receipt = self.registry.transfer(request)
        except (DoubleSale, GoodConsumed, GoodRevoked, NotTheHolder) as refusal:
            self.outcomes[f"{tag}-refused-{refusal.code}"] += 1
            return
        self.outcomes[f"{tag}-accepted"] += 1
        if receipt.final:
            self.consumed.add(request.fingerprint)


# -- running and scoring ----------------------------------------------------------------------


def _fast_sqlite(engine: Engine) -> None:
    # NOTE: a benchmark database: durability is not what is measured here (SQLite's
    # synchronous=FULL costs each of the ~10^4 transfers an fsync).
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()


def run_scenario(
    params: MarketParams,
    seed: int,
    *,
    mix: str = "base",
    workdir: Path,
    db_url: str | None = None,
    market_class: Callable[[MarketParams, int, Registry, SimClock], Market] | None = None,
) -> ScenarioRun:
    """Simulate one market into a fresh registry and read back what the rules see.
    ``market_class`` makes the market (default ``Market``; ``bench.launderscenario`` adds
    its laundering patterns to it)."""
    started = time.perf_counter()
    engine = create_db_engine(db_url or f"sqlite:///{workdir / f'scenario-{seed}.db'}")
    if engine.dialect.name == "sqlite":
        _fast_sqlite(engine)
    upgrade(engine)
    clock = SimClock()
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.from_key(random.Random(seed).randbytes(32)),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    market = (market_class or Market)(params, seed, registry, clock)
    market.plan()
    planned = time.perf_counter()
    market.run()
    simulated = time.perf_counter()
    inputs, _ = read_inputs(engine, since=START, probe_flags=flags_from(market.limiter.flags()))
    read = time.perf_counter()
    # What the API's background refresh costs on this market: a first build, then a top-up
    # with nothing new (the rules and the score are recomputed either way).
    index = RiskIndex.build(engine, clock.now, lookback=clock.now - START)
    built = time.perf_counter()
    index.refreshed(clock.now)
    refreshed = time.perf_counter()
    engine.dispose()
    stats = {
        "codes": sum(len(b) for b in market.batches),
        "files": len(market.files),
        "transfers": len(inputs.transfers),
        "refused_attempts": len(inputs.attempts),
        "verifications": len(inputs.verifications),
        "outcomes": dict(sorted(market.outcomes.items())),
        "plan_s": round(planned - started, 2),
        "simulate_s": round(simulated - planned, 2),
        "read_s": round(read - simulated, 2),
        "risk_index_build_s": round(built - read, 2),
        "risk_index_refresh_s": round(refreshed - built, 2),
        "risk_index_goods": len(index),
    }
    unexpected = sum(n for k, n in market.outcomes.items() if k.startswith("honest-refused"))
    stats["unexpected_honest_refusals"] = unexpected
    return ScenarioRun(seed, mix, params, inputs, market.injections, clock.now, START, stats)


@dataclass
class SignalScore:
    fired: int = 0
    true_positives: int = 0
    expected: int = 0
    found: int = 0
    false_positives: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def add(self, other: SignalScore) -> None:
        self.fired += other.fired
        self.true_positives += other.true_positives
        self.expected += other.expected
        self.found += other.found
        self.false_positives += other.false_positives
        self.missed += other.missed

    @property
    def precision(self) -> float | None:
        return None if not self.fired else self.true_positives / self.fired

    @property
    def recall(self) -> float | None:
        return None if not self.expected else self.found / self.expected


RULES = (
    S.DUPLICATE_CLAIM,
    S.SOLD_BY_NON_HOLDER,
    S.OFFERED_BY_NON_HOLDER,
    S.DEAD_GOOD_TRANSFER,
    S.PROBE_BURST,
    S.CODE_VELOCITY,
    S.PLATFORM_VELOCITY,
    S.BATCH_VELOCITY,
    S.LAUNDERING_RING,
)


def score(
    run: ScenarioRun, thresholds: S.Thresholds, signals: Sequence[S.Signal] | None = None
) -> tuple[dict[str, SignalScore], dict[str, bool]]:
    """Per signal, its counts against the labels; per injection, whether it was found."""
    if signals is None:
        signals = rules.evaluate(run.inputs, thresholds, now=run.now, since=run.since)
    fraud = run.fraud_subjects
    fired: dict[str, set[S.Subject]] = defaultdict(set)
    for s in signals:
        fired[s.code].add(s.subject)
    scores: dict[str, SignalScore] = {}
    for code in RULES:
        expected = set().union(*(i.expected.get(code, set()) for i in run.injections))
        got = fired.get(code, set())
        scores[code] = SignalScore(
            fired=len(got),
            true_positives=len(got & fraud),
            expected=len(expected),
            found=len(got & expected),
            false_positives=sorted(f"{run.seed}:{s.id}" for s in got - fraud),
            missed=sorted(f"{run.seed}:{s.id}" for s in expected - got),
        )
    found = {}
    for injection in run.injections:
        found[injection.name] = any(
            s.subject in injection.subjects or injection.goods.intersection(s.goods)
            for s in signals
        )
    return scores, found


# -- tuning ----------------------------------------------------------------------------------

#: Candidate values per rule; the rules are independent, so each rule's grid is searched alone.
GRID: dict[str, dict[str, Sequence[Any]]] = {
    S.SOLD_BY_NON_HOLDER: {"retry_window": (60, 300, 600, 1_800, 3_600)},
    S.DEAD_GOOD_TRANSFER: {"retry_window": (60, 300, 600, 1_800, 3_600)},
    S.OFFERED_BY_NON_HOLDER: {
        "offer_grace": (HOUR, 2 * HOUR, 6 * HOUR),
        "offer_min_platforms": (1, 2, 3),
    },
    S.PROBE_BURST: {
        "probe_flag_min": (10, 20, 40),
        "probe_window": (600, HOUR, 6 * HOUR),
        "probe_min_failures": (10, 20, 40, 80, 160),
        "probe_min_ratio": (0.2, 0.5, 0.8),
    },
    S.CODE_VELOCITY: {
        "code_window": (HOUR, 2 * HOUR, 6 * HOUR, DAY),
        "code_min_platforms": (2, 3, 4),
    },
    S.PLATFORM_VELOCITY: {
        "platform_window": (2 * HOUR, 6 * HOUR, DAY),
        "platform_min_foreign": (10, 20, 30, 50, 80),
        "platform_baseline_factor": (2.0, 3.0, 5.0),
        "platform_min_foreign_ratio": (0.2, 0.5, 0.8),
    },
    S.BATCH_VELOCITY: {
        "batch_window": (2 * HOUR, 6 * HOUR, DAY),
        "batch_min_codes": (5, 10, 20, 40),
        "batch_min_foreign_ratio": (0.5, 0.8, 0.95),
    },
    S.LAUNDERING_RING: {
        "ring_min_returns": (1, 2, 3),
        "ring_max_parties": (3, 4, 6),
        "ring_min_growth": (1.1, 1.25, 1.5, 2.0),
    },
}


def _f1(total: SignalScore) -> float:
    p, r = total.precision, total.recall
    if not p or not r:
        return 0.0
    return 2 * p * r / (p + r)


def tune(runs: Sequence[ScenarioRun]) -> tuple[S.Thresholds, dict[str, Any]]:
    """Per rule, the grid point with the best F1 pooled over the tuning runs; among equals,
    the one in the middle of the plateau (the median of each field over the tied points)."""
    tuned = S.Thresholds()
    report: dict[str, Any] = {}
    names = {f.name for f in fields(S.Thresholds)}
    for code, grid in GRID.items():
        keys = list(grid)
        assert set(keys) <= names
        results = []
        for values in itertools.product(*(grid[k] for k in keys)):
            th = replace(S.Thresholds(), **dict(zip(keys, values, strict=True)))
            total = SignalScore()
            for run in runs:
                scores, _ = score(run, th, _rule_signals(run, th, code))
                total.add(scores[code])
            results.append((round(_f1(total), 6), values))
        best = max(f for f, _ in results)
        tied = [values for f, values in results if f == best]
        middle = []
        for i in range(len(keys)):
            column = sorted(v[i] for v in tied)
            middle.append(column[(len(column) - 1) // 2])
        chosen = tuple(middle) if tuple(middle) in tied else tied[len(tied) // 2]
        tuned = replace(tuned, **dict(zip(keys, chosen, strict=True)))
        report[code] = {
            "f1": best,
            "chosen": dict(zip(keys, chosen, strict=True)),
            "grid_points": len(results),
            "tied": len(tied),
            # How wide the best plateau is: the margin the frozen values have on these runs.
            "plateau": {
                k: [min(v[i] for v in tied), max(v[i] for v in tied)] for i, k in enumerate(keys)
            },
        }
    return tuned, report


def _rule_signals(run: ScenarioRun, th: S.Thresholds, code: str) -> list[S.Signal]:
    """Only the one rule being tuned (cheaper than every rule per grid point)."""
    inputs, now, since = run.inputs, run.now, run.since
    chains = _chains(run)
    regs, events = inputs.registrations, inputs.verifications
    if code == S.SOLD_BY_NON_HOLDER:
        return holderrules.sold_by_non_holder(inputs.attempts, chains, th)
    if code == S.DEAD_GOOD_TRANSFER:
        return holderrules.dead_good_transfers(inputs.attempts, chains, th)
    if code == S.OFFERED_BY_NON_HOLDER:
        return holderrules.offered_by_non_holder(events, chains, regs, th, now=now)
    if code == S.PROBE_BURST:
        return velocityrules.probe_bursts(events, inputs.probe_flags, th)
    if code == S.CODE_VELOCITY:
        return velocityrules.code_velocity(events, regs, th)
    if code == S.PLATFORM_VELOCITY:
        return velocityrules.platform_velocity(events, chains, regs, th, now=now, since=since)
    if code == S.BATCH_VELOCITY:
        return velocityrules.batch_velocity(events, chains, regs, th, now=now)
    if code == S.LAUNDERING_RING:
        return holderrules.laundering_rings(chains, th)
    return holderrules.duplicate_claims(regs, inputs.conflicts)


def _chains(run: ScenarioRun) -> market.Chains:
    return run.chains


# -- the anomaly score, judged on goods --------------------------------------------------------


def _auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """ROC AUC: the chance a positive outranks a negative (ties count half)."""
    if not positives or not negatives:
        return None
    ordered = sorted(negatives)
    wins = 0.0
    for v in positives:
        below, upto = bisect.bisect_left(ordered, v), bisect.bisect_right(ordered, v)
        wins += below + 0.5 * (upto - below)
    return round(wins / (len(positives) * len(negatives)), 3)


def incremental_state(run: ScenarioRun, thresholds: S.Thresholds, step: int = 3_600) -> RiskState:
    """The incremental engine (``readmodels.riskstate``, its default refit schedule) fed the
    run's records ``step`` seconds at a time, as the risk worker reads them, refreshed at the
    end of each step (the goods they name with their registrations and final holdings)."""
    state = RiskState(thresholds, lookback=run.now - run.since)
    x = run.inputs
    timed: list[tuple[int, int, Any]] = [
        *((c.timestamp or run.since, c.entry_id, c) for c in x.conflicts),
        *((t.created_at, t.transfer_id, t) for t in x.transfers),
        *((a.at, a.attempt_id, a) for a in x.attempts),
        *((v.at, v.event_id, v) for v in x.verifications),
    ]
    timed.sort(key=lambda item: (item[0], item[1]))
    start = 0
    for end in [*range(run.since + step, run.now, step), run.now]:
        stop = bisect.bisect_right(timed, end, key=lambda item: item[0])
        part = [record for _, _, record in timed[start:stop]]
        start = stop
        named = {r.good for r in part}
        new = SignalInputs(
            registrations={g: x.registrations[g] for g in named if g in x.registrations},
            conflicts=[r for r in part if isinstance(r, market.EntryRecord)],
            transfers=[r for r in part if isinstance(r, market.TransferRecord)],
            attempts=[r for r in part if isinstance(r, market.AttemptRecord)],
            holdings={g: x.holdings[g] for g in named if g in x.holdings},
            verifications=[r for r in part if isinstance(r, market.VerificationEventRecord)],
        )
        state.refresh(new, now=end, probe_flags=x.probe_flags if end == run.now else ())
    return state


def anomaly_report(run: ScenarioRun, thresholds: S.Thresholds | None = None) -> dict[str, Any]:
    """The anomaly score alone: how it ranks injected goods above honest active goods (ROC
    AUC, overall and per pattern) and injected platforms above honest ones; and the combined
    risk (rules and score) on goods at 0.5: precision and recall."""
    th = thresholds or S.Thresholds()
    pattern_of = {g: i.pattern for i in run.injections for g in i.goods}
    scores: dict[str, list[float]] = defaultdict(list)
    features = good_features(
        run.inputs, run.chains, now=run.now, since=run.since, grace=th.offer_grace
    )
    for members in features.values():
        for good, (value, _) in score_population(members).items():
            scores[pattern_of.get(good, "honest")].append(value)
    honest = scores.pop("honest", [])
    injected = [v for values in scores.values() for v in values]
    fraud_platforms = {
        s.id.removeprefix("platform:")
        for i in run.injections
        for s in i.subjects
        if s.kind == "platform" or (s.kind == "key" and s.id.startswith("platform:"))
    }
    platforms = score_population(
        platform_features(
            run.inputs, run.chains, now=run.now, since=run.since, grace=th.offer_grace
        )
    )
    index = RiskIndex.from_inputs(run.inputs, now=run.now, since=run.since, thresholds=th)
    fraud_goods = set(pattern_of)
    risky = [g for g in run.inputs.registrations if index.risk(*g)[0] >= 0.5]
    tp = sum(1 for g in risky if g in fraud_goods)
    state = incremental_state(run, th)
    risky_now = [
        g for g in run.inputs.registrations if (r := state.risk(g)) is not None and r.score >= 0.5
    ]
    tp_now = sum(1 for g in risky_now if g in fraud_goods)
    return {
        "active_goods": len(honest) + len(injected),
        "injected_goods": len(fraud_goods),
        "goods_auc": _auc(injected, honest),
        "goods_auc_per_pattern": {p: _auc(v, honest) for p, v in sorted(scores.items())},
        "platforms_auc": _auc(
            [v for p, (v, _) in platforms.items() if p in fraud_platforms],
            [v for p, (v, _) in platforms.items() if p not in fraud_platforms],
        ),
        "platforms_ranked": [p for p, _ in sorted(platforms.items(), key=lambda item: -item[1][0])][
            :5
        ],
        "risk_at_0_5": {
            "flagged": len(risky),
            "precision": None if not risky else round(tp / len(risky), 3),
            "recall": None if not fraud_goods else round(tp / len(fraud_goods), 3),
        },
        # The same, from the incremental engine fed the run an hour at a time.
        "risk_at_0_5_incremental": {
            "flagged": len(risky_now),
            "precision": None if not risky_now else round(tp_now / len(risky_now), 3),
            "recall": None if not fraud_goods else round(tp_now / len(fraud_goods), 3),
            "same_signals_as_full": [s.signal_id for s in state.all_signals()]
            == [s.signal_id for s in index.signals],
        },
    }


# -- the benchmark -----------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def evaluate_runs(runs: Sequence[ScenarioRun], thresholds: S.Thresholds) -> dict[str, Any]:
    totals = {code: SignalScore() for code in RULES}
    per_run = []
    for run in runs:
        scores, found = score(run, thresholds)
        for code, s in scores.items():
            totals[code].add(s)
        per_run.append(
            {
                "seed": run.seed,
                "mix": run.mix,
                "every_pattern_found": all(found.values()),
                "found": found,
                "signals": {
                    code: {
                        "precision": s.precision,
                        "recall": s.recall,
                        "fired": s.fired,
                        "expected": s.expected,
                    }
                    for code, s in scores.items()
                },
                "anomaly": anomaly_report(run),
                "stats": run.stats,
            }
        )
    return {
        "per_signal": {
            code: {
                "precision": s.precision,
                "recall": s.recall,
                "fired": s.fired,
                "true_positives": s.true_positives,
                "expected": s.expected,
                "found": s.found,
                "false_positives": s.false_positives[:20],
                "missed": s.missed[:20],
            }
            for code, s in totals.items()
        },
        "runs": per_run,
        "every_pattern_found_in_every_run": all(r["every_pattern_found"] for r in per_run),
    }


def _run(
    params: MarketParams, seed: int, mix: str, workdir: Path, cache: Path | None
) -> ScenarioRun:
    """A run, or its records from ``cache`` when the same parameters ran before."""
    if cache is None:
        return run_scenario(params, seed, mix=mix, workdir=workdir)
    digest = hashlib.sha256(repr((params, seed)).encode()).hexdigest()[:16]
    path = cache / f"run-{seed}-{digest}.pickle"
    if path.exists():
        with path.open("rb") as source:
            loaded: ScenarioRun = pickle.load(source)  # our own cache, never a download
        return loaded
    run = run_scenario(params, seed, mix=mix, workdir=workdir)
    cache.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as sink:
        pickle.dump(run, sink)
    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="test-sized runs (~2k codes)")
    parser.add_argument("--tune-only", action="store_true", help="print tuned thresholds only")
    parser.add_argument(
        "--no-save", action="store_true", help="do not write bench/results/signals.json"
    )
    parser.add_argument(
        "--cache", type=Path, help="keep each run's records here and reuse them (development)"
    )
    args = parser.parse_args(argv)
    base = SMALL if args.small else FULL
    frozen = S.Thresholds()
    with tempfile.TemporaryDirectory(prefix="tracemark-scenario-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        tuning = []
        for seed, mix in TUNING:
            tuning.append(_run(with_mix(base, mix), seed, mix, workdir, args.cache))
            print(f"tuning run {seed} ({mix}): {tuning[-1].stats}", file=sys.stderr)
        tuned, tuning_report = tune(tuning)
        changed = {
            f.name: {"frozen": getattr(frozen, f.name), "tuned": getattr(tuned, f.name)}
            for f in fields(S.Thresholds)
            if getattr(frozen, f.name) != getattr(tuned, f.name)
        }
        print(f"tuned thresholds: {tuned}", file=sys.stderr)
        if changed:
            print(f"differ from the frozen ones: {changed}", file=sys.stderr)
        if args.tune_only:
            return 0
        held_out = []
        for seed, mix in HELD_OUT:
            held_out.append(_run(with_mix(base, mix), seed, mix, workdir, args.cache))
            print(f"held-out run {seed} ({mix}): {held_out[-1].stats}", file=sys.stderr)
        result = evaluate_runs(held_out, frozen)
        result_tuning = evaluate_runs(tuning, frozen)
        elapsed = time.perf_counter() - started
    print("| signal | precision | recall | held-out runs |")
    for code, s in result["per_signal"].items():
        print(f"| `{code}` | {_fmt(s['precision'])} | {_fmt(s['recall'])} | {len(held_out)} |")
    for r in result["runs"]:
        full, now = r["anomaly"]["risk_at_0_5"], r["anomaly"]["risk_at_0_5_incremental"]
        print(f"run {r['seed']} ({r['mix']}): risk >= 0.5 full recompute {full}; incremental {now}")
    everything = result["every_pattern_found_in_every_run"]
    print(f"every injected pattern found in every held-out run: {everything}")
    if not args.no_save and not args.small:  # only full-size runs are the benchmark's result
        path = save(
            "signals",
            {
                "size": "full",
                "params": asdict(base),
                "mixes": MIXES,
                "tuning": [{"seed": s, "mix": m} for s, m in TUNING],
                "held_out": [{"seed": s, "mix": m} for s, m in HELD_OUT],
                "thresholds_frozen": asdict(frozen),
                "thresholds_tuned": asdict(tuned),
                "frozen_differs_from_tuned": changed,
                "tuning_report": tuning_report,
                "held_out_result": result,
                "tuning_runs_with_frozen": {
                    k: {"precision": v["precision"], "recall": v["recall"]}
                    for k, v in result_tuning["per_signal"].items()
                },
                # This invocation (runs reused from --cache take no time here) and the
                # simulations themselves, whenever they ran.
                "elapsed_s": round(elapsed, 1),
                "simulation_s": round(
                    sum(r.stats["simulate_s"] + r.stats["plan_s"] for r in [*tuning, *held_out]), 1
                ),
            },
        )
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    # Through the module's own name, so that pickled runs (``--cache``) name bench.scenario.
    from bench import scenario

    sys.exit(scenario.main())
