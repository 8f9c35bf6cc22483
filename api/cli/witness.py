"""``tracemark witness``: run a witness (c2sp.org/tlog-witness) that cosigns a log's checkpoints
only if each is consistent with the last one it cosigned: any platform can keep a registry
honest with one (``init``, ``vkey``, ``serve``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.app import JsonFlag, app, emit, out, reported

witness_app = typer.Typer(
    help="A witness: cosigns a log's checkpoints that extend the last one it cosigned.",
    no_args_is_help=True,
)
app.add_typer(witness_app, name="witness")

ConfigOpt = Annotated[
    Path, typer.Option("--config", help="The witness's config file (witness init writes one).")
]


@witness_app.command("init")
def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the witness.")],
    name: Annotated[
        str, typer.Option("--name", help="The witness's key name, e.g. cards.example/witness.")
    ],
    log_vkey: Annotated[
        list[str] | None,
        typer.Option(
            "--log-vkey",
            help="A vkey of a log to follow (repeat; a log's vkeys share its origin as name).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a witness: its Ed25519 and ML-DSA-44 keys (0600), its state dir, its config."""
    from registry.note import parse_vkey
    from registry.witnessconfig import init_witness, load_witness_config

    with reported():
        by_origin: dict[str, list[str]] = {}
        for text in log_vkey or []:
            by_origin.setdefault(parse_vkey(text).name, []).append(text)
        path = init_witness(directory, name, by_origin.values())
        config = load_witness_config(path)
        data = {
            "config": str(path),
            "name": config.name,
            "vkeys": list(config.vkeys()),
            "logs": [log.origin for log in config.logs],
        }
    emit(data, as_json, lambda: out.print(f"witness {name} created: {path}", markup=False))


@witness_app.command("vkey")
def vkey(config: ConfigOpt, as_json: JsonFlag = False) -> None:
    """Print the witness's verifier keys (ML-DSA-44 then Ed25519) for a log's witness policy."""
    from registry.witnessconfig import load_witness_config

    with reported():
        loaded = load_witness_config(config)
        vkeys = loaded.vkeys()
    emit(
        {"name": loaded.name, "vkeys": list(vkeys)},
        as_json,
        lambda: out.print("\n".join(vkeys), markup=False),
    )


@witness_app.command("serve")
def serve(
    config: ConfigOpt,
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8100,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (loopback unless you mean it).")
    ] = "127.0.0.1",
) -> None:
    """Run the witness's HTTP API until Ctrl-C."""
    import logging
    import signal

    import uvicorn

    from api.witnessapp import create_witness_app, witness_uvicorn_config
    from registry.witnessconfig import load_witness_config

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with reported():
        loaded = load_witness_config(config)
        witness = create_witness_app(loaded)
    log = logging.getLogger("tracemark.witness")
    log.info(
        "witness %s following %d log(s), state in %s",
        loaded.name,
        len(loaded.logs),
        loaded.state_dir,
    )
    log.info(
        "listening on http://%s:%d%s (POST) and %s/<origin sha256>/checkpoint (GET)",
        host,
        port,
        loaded.submission_prefix + "/add-checkpoint",
        loaded.monitoring_prefix,
    )
    # NOTE: uvicorn re-raises the signal that stopped it into the handler that was there
    # before it served (as ``tracemark serve`` does): a no-op, so the state is closed below
    # and the process exits 0 instead of dying of the re-raised SIGINT.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    try:
        uvicorn.Server(witness_uvicorn_config(witness, host=host, port=port)).run()
    finally:
        witness.close()
    log.info("stopped")
