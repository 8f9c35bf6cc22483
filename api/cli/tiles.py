"""Operator commands for the static read API (C2SP tlog-tiles): ``tracemark tiles publish DIR``.

It reads the local database (the operator's mode, as ``log check``) and writes the latest
published checkpoint with every tile and entry bundle it needs, laid out as the URLs below
``/tlog``, for any static web server or CDN to serve.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.app import JsonFlag, app, emit, open_registry, out, reported

tiles_app = typer.Typer(
    help="The log as static files (C2SP tlog-tiles): checkpoint, tiles, entry bundles.",
    no_args_is_help=True,
)
app.add_typer(tiles_app, name="tiles")


@tiles_app.command("publish")
def publish(
    directory: Annotated[
        Path,
        typer.Argument(
            help="Where to write checkpoint and tile/...: the directory served as the log's "
            "prefix (created if missing).",
            file_okay=False,
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Write the latest published checkpoint and every tile and entry bundle it needs; full ones
    already there are kept, each file is replaced atomically, the checkpoint last."""
    # The database layer is imported when the command runs (tests/api/test_cli_imports.py).
    from registry.tlogpublish import publish as publish_tiles

    with reported():
        result = publish_tiles(open_registry().engine, directory)
    data = {
        "tree_size": result.tree_size,
        "written": result.written,
        "kept": result.kept,
        "directory": str(result.directory),
    }
    emit(
        data,
        as_json,
        lambda: out.print(
            f"published size {result.tree_size:,} to {result.directory}: "
            f"{result.written:,} files written, {result.kept:,} full ones kept",
            markup=False,
        ),
    )
