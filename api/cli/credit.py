"""Credit scores from the command line: ``tracemark credit recompute EXPORT.json`` recomputes
every platform's and seller's score from an evidence export alone (one made with ``tracemark
export --credit``), with no registry and no network, under the formula the export names
(``credit/v2`` now; an older export naming ``credit/v1`` recomputes to its v1 number)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.app import JsonFlag, app, out, reported

credit_app = typer.Typer(
    help="Credit scores (credit/v2): recompute them from an evidence export.",
    no_args_is_help=True,
)
app.add_typer(credit_app, name="credit")


@credit_app.command("recompute")
def recompute(
    export_file: Annotated[
        Path, typer.Argument(help="An evidence export made with `tracemark export --credit`.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Every platform's and seller's score, with its inputs, from the export's credit facts;
    compare with the API's `GET /v1/credit/platforms/{platform}`."""
    from readmodels.creditexport import recompute as recompute_scores
    from registry import errors
    from verifier.exportformat import MAX_EXPORT_BYTES, Export

    with reported():
        if export_file.stat().st_size > MAX_EXPORT_BYTES:
            raise errors.InvalidInput("the file is larger than any export")
        scores = recompute_scores(Export.parse(export_file.read_bytes()))
    if as_json:
        out.print_json(data={"scores": scores})
        return
    for doc in scores:
        who = str(doc["platform"]) + ("" if doc["seller"] is None else f" seller {doc['seller']}")
        score = "unrated" if doc["score"] is None else f"{doc['score']}"
        inputs = ", ".join(f"{k}={v}" for k, v in dict(doc["inputs"]).items())
        out.print(f"{doc['subject']} {who}: {score} ({doc['formula']}; {inputs})", markup=False)
