"""The scenario's world: its time, platforms, parameters and mixes, its clock, and the labelled
run it yields (the injections' ground truth)."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from readmodels import market
from readmodels import signals as S
from readmodels.market import GoodKey, SignalInputs
from registry.fingerprints import GoodType
from registry.royalty import RoyaltyPolicy

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
