"""How much one buyer may pay, per code and per day, by currency: the ``buyer-daily-amount``
laundering rule's limits (``readmodels.launderrules``), with the published rule each is from.

The defaults borrow the anonymous prepaid-access limits of three regimes. They are
benchmarks of what regulators treat as "small enough to stay anonymous", not a claim that
those rules govern game cards sold on a card-trading site; an operator sets its own limits
per currency, for the rules it answers to (``TRACEMARK_AMOUNT_LIMITS``, read by
``parse_amount_limits`` into ``Thresholds.amount_limits``).

Amounts are in minor units, as transfer prices are (fen, cents, euro cents: an exponent of 2
for all three currencies here). A limit is the most allowed: the rule fires *above* it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class AmountLimit:
    """One currency's limits: the most one code may be priced at, and the most one buyer
    may pay within ``Thresholds.amount_window`` (None: no such limit); ``source`` names the
    published rule."""

    currency: str
    per_code: int | None
    per_day: int | None
    source: str

    def __post_init__(self) -> None:
        for value in (self.per_code, self.per_day):
            if value is not None and value < 0:
                raise ValueError(f"a {self.currency} limit is a non-negative amount")


#: PBOC, 《支付机构预付卡业务管理办法》 (2012 No. 12, in force 2012-11-01): 单张不记名预付卡
#: 资金限额不得超过 1,000 元 (per code: 1,000.00 yuan); 一次性购买不记名预付卡 1 万元以上的
#: 应当使用实名 ("以上" includes 10,000 in Chinese legal usage, so anonymous stops at 9,999.99).
#: NOTE: that rule is per single purchase; applied here per buyer per day, so a purchase
#: split into many small ones within a day (structuring) is caught too.
CNY: Final = AmountLimit(
    "CNY",
    per_code=100_000,
    per_day=999_999,
    source="PBOC 支付机构预付卡业务管理办法 (2012): anonymous card <= 1,000 yuan; "
    "real-name purchase from 10,000 yuan",
)
#: FinCEN prepaid access rule (76 FR 45403, 2011), 31 CFR 1010.100(ff): closed-loop prepaid
#: access up to $2,000 a device on any day is not a prepaid program ((ff)(4)(iii)(A)); a
#: seller of prepaid access includes one selling more than $10,000 to any person during any
#: one day without policies that prevent it ((ff)(7), "seller of prepaid access").
USD: Final = AmountLimit(
    "USD",
    per_code=200_000,
    per_day=1_000_000,
    source="FinCEN 31 CFR 1010.100(ff): closed-loop <= $2,000 a device a day; "
    "> $10,000 to one person in one day",
)
#: EU AMLD5 (Directive (EU) 2018/843 amending Art. 12 of Directive (EU) 2015/849): due
#: diligence may be waived for e-money storing at most EUR 150. No daily amount is given.
EUR: Final = AmountLimit(
    "EUR",
    per_code=15_000,
    per_day=None,
    source="EU AMLD5, Directive 2015/849 Art. 12 as amended: anonymous e-money <= EUR 150",
)

DEFAULT_AMOUNT_LIMITS: Final[tuple[AmountLimit, ...]] = (CNY, USD, EUR)


#: ``TRACEMARK_AMOUNT_LIMITS``'s default: the three above, as ``parse_amount_limits`` reads them.
DEFAULT_AMOUNT_LIMITS_TEXT: Final = "CNY=100000:999999,USD=200000:1000000,EUR=15000:-"


def parse_amount_limits(text: str) -> tuple[AmountLimit, ...]:
    """The limits of the settings' text (``TRACEMARK_AMOUNT_LIMITS``): ``CUR=per_code:per_day``
    by commas, minor units, ``-`` for no such limit; a currency not named is not judged.
    ``ValueError`` for anything else. A limit equal to a default keeps the default's source."""
    parsed: dict[str, AmountLimit] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        currency, _, amounts = item.partition("=")
        per_code, colon, per_day = amounts.partition(":")
        fields = (per_code, per_day)
        if (
            not (1 <= len(currency) <= 16 and currency.isascii() and currency.isalnum())
            or not currency.isupper()
            or not colon
            or any(f != "-" and not (f.isascii() and f.isdigit()) for f in fields)
            or currency in parsed
        ):
            raise ValueError(f"an amount limit is CUR=per_code:per_day (or -), not {item!r}")
        code, day = (None if f == "-" else int(f) for f in fields)
        known = limit_for(DEFAULT_AMOUNT_LIMITS, currency)
        same = known is not None and (known.per_code, known.per_day) == (code, day)
        source = known.source if same and known is not None else "TRACEMARK_AMOUNT_LIMITS"
        parsed[currency] = AmountLimit(currency, code, day, source)
    return tuple(parsed.values())


#: Other spellings of a currency that the rules judge as its ISO 4217 code. A transfer's
#: currency is the platform's free text, and the red team dodged every amount rule by
#: reporting yuan as ``RMB`` or ``CNH`` (offshore yuan, at par within a fraction of a
#: percent: the same money for these rules).
CURRENCY_ALIASES: Final = {"RMB": "CNY", "CNH": "CNY"}


def money_code(currency: str | None) -> str | None:
    """The currency the rules judge ``currency`` as: NFKC, trimmed, upper case, aliases
    resolved (``" rmb"`` and ``"ＣＮＹ"`` are ``CNY``)."""
    if currency is None:
        return None
    code = unicodedata.normalize("NFKC", currency).strip().upper()
    return CURRENCY_ALIASES.get(code, code)


def spellings_of(currencies: Iterable[str]) -> list[str]:
    """The stored spellings a query must match to find every amount in ``currencies``: each
    code and its aliases, in upper and lower case (other spellings are judged when read,
    by ``money_code``, but a query by exact value cannot list them all)."""
    codes = set(currencies)
    names = codes | {alias for alias, code in CURRENCY_ALIASES.items() if code in codes}
    return sorted(names | {name.lower() for name in names})


def limit_for(limits: Iterable[AmountLimit], currency: str | None) -> AmountLimit | None:
    """The limits of ``currency`` (None: none configured; the rule ignores that currency),
    under any of its spellings (``money_code``)."""
    code = money_code(currency)
    return next((limit for limit in limits if limit.currency == code), None)


__all__ = [
    "CNY",
    "CURRENCY_ALIASES",
    "DEFAULT_AMOUNT_LIMITS",
    "DEFAULT_AMOUNT_LIMITS_TEXT",
    "EUR",
    "USD",
    "AmountLimit",
    "limit_for",
    "money_code",
    "parse_amount_limits",
    "spellings_of",
]
