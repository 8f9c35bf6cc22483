"""``tracemark verify BUNDLE.json``: check a proof bundle (or an evidence export, by its
``format``) with nothing but the chain.

One line on stdout, ``OK: <what was proved>``, or on stderr, ``FAIL: <first reason>``. Exit
codes beyond the frame's (README): 11 the bundle does not verify; 12 it verifies but is not
yet evidence against the chain (no ``--rpc`` given, or its head is not anchored yet).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Final

import typer

from api.cli.app import JsonFlag, app, err, out, reported
from registry import errors
from registry.eip712 import parse_address
from verifier.bundle import MAX_BUNDLE_BYTES, Bundle, MalformedBundle
from verifier.export import (
    MAX_EXPORT_BYTES,
    Export,
    ExportReport,
    MalformedExport,
    check_export,
    parse_evidence,
)
from verifier.offline import BundleReport, check_bundle

EXIT_BUNDLE_INVALID: Final = 11
"""The bundle does not verify: a leaf, signature, proof, head or the chain contradicts it."""

EXIT_NOT_ANCHORED: Final = 12
"""Everything in the bundle checks out, but it was not proved against a chain: no ``--rpc``
was given, or the contract does not hold its head yet. Not yet evidence; retry later."""


def read_bundle(path: Path) -> Bundle:
    """Read and parse a bundle file, reading at most ``MAX_BUNDLE_BYTES`` + 1 bytes."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise errors.InvalidInput(f"cannot read the bundle {path}: {exc.strerror}") from None
    try:
        return Bundle.parse(data)
    except MalformedBundle as exc:
        raise MalformedBundle(f"{path}: {exc.detail}") from None


def read_evidence(path: Path) -> Bundle | Export:
    """Read a bundle or an export (by its ``format``), at most ``MAX_EXPORT_BYTES`` + 1 bytes."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_EXPORT_BYTES + 1)
    except OSError as exc:
        raise errors.InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse_evidence(data)
    except MalformedBundle as exc:
        raise MalformedBundle(f"{path}: {exc.detail}") from None
    except MalformedExport as exc:
        raise MalformedExport(f"{path}: {exc.detail}") from None


@app.command()
def verify(
    bundle_file: Annotated[
        Path,
        typer.Argument(
            metavar="BUNDLE.json",
            help="A tracemark-bundle/v1 file, or a tracemark-export/v1 file (tracemark export).",
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
    contract: Annotated[
        str | None,
        typer.Option(help="Pin the anchor contract you trust (0x...); default: the head's."),
    ] = None,
    signer: Annotated[
        str | None,
        typer.Option(help="Pin the registry key you trust to sign tree heads (0x...)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a proof bundle or an evidence export: leaves, payloads, signatures, proofs, heads,
    their consistency, and their anchors.

    Exit 0 when it verifies against the chain, 11 when it does not verify, 12 when it
    verifies but was not checked against a chain or its head is not anchored yet.
    """
    with reported():
        contract = None if contract is None else parse_address(contract, what="--contract")
        signer = None if signer is None else parse_address(signer, what="--signer")
        evidence = read_evidence(bundle_file)
        chain = None
        if rpc:
            if not rpc.startswith(("http://", "https://")):
                raise errors.InvalidInput("--rpc must be an http:// or https:// URL")
            # Imported only when a chain is asked for: checking offline needs no web3.
            from anchoring.chain import Chain

            heads = evidence.heads if isinstance(evidence, Export) else (evidence.tree_head,)
            address = contract or (heads[0].domain.verifyingContract if heads else None)
            chain = None if address is None else Chain.connect(rpc, address)
        report: BundleReport | ExportReport
        if isinstance(evidence, Export):
            report = check_export(evidence, chain, trusted_signer=signer, trusted_contract=contract)
        else:
            report = check_bundle(evidence, chain, trusted_signer=signer, trusted_contract=contract)
    _emit(report, as_json, chain_asked=bool(rpc))


def _emit(report: BundleReport | ExportReport, as_json: bool, *, chain_asked: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    if report.failure is not None:
        err.print(f"FAIL: {report.failure}", markup=False)
        raise typer.Exit(EXIT_BUNDLE_INVALID)
    if not as_json:
        line = report.summary()
        if not chain_asked:
            line += " (pass --rpc URL to check it)"
        out.print(f"OK: {line}", markup=False)
    if report.status != "verified":
        raise typer.Exit(EXIT_NOT_ANCHORED)


__all__ = ["EXIT_BUNDLE_INVALID", "EXIT_NOT_ANCHORED", "read_bundle", "read_evidence", "verify"]
