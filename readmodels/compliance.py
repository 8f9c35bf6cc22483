"""Building a platform's compliance report (``verifier.compliance``, issue 18 item 3) from the
registry: the standing signals about the platform, its goods and its counterparties over a
period, each with its evidence, the proofs of every good they list or cite (an evidence
export, ``readmodels.exports``), and the summary the verifier recomputes.

Which signals (every code alike: the rule's name is never looked at):

- **platform**: its subject is the platform (``platform`` P, or a seller/buyer reference of
  P, ``P/<hash prefix>``), or it names P among the platforms it concerns;
- **good**: it implicates a good P held, sold or bought in the period: a transfer of the
  good in the period with P as seller, buyer or reporter, or a transfer to P at or before
  the period's end that no transfer followed before its start (P held it then);
- **counterparty**: its subject is a platform P traded with in the period (the other side
  of a transfer P sold or bought in), or a reference of one, ``C/<hash prefix>``;

and it is in the period: one of its evidence items is dated in it (a signal none of whose
items has a date, a standing state such as an unpaid line, when it stood in the period).

Where the signals come from: the signal history (``readmodels.signalhistory``), every version
of every signal the risk worker raised, kept after it stopped standing: a report of last
quarter lists what stood then, with the evidence it had then (the latest version of each
signal in the period), and says which had stopped standing by the report's time
(``stopped_at``). A stopped signal's goods are the ones its document lists (its first
``MAX_LISTED_GOODS``; ``risk_goods`` has every good only of the standing ones).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from readmodels.signals import good_name
from registry.errors import InvalidInput
from registry.fingerprints import GoodType, parse_fingerprint
from verifier.compliance import (
    FORMAT,
    MAX_PERIOD_DAYS,
    MAX_REPORT_BYTES,
    MAX_REPORT_SIGNALS,
    REPORT_TYPE,
    ComplianceReport,
    report_hash,
    report_message,
)
from verifier.compliancefacts import (
    RELATIONS,
    SEVERITIES,
    entry_facts,
    require_period,
    severity,
    summarize,
)
from verifier.exportformat import Export
from verifier.exportlimits import MAX_EXPORT_GOODS

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from readmodels.signalhistory import Reported
    from registry.service import Registry

DAY: Final = 86_400
_LEAF_REF: Final = re.compile(r"leaf (\d+)")
_TRANSFER_REF: Final = re.compile(r"transfer (\d+)")
#: A subject naming a party: ``platform/``, then its keyed reference hash or at least its
#: first 8 hex digits, with or without ``0x`` (``unattested-seller`` names ``party``
#: subjects ``cardhub/0x<64 hex>``; ``readmodels.signals.party_name`` writes 8 digits).
_PARTY_SUBJECT: Final = re.compile(r"([^/\s]+)/(?:0x)?([0-9a-f]{8,64})")

GoodKey = tuple[int, bytes]


def build_report(registry: Registry, platform: str, *, start: int, end: int) -> ComplianceReport:
    """The report of ``platform`` over [``start``, ``end``] (Unix seconds, both included)."""
    from registry.parties import check_platform_id

    platform = check_platform_id(platform)
    require_period(start, end, MAX_PERIOD_DAYS * DAY)
    from readmodels.signalhistory import versions_in_period
    from registry.db import read_transaction

    with read_transaction(registry.engine) as conn:
        ours, theirs, counterparties = _parties(conn, platform, start, end)
        good_signals = _signals_of_goods(conn, platform, start, end)
        history = versions_in_period(conn, start, end)
        # A stopped signal is in no ``risk_goods`` row: the goods its document lists.
        listed = {g for r in history for g in r.version.document.get("goods", ())}
        theirs_too = _goods_of_platform(conn, platform, start, end, listed)
        good_signals |= {
            r.version.signal_id
            for r in history
            if theirs_too.intersection(r.version.document.get("goods", ()))
        }
        spells = {r.version.signal_id: r for r in history}
        chosen = [
            (document, relations)
            for document in (r.version.document for r in history)
            if (
                relations := _relations(
                    document, platform, ours, theirs, counterparties, good_signals
                )
            )
        ]
        if len(chosen) > MAX_REPORT_SIGNALS:
            raise InvalidInput(
                f"{len(chosen):,} signals; a report carries at most {MAX_REPORT_SIGNALS:,}: "
                "split the period"
            )
        leaves = _cited_leaves(conn, [d for d, _ in chosen])
        goods = _goods_to_prove(conn, [d for d, _ in chosen], leaves.values())
    export = _export(registry, goods)
    carried = (
        {}
        if export is None
        else {entry.leaf_index: entry for good in export.goods for entry in good.entries}
    )
    signals = [
        _reported(d, relations, leaves, carried, spells[d["signal_id"]]) for d, relations in chosen
    ]
    signals.sort(key=lambda s: (SEVERITIES.index(s["severity"]), s["code"], s["signal_id"]))
    report = _signed(
        registry,
        {
            "format": FORMAT,
            "platform": platform,
            "period_from": start,
            "period_to": end,
            "generated_at": registry.clock(),
            "registry": registry.address,
            "signals": signals,
            "export": export,
            "summary": summarize(platform=platform, start=start, end=end, signals=signals),
        },
    )
    if len(report.to_json().encode("utf-8")) > MAX_REPORT_BYTES:
        raise InvalidInput("the report does not fit one file: split the period")
    return report


def _signed(registry: Registry, fields: dict[str, Any]) -> ComplianceReport:
    """The report, signed by the registry's key (EIP-712 ``ComplianceReport``).

    NOTE: the hash is taken of the validated report's JSON form, as the verifier takes it;
    the report is validated first under a signature of nothing (its form is all it needs)."""
    from registry.signatures import sign

    account, domain = registry.account, registry.domain
    key = bytes(account.key)
    unsigned = ComplianceReport.model_validate(
        {
            **fields,
            "domain": domain.as_dict(),
            "signer": account.address,
            "signature": sign(REPORT_TYPE, _placeholder(fields["platform"]), domain, key),
        }
    )
    message = report_message(unsigned, report_hash(unsigned))
    return unsigned.model_copy(update={"signature": sign(REPORT_TYPE, message, domain, key)})


def _placeholder(platform: str) -> dict[str, Any]:
    return {
        "platform": platform,
        "periodFrom": 0,
        "periodTo": 0,
        "reportHash": bytes(32),
        "timestamp": 0,
    }


def _parties(
    conn: Connection, platform: str, start: int, end: int
) -> tuple[set[str], dict[str, set[str]], set[str]]:
    """P's own references' hashes, its counterparties' (by platform), and the platforms it
    traded with in the period (sold to or bought from: the creator is no platform)."""
    from sqlalchemy import or_, select

    from registry.transfers import transfers_t

    c = transfers_t.c
    rows = conn.execute(
        select(c.seller_platform, c.seller_ref, c.buyer_platform, c.buyer_ref).where(
            or_(c.seller_platform == platform, c.buyer_platform == platform),
            c.created_at >= start,
            c.created_at <= end,
        )
    )
    ours: set[str] = set()
    theirs: dict[str, set[str]] = {}
    for row in rows:
        sides = ((row.seller_platform, row.seller_ref), (row.buyer_platform, row.buyer_ref))
        for side_platform, ref in sides:
            if side_platform is None or ref is None:
                continue
            if side_platform == platform:
                ours.add(bytes(ref).hex())
            else:
                theirs.setdefault(side_platform, set()).add(bytes(ref).hex())
    return ours, theirs, set(theirs)


def _involvement(platform: str, start: int, end: int) -> tuple[Any, Any, Any]:
    """A transfers alias ``t`` and two conditions on it: P ``traded`` the good in the period
    (seller, buyer or reporter), or P ``held`` it (acquired by the end, and nothing moved it
    again before the start)."""
    from sqlalchemy import and_, exists, or_
    from sqlalchemy.orm import aliased

    from registry.transfers import transfers_t

    t = transfers_t.alias("t")
    later = aliased(transfers_t, name="later")
    traded = and_(
        or_(
            t.c.seller_platform == platform,
            t.c.buyer_platform == platform,
            t.c.platform == platform,
        ),
        t.c.created_at >= start,
        t.c.created_at <= end,
    )
    moved_before = exists().where(
        later.c.good_type == t.c.good_type,
        later.c.fingerprint == t.c.fingerprint,
        later.c.id > t.c.id,
        later.c.created_at < start,
    )
    held = and_(t.c.buyer_platform == platform, t.c.created_at <= end, ~moved_before)
    return t, traded, held


def _signals_of_goods(conn: Connection, platform: str, start: int, end: int) -> set[str]:
    """The ids of the signals implicating a good P held, sold or bought in the period."""
    from sqlalchemy import and_, exists, or_, select

    from readmodels.riskworker import risk_goods_t

    g = risk_goods_t.c
    t, traded, held = _involvement(platform, start, end)
    same_good = and_(t.c.good_type == g.good_type, t.c.fingerprint == g.fingerprint)
    rows = conn.execute(
        select(g.signals).where(
            or_(exists().where(same_good, traded), exists().where(same_good, held))
        )
    )
    return {item["signal_id"] for row in rows for item in json.loads(row.signals)}


def _goods_of_platform(
    conn: Connection, platform: str, start: int, end: int, names: Iterable[str]
) -> set[str]:
    """Of the goods ``names`` (``kind:0x<hex>``), those P held, sold or bought in the period
    (as ``_signals_of_goods`` asks of ``risk_goods``)."""
    from sqlalchemy import or_, select

    goods = sorted({_good_of(name) for name in names})
    t, traded, held = _involvement(platform, start, end)
    found: set[str] = set()
    for chunk in range(0, len(goods), 500):
        fingerprints = [fp for _, fp in goods[chunk : chunk + 500]]
        rows = conn.execute(
            select(t.c.good_type, t.c.fingerprint)
            .where(t.c.fingerprint.in_(fingerprints), or_(traded, held))
            .distinct()
        )
        found.update(good_name((int(r.good_type), bytes(r.fingerprint))) for r in rows)
    return found


def _good_of(name: str) -> GoodKey:
    kind, _, fingerprint = name.partition(":")
    return int(GoodType[kind.upper()]), parse_fingerprint(fingerprint)


def _names_party(subject_id: str, parties: Mapping[str, set[str]]) -> bool:
    found = _PARTY_SUBJECT.fullmatch(subject_id)
    if found is None:
        return False
    prefix = found.group(2)
    return any(ref.startswith(prefix) for ref in parties.get(found.group(1), ()))


def _relations(
    document: Mapping[str, Any],
    platform: str,
    ours: set[str],
    theirs: Mapping[str, set[str]],
    counterparties: set[str],
    good_signals: set[str],
) -> list[str]:
    subject = document["subject"]
    about_platform = subject["kind"] == "platform"
    found = set()
    if (
        (about_platform and subject["id"] == platform)
        or platform in document.get("platforms", ())
        or _names_party(subject["id"], {platform: ours})
    ):
        found.add("platform")
    if document["signal_id"] in good_signals:
        found.add("good")
    if (about_platform and subject["id"] in counterparties) or _names_party(subject["id"], theirs):
        found.add("counterparty")
    return [r for r in RELATIONS if r in found]


def _cited_leaves(conn: Connection, documents: list[dict[str, Any]]) -> dict[str, int]:
    """The leaf of every evidence item that is a log entry: ``leaf N`` is itself, ``transfer
    N`` the TRANSFER entry the registry logged for that transfer."""
    from sqlalchemy import select

    from registry.transfers import transfers_t

    leaves: dict[str, int] = {}
    transfers: dict[int, str] = {}
    for document in documents:
        for item in document["evidence"]:
            ref = str(item.get("ref", ""))
            if (match := _LEAF_REF.fullmatch(ref)) and item.get("kind") == "entry":
                leaves[ref] = int(match.group(1))
            elif (match := _TRANSFER_REF.fullmatch(ref)) and item.get("kind") == "transfer":
                transfers[int(match.group(1))] = ref
    ids = sorted(transfers)
    c = transfers_t.c
    for chunk in range(0, len(ids), 500):
        for row in conn.execute(
            select(c.id, c.leaf_index).where(c.id.in_(ids[chunk : chunk + 500]))
        ):
            leaves[transfers[int(row.id)]] = int(row.leaf_index)
    return leaves


def _goods_to_prove(
    conn: Connection, documents: list[dict[str, Any]], leaves: Iterable[int]
) -> list[GoodKey]:
    """The goods the signals list, and those of the cited entries (a subject's entry, of no
    good, cannot be carried by an export: it is cited as a record)."""
    from sqlalchemy import select

    from registry.leaf import NO_GOOD
    from registry.log import entries_t

    goods = {_good_of(name) for document in documents for name in document.get("goods", ())}
    wanted = sorted(set(leaves))
    c = entries_t.c
    for chunk in range(0, len(wanted), 500):
        rows = conn.execute(
            select(c.good_type, c.fingerprint).where(
                c.leaf_index.in_(wanted[chunk : chunk + 500]), c.good_type != NO_GOOD
            )
        )
        goods.update((int(r.good_type), bytes(r.fingerprint)) for r in rows)
    if len(goods) > MAX_EXPORT_GOODS:
        raise InvalidInput(
            f"the signals implicate {len(goods):,} goods; one report proves at most "
            f"{MAX_EXPORT_GOODS:,}: split the period"
        )
    return sorted(goods)


def _export(registry: Registry, goods: list[GoodKey]) -> Export | None:
    """The evidence export of ``goods`` (``readmodels.exports.write_export``), read back."""
    if not goods:
        return None
    from readmodels.exports import ExportSelection, write_export

    selection = ExportSelection(goods=tuple((GoodType(t), fp) for t, fp in goods))
    with tempfile.TemporaryDirectory(prefix="tracemark-compliance-") as folder:
        result = write_export(registry, selection, Path(folder), name="proofs")
        return Export.parse(result.json_path.read_bytes())


def _reported(
    document: Mapping[str, Any],
    relations: list[str],
    leaves: Mapping[str, int],
    carried: Mapping[int, Any],
    spell: Reported,
) -> dict[str, Any]:
    """The signal as the report carries it: its document, severity, relations, and each
    evidence item's entry (when it is a log entry the export carries)."""
    evidence = []
    for item in document["evidence"]:
        leaf = leaves.get(str(item.get("ref", "")))
        entry = carried.get(leaf) if leaf is not None else None
        evidence.append(
            {
                "kind": item["kind"],
                "ref": item["ref"],
                "at": item.get("at"),
                "detail": item["detail"],
                "entry": None if entry is None else entry_facts(entry),
            }
        )
    dated = [e["at"] for e in evidence if e["at"] is not None]
    return {
        "signal_id": document["signal_id"],
        "code": document["code"],
        "detail": document["detail"],
        "weight": document["weight"],
        "severity": severity(document["weight"]),
        "subject": document["subject"],
        "relations": relations,
        "goods": list(document.get("goods", ())),
        "goods_total": document.get("goods_total", 0),
        "platforms": list(document.get("platforms", ())),
        "first_at": min(dated) if dated else None,
        "last_at": max(dated) if dated else None,
        "raised_at": spell.version.raised_at,
        "stopped_at": spell.stopped_at,
        "evidence": evidence,
    }


__all__ = ["build_report"]
