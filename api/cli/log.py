"""Operator commands on the log: heads, sequencing, proofs, the integrity check."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.app import (
    JsonFlag,
    emit,
    err,
    log_app,
    open_registry,
    out,
    reported,
)
from registry import errors
from registry.errors import LogCorrupt
from registry.fingerprints import (
    parse_fingerprint,
    parse_good_type,
)
from registry.merkle import hash_leaf, verify_consistency, verify_inclusion

if TYPE_CHECKING:
    from registry.service import Registry


def _head_dict(registry: Registry) -> dict[str, Any]:
    head = registry.latest_tree_head()
    if head is None:
        raise errors.NotFound("the log is empty: no tree head signed yet")
    document = head.to_json()
    # The command's own key order (signer before signature), kept byte for byte.
    order = ("tree_size", "root", "timestamp", "signer", "signature", "domain")
    return {key: document[key] for key in order}


@log_app.command("head")
def log_head(as_json: JsonFlag = False) -> None:
    """The latest signed tree head."""
    with reported():
        data = _head_dict(open_registry())
    emit(
        data,
        as_json,
        lambda: out.print(
            f"size {data['tree_size']:,} root {data['root']} at {data['timestamp']}", markup=False
        ),
    )


@log_app.command("sequence")
def log_sequence(as_json: JsonFlag = False) -> None:
    """Integrate every queued entry now and sign a head (what `serve` does continuously)."""
    with reported():
        registry = open_registry()
        registry.sequence_all()
        data = _head_dict(registry)
    emit(data, as_json, lambda: out.print(f"size {data['tree_size']:,} root {data['root']}"))


@log_app.command("check")
def log_check(as_json: JsonFlag = False) -> None:
    """Rebuild the log from its entries; compare with the stored tree and every signed head, and
    replay the state map against every state commitment."""
    with reported():
        report = open_registry().check_log()
        data = {
            "tree_size": report.tree_size,
            "heads_checked": report.heads_checked,
            "problems": report.problems,
            "ok": not report.problems,
            "state_commitments_checked": report.commitments_checked,
        }
        if not report.problems:
            summary = (
                f"ok: {report.tree_size:,} leaves, {report.heads_checked:,} heads agree; "
                f"{report.commitments_checked:,} state commitments replayed, all agree"
            )
            emit(data, as_json, lambda: out.print(summary))
            return
        if as_json:
            out.print_json(json.dumps(data))
        for problem in report.problems:
            err.print(f"problem: {problem}", markup=False)
        if report.problems:
            raise LogCorrupt(f"{len(report.problems)} problem(s) in the log")


@log_app.command("proof")
def log_proof(
    index: Annotated[int | None, typer.Option(help="Leaf index to prove.")] = None,
    fingerprint_: Annotated[
        str | None, typer.Option("--fingerprint", help="Prove this good's REGISTER entry.")
    ] = None,
    good_type: Annotated[str, typer.Option("--type", help="file, code or item.")] = "file",
    size: Annotated[int | None, typer.Option(help="Tree size (default: latest head).")] = None,
    from_size: Annotated[
        int | None, typer.Option("--from", help="Consistency proof from this size.")
    ] = None,
    tlog_proof: Annotated[
        bool,
        typer.Option(
            "--tlog-proof",
            help="Write the entry (a REGISTER, or a receipt's TRANSFER by --index) as a "
            "c2sp.org/tlog-proof@v1 file on stdout, under the head's checkpoint (--size, or the "
            "head its bundle uses); check it with `tracemark verify`.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """An inclusion proof (by --index or --fingerprint) or a consistency proof (--from)."""
    with reported():
        registry = open_registry()
        head = registry.latest_tree_head()
        if head is None:
            raise errors.NotFound("the log is empty: no tree head signed yet")
        if tlog_proof:
            if from_size is not None or as_json:
                raise errors.InvalidInput("--tlog-proof proves an entry: not with --from or --json")
            from readmodels.tlogproofs import entry_tlog_proof

            entry = registry.entry_at(_leaf_index(registry, index, fingerprint_, good_type))
            text = entry_tlog_proof(registry, entry, size).to_bytes().decode("utf-8")
            # Written as is: the console would wrap or mark up the spec's exact lines.
            sys.stdout.write(text)
            return
        target = registry.tree_head(size) if size is not None else head
        if from_size is not None:
            proof = registry.consistency_proof(from_size, target.tree_size)
            old_root = registry.tree_head(from_size).root if from_size else b""
            if from_size:
                verify_consistency(from_size, target.tree_size, proof, old_root, target.root)
            data: dict[str, Any] = {"from": from_size, "to": target.tree_size}
        else:
            leaf_index = _leaf_index(registry, index, fingerprint_, good_type)
            entry = registry.entry_at(leaf_index)
            proof = registry.inclusion_proof(leaf_index, target.tree_size)
            verify_inclusion(
                hash_leaf(entry.leaf_data()), leaf_index, target.tree_size, proof, target.root
            )
            data = {
                "leaf_index": leaf_index,
                "tree_size": target.tree_size,
                "entry": entry.as_dict(),
                "leaf_data": "0x" + entry.leaf_data().hex(),
            }
            if entry.position is not None:
                data["batch_proof"] = registry.batch_proof(entry).to_json()
        data.update({"root": "0x" + target.root.hex(), "proof": ["0x" + p.hex() for p in proof]})
    emit(data, as_json, lambda: out.print_json(json.dumps(data)))


def _leaf_index(registry: Registry, index: int | None, fp: str | None, good_type: str) -> int:
    if (index is None) == (fp is None):
        raise errors.InvalidInput("give exactly one of --index or --fingerprint")
    if index is not None:
        return index
    history = registry.history(parse_good_type(good_type), parse_fingerprint(str(fp)))
    for entry in history:
        if entry.kind.name == "REGISTER":
            if entry.leaf_index is None:
                raise errors.NotFound("the good is queued and not yet in a signed tree head")
            return entry.leaf_index
    raise errors.NotFound(f"no {good_type} {fp} is registered")


# -- serving -------------------------------------------------------------------------------------
