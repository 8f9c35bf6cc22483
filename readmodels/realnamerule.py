"""The ``unattested-seller`` rule (实名制, issue 18 item 4): a seller account that sells more
than a limit per currency within a window while its platform had not attested its real name
to the required level.

A sale is a recorded transfer with a price whose seller is a platform's account (not the
creator selling first-hand), or a guaranteed-trade order of such a seller delivered and not
settled yet (``delivered`` or ``disputed``: the buyer has paid; once it settles its TRANSFER
counts instead, and a refunded one no longer counts). The level *in force at the sale*
counts: the newest attestation of that seller, by its own platform, logged before the sale's
TRANSFER or the order's DELIVERY entry (log order, exact where two fall in one second;
``registry.attestationstore``; none is ``none``). So a seller attested later still answers
for what it sold before, until those sales leave the window, and withdrawing a level
(attesting ``none``) takes effect from then on. Amounts are added per currency in minor
units; a currency with no limit set never raises the signal.

Like ``payout-overdue`` (``readmodels.payoutrules``), its input is not the market's records
but tables (``transfers``, ``orders`` and ``realname_attestations``), read by
``RealNameWatch`` again when a transfer, an order's change or an attestation was recorded
since, or every ``REREAD_EVERY`` seconds (the window slides); the risk worker adds its
signals to the incremental engine's (``readmodels.riskstate``) and to the full recompute's
alike, so both stay equal.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import Connection, func, select

from readmodels.launderruleslimits import money_code, spellings_of
from readmodels.signals import (
    MAX_EVIDENCE,
    UNATTESTED_SELLER,
    DetailPart,
    Evidence,
    Signal,
    Subject,
    says,
)
from registry.attestations import Level
from registry.attestationstore import attestations_t
from registry.orders import State
from registry.orderviews import changes_t, orders_t
from registry.receiptstore import receipts_t
from registry.transfers import transfers_t

DAY: Final = 86_400

#: How often (seconds of the clock) the tables are read again when nothing was recorded in
#: between: a sale leaves the window up to this late.
REREAD_EVERY: Final = 60

DEFAULT_LIMITS: Final[Mapping[str, int]] = {"CNY": 100_000, "USD": 15_000}
"""Sales (minor units) an unattested seller may make within the window, per currency.

CNY 1,000.00: the most an anonymous (不记名) single-purpose prepaid card may hold under
MOFCOM's 单用途商业预付卡管理办法（试行）(2012) art. 14, the rule card-trading sites are
held to; above it the card must be registered to a real name. USD 150.00: about the same
amount. Set others (or these) with ``RealNameRule(limits=...)``."""


@dataclass(frozen=True)
class RealNameRule:
    """The rule's settings: the level a seller needs, the limits per currency, the window."""

    #: A seller attested below this level (or never) is unattested for the rule.
    min_level: Level = Level.ID_CARD
    limits: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    window: int = 30 * DAY

    def __post_init__(self) -> None:
        if self.window <= 0 or any(v < 0 for v in self.limits.values()):
            raise ValueError("a real-name rule's window is positive and its limits not negative")


def rule_of(min_level: str, limits: str, *, window: int = 30 * DAY) -> RealNameRule:
    """The rule of the settings' text (``TRACEMARK_REALNAME_MIN_LEVEL``, ``..._LIMITS``:
    ``CNY=100000,USD=15000``); ``ValueError`` for text that is neither."""
    parsed: dict[str, int] = {}
    for item in filter(None, limits.split(",")):
        currency, _, amount = item.partition("=")
        if len(currency) != 3 or not currency.isupper() or not amount.isdigit():
            raise ValueError(f"a real-name limit is CUR=amount, not {item!r}")
        parsed[currency] = int(amount)
    return RealNameRule(min_level=Level.parse(min_level), limits=parsed, window=window)


@dataclass(frozen=True, slots=True)
class Sale:
    #: ``transfer`` or ``order``: the evidence names it as ``f"{kind} {sale_id}"``.
    kind: str
    sale_id: int
    platform: str
    seller_ref: bytes
    price: int
    currency: str
    at: int
    leaf_index: int


def read_sales(
    conn: Connection, *, since: int, until: int, currencies: Sequence[str]
) -> list[Sale]:
    """The priced transfers by platforms' sellers recorded in [since, until], in id order."""
    t = transfers_t.c
    rows = conn.execute(
        select(
            t.id, t.seller_platform, t.seller_ref, t.price, t.currency, t.created_at, t.leaf_index
        )
        .where(
            t.seller_platform.is_not(None),
            t.price.is_not(None),
            t.currency.in_(list(currencies)),
            t.created_at >= since,
            t.created_at <= until,
        )
        .order_by(t.id)
    )
    return [
        Sale(
            "transfer",
            int(r.id),
            str(r.seller_platform),
            bytes(r.seller_ref),
            int(r.price),
            str(money_code(r.currency)),
            int(r.created_at),
            int(r.leaf_index),
        )
        for r in rows
    ]


def read_open_orders(
    conn: Connection, *, since: int, until: int, currencies: Sequence[str]
) -> list[Sale]:
    """The orders of platforms' sellers delivered in [since, until] and not settled yet
    (``delivered``, ``disputed``), at their DELIVERY entry's leaf, in id order."""
    o = orders_t.c
    rows = conn.execute(
        select(
            o.id,
            o.seller_platform,
            o.seller_ref,
            o.price,
            o.currency,
            o.delivered_at,
            receipts_t.c.leaf_index,
        )
        .select_from(orders_t.join(receipts_t, receipts_t.c.order_id == o.id))
        .where(
            o.state.in_([State.DELIVERED.value, State.DISPUTED.value]),
            o.seller_platform.is_not(None),
            o.currency.in_(list(currencies)),
            o.delivered_at >= since,
            o.delivered_at <= until,
        )
        .order_by(o.id)
    )
    return [
        Sale(
            "order",
            int(r.id),
            str(r.seller_platform),
            bytes(r.seller_ref),
            int(r.price),
            str(money_code(r.currency)),
            int(r.delivered_at),
            int(r.leaf_index),
        )
        for r in rows
    ]


def read_histories(conn: Connection) -> dict[tuple[str, bytes], tuple[list[int], list[Level]]]:
    """Every seller's attestations as (leaf indexes, levels), in log order."""
    c = attestations_t.c
    histories: dict[tuple[str, bytes], tuple[list[int], list[Level]]] = {}
    for row in conn.execute(
        select(c.platform, c.seller_ref, c.level, c.leaf_index).order_by(c.leaf_index)
    ):
        leaves, levels = histories.setdefault((str(row.platform), bytes(row.seller_ref)), ([], []))
        leaves.append(int(row.leaf_index))
        levels.append(Level(int(row.level)))
    return histories


def level_at(history: tuple[list[int], list[Level]] | None, leaf_index: int) -> Level:
    """The level in force at the log's ``leaf_index``: the newest attestation before it."""
    if history is None:
        return Level.NONE
    leaves, levels = history
    position = bisect_right(leaves, leaf_index)
    return Level.NONE if position == 0 else levels[position - 1]


def unattested_sellers(
    sales: Sequence[Sale],
    histories: Mapping[tuple[str, bytes], tuple[list[int], list[Level]]],
    rule: RealNameRule,
) -> list[Signal]:
    """One ``unattested-seller`` signal per seller whose sales made below ``rule.min_level``
    add up to more than a currency's limit: the totals, the level now, and the sales."""
    totals: dict[tuple[str, bytes], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    counted: dict[tuple[str, bytes], list[Sale]] = defaultdict(list)
    for sale in sales:
        seller = (sale.platform, sale.seller_ref)
        if level_at(histories.get(seller), sale.leaf_index) >= rule.min_level:
            continue
        totals[seller][sale.currency] += sale.price
        counted[seller].append(sale)
    signals = []
    for seller in sorted(totals):
        over = {
            currency: amount
            for currency, amount in sorted(totals[seller].items())
            if amount > rule.limits.get(currency, amount)
        }
        if not over:
            continue
        platform, ref = seller
        history = histories.get(seller)
        now_level = Level.NONE if history is None else history[1][-1]
        amounts = ", ".join(
            f"{amount} {currency} (limit {rule.limits[currency]})"
            for currency, amount in over.items()
        )
        sold = [s for s in counted[seller] if s.currency in over]
        evidence = tuple(
            Evidence(
                "transfer",
                f"{s.kind} {s.sale_id}",
                s.at,
                f"sold for {s.price} {s.currency} while attested below {rule.min_level.label}",
            )
            for s in sold[-MAX_EVIDENCE:]
        )
        signals.append(
            Signal(
                UNATTESTED_SELLER,
                f"seller {platform}/0x{ref.hex()} sold {amounts} within {rule.window // DAY} "
                f"days in {len(sold)} sale(s) without a real-name attestation at "
                f"{rule.min_level.label} or above (its level now: {now_level.label})",
                evidence,
                Subject("party", f"{platform}/0x{ref.hex()}"),
                (),
                (platform,),
                _message(f"{platform}/0x{ref.hex()}", over, rule, len(sold), now_level),
            )
        )
    return signals


def _message(
    seller: str, over: Mapping[str, int], rule: RealNameRule, sales: int, now_level: Level
) -> tuple[DetailPart, ...]:
    """The detail as templates: the first currency in the sentence, each other one a part of
    its own (a page in English shows ``detail``, which lists them in the sentence). The
    levels are words a page translates (``js.param.level.<label>``)."""
    (currency, amount), *others = over.items()
    return (
        says(
            UNATTESTED_SELLER,
            seller=seller,
            amount=amount,
            currency=currency,
            limit=rule.limits[currency],
            days=rule.window // DAY,
            sales=sales,
            level=rule.min_level.label,
            now_level=now_level.label,
        ),
        *(
            says(UNATTESTED_SELLER, "also", amount=n, currency=c, limit=rule.limits[c])
            for c, n in others
        ),
    )


def unattested_signals(conn: Connection, rule: RealNameRule, *, now: int) -> list[Signal]:
    """The rule over the tables as they are at ``now``."""
    since, currencies = now - rule.window, spellings_of(rule.limits)
    sales = read_sales(conn, since=since, until=now, currencies=currencies)
    sales += read_open_orders(conn, since=since, until=now, currencies=currencies)
    return unattested_sellers(sales, read_histories(conn) if sales else {}, rule)


class RealNameWatch:
    """The risk worker's copy of the ``unattested-seller`` signals, read again when a
    transfer or an attestation was recorded since, when ``every`` seconds passed, or when the
    clock went back; ``every=0`` reads every refresh."""

    def __init__(self, rule: RealNameRule, *, every: int = REREAD_EVERY) -> None:
        self.rule = rule
        self.every = every
        self._read_at: int | None = None
        self._newest: tuple[object, ...] | None = None
        self._signals: dict[str, Signal] = {}

    def signals(self, conn: Connection, now: int) -> dict[str, Signal]:
        newest = (
            conn.execute(select(func.max(transfers_t.c.id))).scalar(),
            conn.execute(select(func.max(changes_t.c.id))).scalar(),
            conn.execute(select(func.max(attestations_t.c.id))).scalar(),
        )
        fresh = (
            self._read_at is not None
            and newest == self._newest
            and self._read_at <= now < self._read_at + self.every
        )
        if not fresh:
            found = unattested_signals(conn, self.rule, now=now)
            self._signals = {s.signal_id: s for s in found}
            self._read_at, self._newest = now, newest
        return self._signals


__all__ = [
    "DEFAULT_LIMITS",
    "REREAD_EVERY",
    "RealNameRule",
    "RealNameWatch",
    "Sale",
    "level_at",
    "read_histories",
    "read_open_orders",
    "read_sales",
    "rule_of",
    "unattested_sellers",
    "unattested_signals",
]
