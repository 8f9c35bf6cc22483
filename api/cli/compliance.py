"""``tracemark compliance report``: a platform's compliance report over a period (issue 18
item 3), as ``tracemark-compliance-report/v1`` JSON (``--out``: check it with ``tracemark
verify``) and as CSV (``--csv``: one row a signal, UTF-8 with a BOM, for a spreadsheet).

From the registry's database (the operator's mode), or with ``--api`` from its HTTP API with
an auditor's key or the platform's own (``TRACEMARK_API_KEY``). One line on stdout: what the
report holds; exit codes are the frame's (README): 3 a bad period or platform, 4 another
platform's report through the API, 13 credentials refused, 14 the API unreachable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.app import JsonFlag, app, open_registry, out, reported
from api.cli.remote import CLI_RETRIES, parse_time
from registry import errors

if TYPE_CHECKING:
    from verifier.compliance import ComplianceReport

compliance_app = typer.Typer(
    help="Compliance: a platform's signals and their evidence over a period.",
    no_args_is_help=True,
)
app.add_typer(compliance_app, name="compliance")

_DATE_ONLY_SECONDS = 86_400 - 1


def _period_end(text: str) -> int:
    """``--to``: a date alone means the end of that day (UTC), so a month reads 1st to 31st."""
    end = parse_time(text, "--to")
    assert end is not None
    value = text.strip()
    if not value.isdigit() and len(value) == 10:
        end += _DATE_ONLY_SECONDS
    return end


def _write(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write whole or not at all (rename)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding=encoding, newline="")
        os.replace(partial, path)
    except OSError as exc:
        raise errors.InvalidInput(f"cannot write {path}: {exc.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)


@compliance_app.command("report")
def report(
    platform: Annotated[str, typer.Option("--platform", help="The platform id, e.g. cardhub.")],
    start: Annotated[
        str,
        typer.Option("--from", help="The period's first day (YYYY-MM-DD, UTC) or Unix seconds."),
    ],
    end: Annotated[
        str,
        typer.Option(
            "--to", help="The period's last day (included; YYYY-MM-DD, UTC) or Unix seconds."
        ),
    ],
    csv_file: Annotated[
        Path | None, typer.Option("--csv", metavar="FILE", help="Write the CSV here.")
    ] = None,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="FILE", help="Write the report (JSON, verifies offline) here."
        ),
    ] = None,
    api: Annotated[
        str | None,
        typer.Option(
            "--api",
            envvar="TRACEMARK_API_URL",
            help="Ask the registry's HTTP API at this URL (with TRACEMARK_API_KEY: an "
            "auditor's key or the platform's own); without it, read its database directly.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="TRACEMARK_API_KEY",
            show_default=False,
            help="The API key for --api (prefer the environment variable).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The signals about a platform, the goods it held, sold or bought, and its
    counterparties over a period, each with its evidence; the report carries the log proofs
    of every cited entry (check it with `tracemark verify FILE --rpc URL`)."""
    from api.languages import signal_titles
    from readmodels.compliancecsv import csv_text

    with reported():
        first = parse_time(start, "--from")
        assert first is not None
        last = _period_end(end)
        found = _fetch(platform, first, last, api, api_key)
        if out_file is not None:
            _write(out_file, found.to_json())
        if csv_file is not None:
            _write(csv_file, csv_text(found, signal_titles()))
    summary = found.summary
    if as_json:
        written = {"json": None if out_file is None else str(out_file)}
        written["csv"] = None if csv_file is None else str(csv_file)
        out.print_json(data={**summary, "files": written})
        return
    from verifier.timetext import utc_text

    # Any uint64 the API answered (``verifier.timetext``): a line, never a traceback.
    when = utc_text(found.generated_at, "%Y-%m-%d %H:%M UTC")
    lines = "; ".join(summary["en"][:3])
    files = ", ".join(str(p) for p in (out_file, csv_file) if p is not None)
    out.print(f"{lines} (made {when}){'; written: ' + files if files else ''}", markup=False)


def _fetch(
    platform: str, start: int, end: int, api: str | None, api_key: str | None
) -> ComplianceReport:
    if not api:
        from readmodels.compliance import build_report

        return build_report(open_registry(), platform, start=start, end=end)
    from verifier.client import TracemarkClient

    with TracemarkClient(api, api_key=api_key or None, max_retries=CLI_RETRIES) as client:
        return client.compliance_report(platform, start, end)


__all__ = ["compliance_app", "report"]
