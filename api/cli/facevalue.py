"""A product's face value from the command line (``tracemark creator face-value``): what its
cards are worth, which the ``below-face-value`` laundering rule compares resale prices with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.app import JsonFlag, creator_keys, emit, out, reported
from api.cli.remote import CLI_RETRIES, creator_app
from registry import errors
from verifier.timetext import utc_text

if TYPE_CHECKING:
    from verifier.schemas import FaceValueHistoryOut, FaceValueOut


@creator_app.command("face-value")
def face_value(
    product: Annotated[str, typer.Argument(help="Your product's slug, e.g. card-100.")],
    api: Annotated[
        str,
        typer.Option(
            "--api", envvar="TRACEMARK_API_URL", help="The registry's API, e.g. https://host."
        ),
    ],
    value: Annotated[
        int | None,
        typer.Option("--value", help="The face value in minor units (fen, cents): 10000."),
    ] = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="Its currency, e.g. CNY (with --value).")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Clear the face value.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show, set (--value and --currency) or clear (--clear) the face value printed on your
    product's cards (signs in with Ethereum using your creator key)."""
    from verifier.client import TracemarkClient

    with reported():
        if clear and value is not None:
            raise errors.InvalidInput("give --value or --clear, not both")
        if (value is None) != (currency is None):
            raise errors.InvalidInput("give --value together with --currency")
        keys = creator_keys()
        found: FaceValueOut
        history: FaceValueHistoryOut | None = None
        with TracemarkClient(api, max_retries=CLI_RETRIES) as client:
            client.sign_in(keys.account)
            if clear or value is not None:
                found = client.set_face_value(product, value, currency)
            else:
                found = history = client.face_value(product)

    def show() -> None:
        if found.face_value is None:
            out.print(f"{found.product}: no face value", markup=False)
        else:
            out.print(f"{found.product}: {found.face_value} {found.currency}", markup=False)
        # Shown only: PUT and DELETE answer the new value, without its history.
        if history is not None:
            for line in history_lines(history):
                out.print(line, markup=False)

    emit(found.model_dump(), as_json, show)


def history_lines(found: FaceValueHistoryOut) -> list[str]:
    """When each value was set or cleared, oldest first: a sale is judged by the one in force
    at its time. Dates through ``utc_text``: a server's answer may carry any integer."""
    lines = []
    if found.history_truncated:
        lines.append("(older settings left out)")
    for setting in found.history:
        when = utc_text(setting.set_at)
        what = (
            "cleared"
            if setting.face_value is None
            else f"set to {setting.face_value} {setting.currency}"
        )
        who = (
            f"by {setting.set_by}"
            if setting.set_by is not None
            else "(carried over when the history began)"
        )
        lines.append(f"  {when}  {what} {who}")
    return lines


__all__ = ["face_value", "history_lines"]
