"""A platform's compliance report (issue 18 item 3), ``tracemark-compliance-report/v1``: its
format and its offline check.

The report stands alone: it verifies with nothing but the chain and a pinned trust root.
It carries

- ``platform``, ``period_from``, ``period_to`` (Unix seconds): whose report, over when;
- ``signals``: each signal the registry raised about the platform, its goods or its
  counterparties in the period (``readmodels.compliance`` says which), standing or not
  (``raised_at``; ``stopped_at`` when it had stopped standing by ``generated_at``), with its
  evidence items; an item that is a log entry names it (``entry``: its leaf and what it says, e.g. a
  transfer's parties, price and currency);
- ``export``: a ``tracemark-export/v2`` of every good the signals list or cite: their
  entries with inclusion proofs under signed, anchored heads (the export's own machinery,
  ``verifier.export``: no second proof format);
- ``summary``: counts per rule, per severity and per relation, the evidence items, the cited
  amounts, in English and Chinese (``verifier.compliancefacts``);
- ``signature``: the registry's EIP-712 ``ComplianceReport`` over the platform, the period,
  the time and ``report_hash`` (the RFC 8785 SHA-256 of everything above but the export and
  the summary, which are proved and recomputed), by ``signer``, under ``domain``.

Nothing it says about itself is trusted. ``check_compliance_report`` (0) requires the
signature to recover, under the pinned trust root's domain, to a key the root names: the
signals are the registry's word, and now its signed word; (1) requires the period to be
calendar dates (to 9999-12-31, as the registry makes it), recomputes each
signal's id from its rule and subject, its severity from its weight, and that it did not
stop before it was raised; (2) checks the
export as any export, under the caller's trust policy, and requires it to be the report
registry's; (3) requires every good a signal lists to be carried by the export, and every
cited entry to be one of the export's entries at that leaf, saying exactly what the entry
says; (4) computes the summary again and refuses the report if the shipped one differs;
(5) with a chain, checks the export's heads on it.

What is not proved: which signals the registry chose, and the evidence that is not a log
entry (refused reports, verifications, ledger lines), are the registry's signed word, not
facts of the log; a signal the registry left out cannot be told from the report alone.

Pure: no web3, no ORM, no web framework.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
)

from registry.canonicaljson import canonical_json
from registry.edges import GOOD_TEXT_PATTERN, Address, DomainField, SignatureBytes, Uint64
from registry.eip712 import checksum_address
from registry.errors import InvalidInput, describe_validation
from registry.signatures import verify_signature
from verifier import boundedjson
from verifier.bundle import BundleEntry, MalformedBundle
from verifier.bundlereport import Status
from verifier.compliancefacts import (
    dated,
    entry_facts,
    good_text,
    period_text,
    severity,
    summarize,
)
from verifier.errors import BundleInvalid, NotYetEvidence
from verifier.export import ExportReport, check_export
from verifier.exportformat import Export
from verifier.exportlimits import MAX_EXPORT_BYTES
from verifier.headcheck import AnchorView
from verifier.trust import TrustPolicy

FORMAT: Final = "tracemark-compliance-report/v1"

REPORT_TYPE: Final = "ComplianceReport"
"""EIP-712 primary type of the registry's signature (``registry.eip712.STRUCT_TYPES``)."""

MAX_REPORT_BYTES: Final = MAX_EXPORT_BYTES
"""Largest report read (and written: the writer refuses a period whose report is larger)."""

MAX_REPORT_SIGNALS: Final = 10_000
"""Most signals one report carries. Threat: a hostile file of millions of small signals to
summarize; a platform's standing signals over a period are far fewer."""

MAX_SIGNAL_EVIDENCE: Final = 64
"""Most evidence items a signal carries (the rules keep 25: ``readmodels.signals``)."""

MAX_PERIOD_DAYS: Final = 366
"""Longest period one report covers (the signal history reaches back indefinitely)."""


class MalformedComplianceReport(MalformedBundle):
    """The file is not a ``tracemark-compliance-report/v1`` document."""

    code = "malformed-compliance-report"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
_Text = Annotated[str, StringConstraints(max_length=2_000)]
_Good = Annotated[str, StringConstraints(pattern=GOOD_TEXT_PATTERN)]


class CitedEvidence(_Model):
    """One evidence item of a signal; ``entry``: the log entry it is, if it is one."""

    kind: _Name
    ref: _Text
    at: Uint64 | None
    detail: _Text
    #: ``verifier.compliancefacts.entry_facts`` of the entry at ``entry.leaf_index``.
    entry: dict[str, Any] | None


class SignalSubject(_Model):
    kind: _Name
    id: _Text


class ReportedSignal(_Model):
    """A signal as the report carries it: the API's signal document, its severity, and
    why it is in this platform's report (``relations``)."""

    signal_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    code: _Name
    detail: _Text
    weight: Annotated[StrictFloat | StrictInt, Field(ge=0, le=1)]
    severity: Literal["high", "medium", "low"]
    subject: SignalSubject
    relations: Annotated[
        tuple[Literal["platform", "good", "counterparty"], ...], Field(min_length=1, max_length=3)
    ]
    goods: Annotated[tuple[_Good, ...], Field(max_length=64)]
    goods_total: Annotated[StrictInt, Field(ge=0)]
    platforms: Annotated[tuple[_Name, ...], Field(max_length=64)]
    first_at: Uint64 | None
    last_at: Uint64 | None
    #: When the registry raised it (the spell this version of it belongs to), and when it
    #: stopped standing (its evidence aged out of the look-back, or it was cleared); None:
    #: it still stood when the report was made (``readmodels.signalhistory``).
    raised_at: Uint64
    stopped_at: Uint64 | None
    evidence: Annotated[tuple[CitedEvidence, ...], Field(max_length=MAX_SIGNAL_EVIDENCE)]


class ComplianceReport(_Model):
    """A ``tracemark-compliance-report/v1`` document."""

    format: Literal["tracemark-compliance-report/v1"]
    platform: _Name
    period_from: Uint64
    period_to: Uint64
    generated_at: Uint64
    #: The registry that says it made the report (checked: the export's, whose heads it signed).
    registry: Address
    signals: Annotated[tuple[ReportedSignal, ...], Field(max_length=MAX_REPORT_SIGNALS)]
    #: The proofs of every good the signals list or cite; null when there are none.
    export: Export | None
    #: ``verifier.compliancefacts.summarize`` of ``signals``: checked equal, never trusted.
    summary: dict[str, Any]
    #: The EIP-712 domain the report is signed under (the trust root's is used to check it).
    domain: DomainField
    signer: Address
    signature: SignatureBytes

    def to_json(self) -> str:
        return self.model_dump_json(indent=1) + "\n"

    def signal_documents(self) -> list[dict[str, Any]]:
        return [s.model_dump(mode="json") for s in self.signals]

    @classmethod
    def parse(cls, data: bytes | str) -> ComplianceReport:
        """Parse strictly: bounded size, one value, no duplicate keys, no NaN, no unknown
        fields, every value of its type and range."""
        document = boundedjson.strict_document(
            data, MAX_REPORT_BYTES, MalformedComplianceReport, "a compliance report"
        )
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise MalformedComplianceReport(f"a compliance report is a {FORMAT} object")
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            raise MalformedComplianceReport(
                "malformed compliance report: " + describe_validation(exc, most=3)
            ) from None


_SIGNED_FIELDS: Final = frozenset(
    {"format", "platform", "period_from", "period_to", "generated_at", "registry", "signals"}
)
"""What the registry's signature covers: all but the export (proved by its own proofs), the
summary (recomputed from the signals) and the signature's own fields."""


def report_hash(report: ComplianceReport) -> bytes:
    """SHA-256 of the RFC 8785 JSON of what the registry vouches for: the platform, the
    period, when, which registry, and the signals, as the report's JSON carries them."""
    signed = report.model_dump(mode="json", include=set(_SIGNED_FIELDS))
    return hashlib.sha256(canonical_json(signed)).digest()


def report_message(report: ComplianceReport, digest: bytes) -> dict[str, Any]:
    """The EIP-712 ``ComplianceReport`` message of a report, its ``report_hash`` given."""
    return {
        "platform": report.platform,
        "periodFrom": report.period_from,
        "periodTo": report.period_to,
        "reportHash": digest,
        "timestamp": report.generated_at,
    }


def signal_id(code: str, subject_kind: str, subject_id: str) -> str:
    """``readmodels.signals.Signal.signal_id``: the same rule about the same subject."""
    return hashlib.sha256(f"{code}\0{subject_kind}\0{subject_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ComplianceCheck:
    """What a report proved: its signals' summary (recomputed, equal to the shipped one)
    and what its export proved (None: it cites no log entry, nothing to prove)."""

    platform: str
    period_from: int
    period_to: int
    signals: int
    summary_document: dict[str, Any]
    export: ExportReport | None

    @property
    def status(self) -> Status:
        return "chain-not-checked" if self.export is None else self.export.status

    def summary(self) -> str:
        facts = self.summary_document["facts"]
        proofs = (
            "no log entry cited, nothing to prove against the chain"
            if self.export is None
            else f"evidence: {self.export.summary()}"
        )
        return (
            "; ".join(self.summary_document["en"])
            + f" ({facts['logged_entries']} cited entries checked against their proofs). "
            + proofs
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "status": self.status,
            "summary": self.summary(),
            "platform": self.platform,
            "period_from": self.period_from,
            "period_to": self.period_to,
            "facts": self.summary_document["facts"],
            "en": self.summary_document["en"],
            "zh": self.summary_document["zh"],
            "export": None if self.export is None else self.export.as_dict(),
        }


def check_compliance_report(
    report: ComplianceReport, trust: TrustPolicy, chain: AnchorView | None
) -> ComplianceCheck:
    """Check a compliance report under the caller's trust policy; return what it proves, or
    raise ``BundleInvalid`` (the step named), ``UntrustedRegistry``, or ``NotAnchoredYet`` /
    ``NotFinalYet`` carrying this check. ``chain`` None checks everything but the chain."""
    # 0. The registry signed it: under the pinned root's domain, by a key the root names.
    root = trust.root_for(report.domain)
    if not root.names_key(report.signer):
        raise BundleInvalid(
            "signature",
            f"the report is signed by {checksum_address(report.signer)}, a key trust root "
            f"{root.label()} does not name",
        )
    try:
        verify_signature(
            REPORT_TYPE,
            report_message(report, report_hash(report)),
            root.domain(),
            report.signature,
            checksum_address(report.signer),
        )
    except InvalidInput as exc:  # SignatureError is an InvalidInput
        raise BundleInvalid(
            "signature",
            f"the registry's signature does not cover this report ({exc.detail}): its "
            "signals, period or platform were changed",
        ) from None
    # 1. The period is calendar dates, as the registry makes it (``require_period``): its
    #    summary writes them, and a time past 9999 is no date (a verdict, never a crash).
    if not (dated(report.period_from) and dated(report.period_to)):
        raise BundleInvalid("period", period_text(report.period_from, report.period_to))
    #    Each signal is what it says: its id from its rule and subject, its severity.
    for signal in report.signals:
        if signal.signal_id != signal_id(signal.code, signal.subject.kind, signal.subject.id):
            raise BundleInvalid(
                "signals", f"signal {signal.signal_id} is not the id of its rule and subject"
            )
        if signal.severity != severity(signal.weight):
            raise BundleInvalid(
                "signals", f"signal {signal.signal_id}'s severity is not its weight's"
            )
        if signal.stopped_at is not None and signal.stopped_at < signal.raised_at:
            raise BundleInvalid(
                "signals", f"signal {signal.signal_id} stopped standing before it was raised"
            )
    # 2. The export as any export (all but the chain: last, below).
    export = report.export
    export_report = None if export is None else check_export(export, trust, None)
    if export is not None and export.registry != report.registry:
        raise BundleInvalid(
            "shape",
            f"the report names registry {checksum_address(report.registry)}, its export "
            f"{checksum_address(export.registry)}",
        )
    # 3. Every listed good and every cited entry is carried, and says what the report says.
    _check_citations(report)
    # 4. The summary, computed again from the checked signals.
    try:
        expected = summarize(
            platform=report.platform,
            start=report.period_from,
            end=report.period_to,
            signals=report.signal_documents(),
        )
    except (ValueError, KeyError) as exc:  # a price that is no number: refused by step 3
        raise BundleInvalid("summary", f"the signals do not summarize: {exc}") from None
    if expected != report.summary:
        raise BundleInvalid("summary", _summary_difference(expected, report.summary))
    check = ComplianceCheck(
        platform=report.platform,
        period_from=report.period_from,
        period_to=report.period_to,
        signals=len(report.signals),
        summary_document=expected,
        export=export_report,
    )
    if export is None or chain is None:
        return check
    # 5. The chain: every head of the export on the trusted contract, the last one final.
    try:
        chained = check_export(export, trust, chain)
    except NotYetEvidence as exc:
        raise type(exc)(exc.detail, dataclasses.replace(check, export=exc.report)) from None
    return dataclasses.replace(check, export=chained)


def _check_citations(report: ComplianceReport) -> None:
    carried: dict[int, BundleEntry] = {}
    goods: set[str] = set()
    if report.export is not None:
        for carried_good in report.export.goods:
            goods.add(good_text(carried_good.good.good_type, carried_good.good.fingerprint))
            for proved in carried_good.entries:
                carried[proved.leaf_index] = proved
    for signal in report.signals:
        where = f"signal {signal.signal_id} ({signal.code})"
        for good in signal.goods:
            if good.lower() not in goods:
                raise BundleInvalid("citation", f"{where} lists {good}, whose proofs are missing")
        for item in signal.evidence:
            if item.entry is None:
                continue
            leaf = item.entry.get("leaf_index")
            entry: BundleEntry | None = carried.get(leaf) if isinstance(leaf, int) else None
            if entry is None:
                raise BundleInvalid(
                    "citation", f"{where} cites leaf {leaf}, which the export does not carry"
                )
            try:
                facts = entry_facts(entry)
            except InvalidInput as exc:  # pragma: no cover - the export check parsed it
                raise BundleInvalid("citation", f"leaf {leaf}: {exc.detail}") from None
            if facts != item.entry:
                changed = sorted(
                    k for k in {*facts, *item.entry} if facts.get(k) != item.entry.get(k)
                )
                raise BundleInvalid(
                    "citation",
                    f"{where} says leaf {leaf} is not what the entry says ({', '.join(changed)})",
                )


def _summary_difference(expected: dict[str, Any], shipped: dict[str, Any]) -> str:
    for key in ("facts", "en", "zh"):
        if expected.get(key) != shipped.get(key):
            return (
                f"the summary's '{key}' is not what the report's signals show: the summary "
                "must be computed from them, never taken from the report"
            )
    return "the summary carries fields the signals do not compute"


def is_compliance_report(document: Any) -> bool:
    return isinstance(document, dict) and document.get("format") == FORMAT


__all__ = [
    "FORMAT",
    "MAX_PERIOD_DAYS",
    "MAX_REPORT_BYTES",
    "MAX_REPORT_SIGNALS",
    "REPORT_TYPE",
    "CitedEvidence",
    "ComplianceCheck",
    "ComplianceReport",
    "MalformedComplianceReport",
    "ReportedSignal",
    "SignalSubject",
    "check_compliance_report",
    "is_compliance_report",
    "report_hash",
    "report_message",
    "signal_id",
]
