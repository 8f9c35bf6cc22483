"""A compliance report as CSV: one row a signal, stable columns, for a spreadsheet.

UTF-8 with a byte order mark, so that Excel reads the Chinese and the platforms' names right
(without it, it guesses the system's code page). A cell that a spreadsheet would take for a
formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is written
with a leading apostrophe: the report quotes what platforms and the registry wrote (a
platform's name, a reference, a detail), which must stay text (OWASP, CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Final

from verifier.compliance import ComplianceReport, ReportedSignal
from verifier.timetext import utc_text

CSV_COLUMNS: Final = (
    "platform",
    "period_from",
    "period_to",
    "signal_id",
    "code",
    "severity",
    "weight",
    "relations",
    "subject_kind",
    "subject_id",
    "first_at",
    "last_at",
    "goods_total",
    "goods",
    "evidence_items",
    "logged_leaves",
    "amounts",
    "detail",
    "raised_at",
    "stopped_at",
    "title_en",
    "title_zh",
)
"""The columns, in order (documented in docs/ARCHITECTURE.md; new ones only at the end).
Times are ISO 8601 UTC; ``relations``, ``goods`` and ``logged_leaves`` are ``;``-separated;
``amounts`` lists each cited transfer's price and currency (``1000 CNY;500 CNY``);
``stopped_at`` is empty for a signal that still stood when the report was made; ``title_en``
and ``title_zh`` name the rule for a person, in both languages (a report has no language of
its own): the page catalogues' ``signal.<code>.title``, which the API layer passes in, the
code itself for a code they do not know."""

#: A signal code to its title in English and in Chinese.
Titles = Mapping[str, tuple[str, str]]

BOM: Final = "\ufeff"
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """The text as a spreadsheet shows it, never as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _when(at: int | None) -> str:
    # Any uint64 a fetched report carries (``verifier.timetext``): a row, never a crash.
    return "" if at is None else utc_text(at, "%Y-%m-%dT%H:%M:%SZ")


def _row(report: ComplianceReport, signal: ReportedSignal, titles: Titles) -> list[str]:
    entries = [item.entry for item in signal.evidence if item.entry is not None]
    amounts = [
        f"{e['price']} {e.get('currency') or ''}".rstrip()
        for e in entries
        if e.get("price") is not None
    ]
    return [
        report.platform,
        _when(report.period_from),
        _when(report.period_to),
        signal.signal_id,
        signal.code,
        signal.severity,
        f"{signal.weight:g}",
        ";".join(signal.relations),
        signal.subject.kind,
        signal.subject.id,
        _when(signal.first_at),
        _when(signal.last_at),
        str(signal.goods_total),
        ";".join(signal.goods),
        str(len(signal.evidence)),
        ";".join(str(e["leaf_index"]) for e in entries),
        ";".join(amounts),
        signal.detail,
        _when(signal.raised_at),
        _when(signal.stopped_at),
        *titles.get(signal.code, (signal.code, signal.code)),
    ]


def csv_lines(report: ComplianceReport, titles: Titles | None = None) -> Iterable[str]:
    """The CSV text, a row at a time, the byte order mark first. The titles come from the
    API layer's catalogues (``api.languages.signal_titles``: this layer reads no page text)."""
    titles = titles or {}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield BOM + buffer.getvalue()
    for signal in report.signals:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([safe_cell(cell) for cell in _row(report, signal, titles)])
        yield buffer.getvalue()


def csv_text(report: ComplianceReport, titles: Titles | None = None) -> str:
    return "".join(csv_lines(report, titles))


__all__ = ["BOM", "CSV_COLUMNS", "Titles", "csv_lines", "csv_text", "safe_cell"]
