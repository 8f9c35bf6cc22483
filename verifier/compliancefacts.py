"""What a compliance report shows (issue 18 item 3): the facts of a cited log entry, a
signal's severity, and the summary, computed alike by the server and by the offline verifier.

``summarize`` is a function of the report's signals only: counts per rule (every code the
report carries, whatever it is: no list of codes here, so a rule added later is counted as
any other), per severity and per relation, the evidence items and how many of them are log
entries carried with their proofs, the amounts of the cited transfers per currency, and how
many signals had stopped standing by the report's time; in English and in Chinese. The
verifier computes it again from the signals it checked and refuses a report whose shipped
summary differs (``verifier.compliance``).

Pure: no web3, no ORM, no web framework.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from registry.errors import InvalidInput
from registry.fingerprints import GoodType
from registry.leaf import EntryKind
from registry.transferpayload import TransferPayload
from verifier.bundle import BundleEntry
from verifier.timetext import LAST_MOMENT, utc_text

#: A signal's weight from which it is "high" (the rules' strongest evidence: a double sale,
#: a dead good sold, a leaked batch, a laundering ring), and from which "medium".
HIGH_WEIGHT: Final = 0.7
MEDIUM_WEIGHT: Final = 0.5

SEVERITIES: Final = ("high", "medium", "low")
_SEVERITY_ZH: Final = {"high": "高", "medium": "中", "low": "低"}

#: Why a signal is in a platform's report (``readmodels.compliance``): about the platform
#: itself, about a good it held, sold or bought in the period, or about a counterparty.
RELATIONS: Final = ("platform", "good", "counterparty")
_RELATION_EN: Final = {
    "platform": "about the platform itself",
    "good": "about goods it held, sold or bought",
    "counterparty": "about its counterparties",
}
_RELATION_ZH: Final = {
    "platform": "涉及平台本身",
    "good": "涉及其持有或买卖的商品",
    "counterparty": "涉及其交易对手",
}


def severity(weight: float) -> str:
    """``high``, ``medium`` or ``low``: a function of the signal's weight alone (the weights
    are ``readmodels.signals.WEIGHTS``), so a new rule gets one without a table here."""
    if weight >= HIGH_WEIGHT:
        return "high"
    return "medium" if weight >= MEDIUM_WEIGHT else "low"


def good_text(good_type: GoodType, fingerprint: bytes) -> str:
    return f"{good_type.name.lower()}:0x{fingerprint.hex()}"


def entry_facts(entry: BundleEntry) -> dict[str, Any]:
    """What a report says of a cited log entry, read from the entry itself: its kind, leaf,
    good and actor; for a TRANSFER the reporting platform, the parties' platforms, the price
    (minor units, decimal text), the currency and whether it was final."""
    facts: dict[str, Any] = {
        "kind": entry.kind.name,
        "leaf_index": entry.leaf_index,
        "good": good_text(entry.good_type, entry.fingerprint),
        "actor": "0x" + entry.actor.hex(),
    }
    if entry.kind is EntryKind.TRANSFER:
        payload = TransferPayload.from_document(entry.payload, canonical=False)
        facts.update(
            platform=payload.platform,
            seller_platform=payload.seller.get("platform"),
            buyer_platform=payload.buyer.get("platform"),
            price=None if payload.price is None else str(payload.price),
            currency=payload.currency,
            final=payload.final,
        )
    return facts


def day(at: int) -> str:
    """A report's date as its summary writes it (any number: ``verifier.timetext``)."""
    return utc_text(at)


def _amounts(signals: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The cited transfers' prices summed per currency (each entry once, however many
    signals cite it); decimal text, exact."""
    seen: dict[int, tuple[str, int]] = {}
    for signal in signals:
        for item in signal["evidence"]:
            entry = item.get("entry")
            if entry and entry.get("kind") == "TRANSFER" and entry.get("price") is not None:
                seen[entry["leaf_index"]] = (entry.get("currency") or "", int(entry["price"]))
    totals: Counter[str] = Counter()
    for currency, price in seen.values():
        totals[currency] += price
    return {currency: str(total) for currency, total in sorted(totals.items())}


def summarize(
    *, platform: str, start: int, end: int, signals: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The summary of a report's signals (the documents as the report carries them)."""
    by_code = Counter(str(s["code"]) for s in signals)
    by_severity = Counter(str(s["severity"]) for s in signals)
    by_relation = Counter(r for s in signals for r in s["relations"])
    items = [item for s in signals for item in s["evidence"]]
    logged = sum(1 for item in items if item.get("entry") is not None)
    amounts = _amounts(signals)
    facts = {
        "platform": platform,
        "from": start,
        "to": end,
        "signals": len(signals),
        "by_code": dict(sorted(by_code.items())),
        "by_severity": {s: by_severity.get(s, 0) for s in SEVERITIES},
        "by_relation": {r: by_relation.get(r, 0) for r in RELATIONS},
        "evidence_items": len(items),
        "logged_entries": logged,
        "amounts": amounts,
        "stopped": sum(1 for s in signals if s.get("stopped_at") is not None),
    }
    return {"facts": facts, "en": _english(facts), "zh": _chinese(facts)}


def _join(parts: Iterable[str], empty: str) -> str:
    text = ", ".join(parts)
    return text or empty


def _english(f: Mapping[str, Any]) -> list[str]:
    n = f["signals"]
    return [
        f"{n} signal{'' if n == 1 else 's'} about platform {f['platform']} from "
        f"{day(f['from'])} to {day(f['to'])}",
        "by rule: " + _join((f"{c} {k}" for c, k in f["by_code"].items()), "none"),
        "by severity: " + ", ".join(f"{k} {v}" for k, v in f["by_severity"].items()),
        "; ".join(f"{_RELATION_EN[k]}: {v}" for k, v in f["by_relation"].items()),
        f"{f['evidence_items']} evidence items, of which {f['logged_entries']} are log entries "
        "carried with their proofs; the others are the registry's records",
        "amounts of the cited transfers: "
        + _join((f"{v} {c or '(no currency)'}" for c, v in f["amounts"].items()), "none"),
        f"{f['stopped']} of them had stopped standing by the time of the report (kept in the "
        "registry's signal history)",
    ]


def _chinese(f: Mapping[str, Any]) -> list[str]:
    return [
        f"平台 {f['platform']} 在 {day(f['from'])} 至 {day(f['to'])} 期间"
        f"共有 {f['signals']} 条风险信号",
        "按规则：" + _join((f"{c} {k} 条" for c, k in f["by_code"].items()), "无"),
        "按严重程度："
        + "，".join(f"{_SEVERITY_ZH[k]} {v} 条" for k, v in f["by_severity"].items()),
        "；".join(f"{_RELATION_ZH[k]}：{v} 条" for k, v in f["by_relation"].items()),
        f"证据 {f['evidence_items']} 项，其中 {f['logged_entries']} 项为附带证明的日志条目，"
        "其余为登记处的记录",
        "所引转让金额："
        + _join((f"{v} {c or '（无币种）'}" for c, v in f["amounts"].items()), "无"),
        f"其中 {f['stopped']} 条在报告生成时已不再成立（保存在登记处的信号历史中）",
    ]


def require_period(start: int, end: int, most: int) -> None:
    """A report's period: ``start`` before ``end``, at most ``most`` seconds long, both
    calendar dates (its summary writes them as dates; ``period_text`` says why not)."""
    if not (dated(start) and dated(end)):
        raise InvalidInput(period_text(start, end))
    if end <= start:
        raise InvalidInput("the period's end must be after its start")
    if end - start > most:
        raise InvalidInput(f"a report covers at most {most // 86_400} days: split the period")


def dated(at: int) -> bool:
    """Whether a report's time is one its summary writes as a date: Unix seconds from 1970 to
    ``LAST_MOMENT`` (9999-12-31 23:59:59 UTC)."""
    return 0 <= at <= LAST_MOMENT


def period_text(start: int, end: int) -> str:
    """Why a period is no report's: a time that is no calendar date (the one reason
    ``require_period`` and the offline check share)."""
    return (
        f"a report's period is calendar dates, from 1970 to {utc_text(LAST_MOMENT)} "
        f"(Unix seconds 0 to {LAST_MOMENT}); this one runs from {start} to {end}"
    )


__all__ = [
    "HIGH_WEIGHT",
    "MEDIUM_WEIGHT",
    "RELATIONS",
    "SEVERITIES",
    "dated",
    "entry_facts",
    "good_text",
    "period_text",
    "require_period",
    "severity",
    "summarize",
]
