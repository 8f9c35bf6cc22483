"""Auditors' commands: ``tracemark trace`` (a good's history in order, as a table, JSON or a
Mermaid graph) and ``tracemark export`` (evidence of many goods, one file that stands alone
against the chain, plus a CSV summary; check it with ``tracemark verify EXPORT.json``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.app import JsonFlag, app, open_registry, out, reported
from api.cli.remote import CLI_RETRIES, parse_time
from registry import errors
from registry.fingerprints import GoodType, parse_fingerprint, parse_good_type
from verifier.exportlimits import MAX_EXPORT_GOODS

# The HTTP client and the trace (which reads the database) are imported by ``trace`` itself.
if TYPE_CHECKING:
    from readmodels.exports import ExportResult
    from verifier.schemas import TraceOut

ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="TRACEMARK_API_KEY",
        show_default=False,
        help="An API key with the audit scope, for --api (prefer the environment variable: "
        "a key on the command line ends up in the shell's history).",
    ),
]


@app.command()
def trace(
    good_type: Annotated[str, typer.Option("--type", help="file, code or item.")],
    fingerprint: Annotated[str, typer.Option(help="The good's fingerprint, 0x and 64 hex.")],
    api: Annotated[
        str | None,
        typer.Option(
            "--api",
            envvar="TRACEMARK_API_URL",
            help="Ask the registry's HTTP API at this URL (with TRACEMARK_API_KEY); without it, "
            "read the registry's database directly.",
        ),
    ] = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonFlag = False,
    mermaid: Annotated[
        bool, typer.Option("--mermaid", help="The holders as Mermaid graph LR text.")
    ] = False,
) -> None:
    """A good's whole history in order: registration, anchors, verifications, transfers,
    revocation, other creators' claims."""
    from readmodels.trace import build_trace, trace_mermaid, trace_table
    from verifier.client import TracemarkClient

    with reported():
        if as_json and mermaid:
            raise errors.InvalidInput("give --json or --mermaid, not both")
        kind, digest = parse_good_type(good_type), parse_fingerprint(fingerprint)
        text: str | None = None
        found: TraceOut | None = None
        if api:
            with TracemarkClient(api, api_key=api_key or None, max_retries=CLI_RETRIES) as client:
                if mermaid:
                    text = client.trace_mermaid(kind, digest)
                else:
                    found = client.trace(kind, digest)
        else:
            found = build_trace(open_registry(), kind, digest)
            if mermaid:
                text = trace_mermaid(found)
    if text is not None:
        out.print(text, markup=False, end="")
    elif found is not None and as_json:
        out.print_json(found.model_dump_json())
    elif found is not None:
        out.print(trace_table(found))


def _good(text: str) -> tuple[GoodType, bytes]:
    kind, _, fingerprint = text.partition(":")
    if not fingerprint:
        raise errors.InvalidInput(f"--good takes TYPE:0xFINGERPRINT, e.g. code:0x…, not {text!r}")
    return parse_good_type(kind), parse_fingerprint(fingerprint)


@app.command()
def export(
    out_dir: Annotated[Path, typer.Option("--out", help="The directory to write into.")],
    good: Annotated[
        list[str] | None,
        typer.Option("--good", help="A good as TYPE:0xFINGERPRINT (repeat for more)."),
    ] = None,
    creator: Annotated[str | None, typer.Option(help="Every good of this creator (0x...).")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Every good with a log entry on or after this date (YYYY-MM-DD, UTC); paged "
            "by leaf, so a good active on both sides of a page boundary is in both files."
        ),
    ] = None,
    after: Annotated[
        int | None,
        typer.Option(min=0, help="Continue a paged selection: the previous file's next_after."),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(min=1, max=MAX_EXPORT_GOODS, help="Most goods in this file."),
    ] = MAX_EXPORT_GOODS,
    name: Annotated[str, typer.Option(help="File name without extension.")] = "tracemark-export",
    credit: Annotated[
        bool,
        typer.Option(
            "--credit",
            help="Add the registry's credit facts, for `tracemark credit recompute`.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Evidence of goods in one self-contained file (entries, proofs, signed heads, the
    consistency proofs between them, anchors) and a CSV summary, from the registry's database;
    check it with `tracemark verify FILE.json --rpc URL`."""
    from readmodels.exports import ExportSelection, write_export
    from registry.eip712 import parse_address

    with reported():
        if not name or "/" in name or name.startswith("."):
            raise errors.InvalidInput("--name is a plain file name, e.g. evidence-2026-09")
        selection = ExportSelection(
            goods=tuple(_good(text) for text in good or ()),
            creator=None if creator is None else parse_address(creator, what="--creator"),
            since=parse_time(since, "--since"),
            since_text=since,
            after=after,
            limit=limit,
        )
        result = write_export(open_registry(), selection, out_dir, name=name, credit=credit)
    if as_json:
        out.print_json(data=result.as_dict())
    else:
        out.print(_describe(result), markup=False)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def _describe(result: ExportResult) -> str:
    anchored = ", ".join(f"{s:,}" for s in result.anchored_heads) or "none yet"
    line = (
        f"wrote {result.json_path} ({_count(result.goods, 'good')}, "
        f"{_count(result.entries, 'entry', 'entries')}, {_count(len(result.heads), 'head')}; "
        f"anchored: {anchored}) and {result.csv_path}"
    )
    if result.skipped_queued:
        line += f"; {_count(result.skipped_queued, 'good')} still queued left out"
    if result.next_after is not None:
        line += f"; more goods: run again with --after {result.next_after}"
    return line


__all__ = ["export", "trace"]
