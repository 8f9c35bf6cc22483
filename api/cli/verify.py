"""``tracemark verify BUNDLE.json``: check a proof bundle (or an evidence export, an absence
proof or an order's dispute evidence, by its ``format``; or a ``c2sp.org/tlog-proof@v1``, by
its first line) with nothing but the chain and a trust root the user pinned.

One line on stdout, ``OK: <what was proved>`` (``NOT REGISTERED: ...`` for an absence proof),
or on stderr, ``FAIL: <first reason>`` (or ``UNTRUSTED:``, ``NOT FINAL:``). Exit codes beyond
the frame's (README): 11 the evidence does not verify; 12 it verifies but is not yet evidence
against the chain (no ``--rpc`` given, or its head is not anchored yet); 15 no pinned trust
root names its registry; 16 anchored, but not yet as deep as the trust root asks (check again
later); 17 an absence proof verified: the good is NOT registered as of its head.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, NoReturn

import typer

from api.cli.app import JsonFlag, app, err, out, reported, state
from registry import errors

# NOTE: the verifier's modules are imported where they run: every ``tracemark`` command,
# ``--help`` too, imports this module to register ``verify`` (bench/cli_bench.py).
if TYPE_CHECKING:
    from verifier.absence import Absence
    from verifier.bundle import Bundle
    from verifier.bundlereport import AbsenceReport, BundleReport
    from verifier.compliance import ComplianceCheck, ComplianceReport
    from verifier.errors import BundleInvalid, UntrustedRegistry
    from verifier.export import ExportReport
    from verifier.exportformat import Export
    from verifier.orderevidence import OrderEvidence, OrderEvidenceReport
    from verifier.tlogproof import TlogProof
    from verifier.tlogproofcheck import TlogProofReport
    from verifier.trust import TrustPolicy, TrustRoot

EXIT_BUNDLE_INVALID: Final = 11
"""The bundle does not verify: a leaf, signature, proof, head or the chain contradicts it."""

EXIT_NOT_ANCHORED: Final = 12
"""Everything in the bundle checks out, but it was not proved against a chain: no ``--rpc``
was given, or the contract does not hold its head yet. Not yet evidence; retry later."""

EXIT_UNTRUSTED: Final = 15
"""No pinned trust root (nor ``--trust FILE``) names the registry the evidence is from."""

EXIT_NOT_FINAL: Final = 16
"""The contract holds the head, but not yet at the trust root's depth: a reorganisation
could still remove it. Not a failure; check again after more blocks."""

EXIT_NOT_REGISTERED: Final = 17
"""An absence proof verified against the chain: the good is not in the log as of its head.
Non-zero so that a script testing only for 0 never takes a proven absence for authenticity."""


def _read_at_most(path: Path, limit: int, name: str) -> bytes:
    """The file's first ``limit`` + 1 bytes (one more than a parser accepts, so that an
    oversized file is refused by its parser, not cut short); ``name`` says it in errors."""
    try:
        with path.open("rb") as stream:
            return stream.read(limit + 1)
    except OSError as exc:
        raise errors.InvalidInput(f"cannot read {name}: {exc.strerror}") from None


def read_bundle(path: Path) -> Bundle:
    """Read and parse a bundle file, reading at most ``MAX_BUNDLE_BYTES`` + 1 bytes."""
    from verifier.bundle import MAX_BUNDLE_BYTES, Bundle, MalformedBundle

    data = _read_at_most(path, MAX_BUNDLE_BYTES, f"the bundle {path}")
    try:
        return Bundle.parse(data)
    except MalformedBundle as exc:
        raise MalformedBundle(f"{path}: {exc.detail}") from None


def read_evidence(
    path: Path,
) -> Bundle | Export | Absence | TlogProof | OrderEvidence | ComplianceReport:
    """Read a bundle, an export, an absence proof, an order's evidence or a compliance report
    (by its ``format``), or a ``c2sp.org/tlog-proof@v1`` (by its first line), at most
    ``MAX_EXPORT_BYTES`` + 1 bytes."""
    from verifier.absence import MalformedAbsence
    from verifier.bundle import MalformedBundle
    from verifier.compliance import FORMAT as COMPLIANCE_REPORT
    from verifier.compliance import ComplianceReport
    from verifier.exportformat import MAX_EXPORT_BYTES, MalformedExport, parse_evidence
    from verifier.orderevidence import FORMAT as ORDER_EVIDENCE
    from verifier.orderevidence import OrderEvidence
    from verifier.tlogproof import MalformedTlogProof, TlogProof, is_tlog_proof

    data = _read_at_most(path, MAX_EXPORT_BYTES, str(path))
    try:
        if is_tlog_proof(data):
            return TlogProof.parse(data)
        # An order's evidence names its format first (as written); any other file is read by
        # the evidence parser, which names an order's evidence with its format elsewhere.
        if _ORDER_EVIDENCE_HEAD.match(data[:256]):
            return OrderEvidence.parse(data)
        if _COMPLIANCE_REPORT_HEAD.match(data[:256]):
            return ComplianceReport.parse(data)
        try:
            return parse_evidence(data)
        except MalformedBundle:
            if ORDER_EVIDENCE.encode() in data:
                return OrderEvidence.parse(data)
            if COMPLIANCE_REPORT.encode() in data:
                return ComplianceReport.parse(data)
            raise
    except (MalformedBundle, MalformedExport, MalformedAbsence, MalformedTlogProof) as exc:
        raise type(exc)(f"{path}: {exc.detail}") from None


_ORDER_EVIDENCE_HEAD: Final = re.compile(rb'\s*\{\s*"format"\s*:\s*"tracemark-order-evidence/v1"')
_COMPLIANCE_REPORT_HEAD: Final = re.compile(
    rb'\s*\{\s*"format"\s*:\s*"tracemark-compliance-report/v1"'
)


@app.command()
def verify(
    bundle_file: Annotated[
        Path,
        typer.Argument(
            metavar="BUNDLE.json",
            help="A tracemark-bundle file, a tracemark-export file (tracemark export), "
            "a tracemark-absence file, an order's evidence (tracemark-order-evidence), "
            "a compliance report (tracemark compliance report), "
            "a real-name attestation's proof (tracemark-attestation-proof), "
            "or a c2sp.org/tlog-proof@v1 file.",
        ),
    ],
    rpc: Annotated[
        str | None,
        typer.Option(
            "--rpc",
            envvar="TRACEMARK_VERIFY_RPC_URL",
            help="JSON-RPC of the chain to check the anchor on; without it the chain is not "
            "checked.",
        ),
    ] = None,
    trust: Annotated[
        list[Path] | None,
        typer.Option(
            "--trust",
            metavar="FILE",
            help="Trust this trust root file for this run (instead of the pinned ones: "
            "tracemark trust add).",
        ),
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            metavar="BUNDLE.json",
            help="With a delivery receipt: the good's proof bundle, to check the receipt's "
            "facts against the log (and, with --rpc, the chain).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a proof bundle, an evidence export or an absence proof under a pinned trust
    root: leaves, payloads, signatures, proofs, the state map, heads, their consistency, and
    their anchors. A buyer's delivery receipt is checked too (its signature; with --bundle,
    its facts against the log; with --rpc as well, against the chain).

    Exit 0 when it verifies against the chain at the trust root's depth, 11 when it does not
    verify, 12 when it verifies but was not checked against a chain or its head is not
    anchored yet, 15 when no pinned trust root names its registry, 16 when its anchor is not
    final yet, 17 when an absence proof verifies: the good is NOT registered as of its head.
    """
    # Nothing to clean up after: the program may end as soon as the verdict is printed.
    state.ends_without_teardown = True
    from verifier.absence import Absence
    from verifier.attestationproof import MAX_PROOF_BYTES, is_attestation_proof
    from verifier.boundedjson import collector_paused
    from verifier.compliance import ComplianceReport, check_compliance_report
    from verifier.errors import BundleInvalid, NotFinalYet, NotYetEvidence, UntrustedRegistry
    from verifier.export import check_export
    from verifier.exportformat import Export
    from verifier.offline import check_bundle
    from verifier.orderevidence import OrderEvidence, check_order_evidence
    from verifier.statecheck import check_absence
    from verifier.tlogproof import TlogProof
    from verifier.tlogproofcheck import check_tlog_proof
    from verifier.trust import TrustPolicy
    from verifier.truststore import TrustStore, read_trust_root

    # NOTE: one short process checking one document of up to ~10^6 objects: the cyclic
    # collector waits for the whole check (its passes over them were ~10% of an export's).
    with reported(), collector_paused():
        if _is_receipt(bundle_file):
            _verify_receipt(bundle_file, bundle, rpc, trust, as_json)
            return
        head = _read_at_most(bundle_file, MAX_PROOF_BYTES, str(bundle_file))
        if is_attestation_proof(head):  # a real-name attestation's proof (issue 18 item 4)
            from api.cli.attestation import verify_attestation

            verify_attestation(head, rpc, trust, as_json)
            return
        evidence = read_evidence(bundle_file)
        state.leave_to_exit(evidence)
        policy = (
            TrustPolicy([read_trust_root(path) for path in trust])
            if trust
            else TrustStore().policy()
        )
        chain = None
        # Nothing to read on a chain: an empty export, a report that cites no entry.
        nothing = (isinstance(evidence, Export) and not evidence.heads) or (
            isinstance(evidence, ComplianceReport)
            and (evidence.export is None or not evidence.export.heads)
        )
        if rpc and not nothing:
            if not rpc.startswith(("http://", "https://")):
                raise errors.InvalidInput("--rpc must be an http:// or https:// URL")
            try:
                root = _trust_root(evidence, policy)
            except UntrustedRegistry as exc:
                _refuse_untrusted(exc, as_json)
            except BundleInvalid as exc:
                _refuse_invalid(exc, as_json)
            # Plain JSON-RPC, no web3: a verifier's reads are few (anchoring/reader.py).
            from anchoring.reader import ChainReader

            # The contract comes from the trust root, never from the evidence.
            chain = ChainReader(rpc, root.contract_address)
        report: (
            BundleReport
            | ExportReport
            | AbsenceReport
            | TlogProofReport
            | OrderEvidenceReport
            | ComplianceCheck
        )
        try:
            if isinstance(evidence, OrderEvidence):
                report = check_order_evidence(evidence, policy, chain)
            elif isinstance(evidence, ComplianceReport):
                report = check_compliance_report(evidence, policy, chain)
            elif isinstance(evidence, TlogProof):
                report = check_tlog_proof(evidence, policy, chain)
            elif isinstance(evidence, Export):
                report = check_export(evidence, policy, chain)
            elif isinstance(evidence, Absence):
                report = check_absence(evidence, policy, chain)
            else:
                report = check_bundle(evidence, policy, chain)
        except UntrustedRegistry as exc:
            _refuse_untrusted(exc, as_json)
        except BundleInvalid as exc:
            _refuse_invalid(exc, as_json)
        except NotYetEvidence as exc:
            partial = exc.report
            if as_json:
                out.print_json(json.dumps(partial.as_dict()))
            else:
                label = "NOT FINAL" if isinstance(exc, NotFinalYet) else "NOT ANCHORED"
                out.print(f"{label}: {partial.summary()}", markup=False)
            raise typer.Exit(
                EXIT_NOT_FINAL if isinstance(exc, NotFinalYet) else EXIT_NOT_ANCHORED
            ) from None
    _emit(report, as_json, chain_asked=chain is not None)


def _is_receipt(path: Path) -> bool:
    from verifier.deliveryreceipt import is_receipt_file

    return is_receipt_file(_read_at_most(path, 4096, str(path)))


def _verify_receipt(
    path: Path, bundle_path: Path | None, rpc: str | None, trust: list[Path] | None, as_json: bool
) -> None:
    """``tracemark verify RECEIPT.json [--bundle BUNDLE.json] [--rpc URL]`` (issue 17 item 3):
    exit 0 only when the receipt and its bundle verify against the chain; 12 when it holds
    but was not checked against a chain (no bundle, or no --rpc) or is not anchored yet."""
    from verifier.bundle import MAX_BUNDLE_BYTES
    from verifier.deliveryreceipt import check_delivery_receipt, parse_receipt_file
    from verifier.errors import NotFinalYet, NotYetEvidence, UntrustedRegistry, VerificationError
    from verifier.trust import TrustPolicy
    from verifier.truststore import TrustStore, read_trust_root

    policy = TrustPolicy([read_trust_root(p) for p in trust]) if trust else TrustStore().policy()
    try:
        receipt = parse_receipt_file(_read_at_most(path, MAX_BUNDLE_BYTES, str(path)))
        bundle = None if bundle_path is None else read_bundle(bundle_path)
        chain = None
        if rpc and bundle is not None:
            if not rpc.startswith(("http://", "https://")):
                raise errors.InvalidInput("--rpc must be an http:// or https:// URL")
            from anchoring.reader import ChainReader

            # The contract comes from the trust root, never from the receipt or the bundle.
            chain = ChainReader(rpc, policy.root_for(receipt.domain).contract_address)
        report = check_delivery_receipt(receipt, policy, bundle=bundle, chain=chain)
    except UntrustedRegistry as exc:
        _refuse_untrusted(exc, as_json)
    except NotYetEvidence as exc:
        label = "NOT FINAL" if isinstance(exc, NotFinalYet) else "NOT ANCHORED"
        err.print(f"{label}: {exc.detail}", markup=False)
        raise typer.Exit(
            EXIT_NOT_FINAL if isinstance(exc, NotFinalYet) else EXIT_NOT_ANCHORED
        ) from None
    except VerificationError as exc:
        if as_json:
            out.print_json(
                json.dumps({"status": "failed", "failure": exc.detail, "failed_step": exc.step})
            )
        err.print(f"FAIL: {exc.detail}", markup=False)
        raise typer.Exit(EXIT_BUNDLE_INVALID) from None
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        line = report.summary()
        if report.status != "verified":
            line += " (pass --bundle BUNDLE.json and --rpc URL to check it on the chain)"
        out.print(f"OK: {line}", markup=False)
    if report.status != "verified":
        raise typer.Exit(EXIT_NOT_ANCHORED)


def _trust_root(
    evidence: Bundle | Export | Absence | TlogProof | OrderEvidence | ComplianceReport,
    policy: TrustPolicy,
) -> TrustRoot:
    """The pinned root whose contract ``--rpc`` is read at: named by the evidence's head's
    domain, or by a tlog-proof's checkpoint origin (which has no domain of its own)."""
    from verifier.compliance import ComplianceReport
    from verifier.exportformat import Export
    from verifier.tlogproof import TlogProof
    from verifier.tlogproofcheck import proof_origin, root_for_origin

    if isinstance(evidence, TlogProof):
        return root_for_origin(policy, proof_origin(evidence))
    if isinstance(evidence, ComplianceReport):
        assert evidence.export is not None  # a report citing no entry reads no chain
        evidence = evidence.export
    head = evidence.heads[0] if isinstance(evidence, Export) else evidence.tree_head
    return policy.root_for(head.domain)


def _refuse_invalid(exc: BundleInvalid, as_json: bool) -> NoReturn:
    if as_json:
        out.print_json(
            json.dumps({"status": "failed", "failure": exc.detail, "failed_step": exc.step})
        )
    err.print(f"FAIL: {exc.detail}", markup=False)
    raise typer.Exit(EXIT_BUNDLE_INVALID) from None


def _refuse_untrusted(exc: UntrustedRegistry, as_json: bool) -> NoReturn:
    if as_json:
        out.print_json(json.dumps({"status": "untrusted", "failure": exc.detail}))
    err.print(f"UNTRUSTED: {exc.detail}", markup=False)
    raise typer.Exit(EXIT_UNTRUSTED)


def _emit(
    report: BundleReport
    | ExportReport
    | AbsenceReport
    | TlogProofReport
    | OrderEvidenceReport
    | ComplianceCheck,
    as_json: bool,
    *,
    chain_asked: bool,
) -> None:
    from verifier.bundlereport import AbsenceReport

    absent = isinstance(report, AbsenceReport)
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        line = report.summary()
        if not chain_asked:
            line += " (pass --rpc URL to check it)"
        out.print(f"{'NOT REGISTERED' if absent else 'OK'}: {line}", markup=False)
    if report.status != "verified":
        raise typer.Exit(EXIT_NOT_ANCHORED)
    if absent:
        raise typer.Exit(EXIT_NOT_REGISTERED)


__all__ = [
    "EXIT_BUNDLE_INVALID",
    "EXIT_NOT_ANCHORED",
    "EXIT_NOT_FINAL",
    "EXIT_NOT_REGISTERED",
    "EXIT_UNTRUSTED",
    "read_bundle",
    "read_evidence",
    "verify",
]
