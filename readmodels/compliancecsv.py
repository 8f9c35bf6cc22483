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
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from verifier.compliance import ComplianceReport, ReportedSignal

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
)
"""The columns, in order (documented in docs/ARCHITECTURE.md; new ones only at the end).
Times are ISO 8601 UTC; ``relations``, ``goods`` and ``logged_leaves`` are ``;``-separated;
``amounts`` lists each cited transfer's price and currency (``1000 CNY;500 CNY``);
``stopped_at`` is empty for a signal that still stood when the report was made."""

BOM: Final = "\ufeff"
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """The text as a spreadsheet shows it, never as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _when(at: int | None) -> str:
    return "" if at is None else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(report: ComplianceReport, signal: ReportedSignal) -> list[str]:
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
    ]


def csv_lines(report: ComplianceReport) -> Iterable[str]:
    """The CSV text, a row at a time, the byte order mark first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield BOM + buffer.getvalue()
    for signal in report.signals:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([safe_cell(cell) for cell in _row(report, signal)])
        yield buffer.getvalue()


def csv_text(report: ComplianceReport) -> str:
    return "".join(csv_lines(report))


__all__ = ["BOM", "CSV_COLUMNS", "csv_lines", "csv_text", "safe_cell"]
