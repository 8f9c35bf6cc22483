"""Creator identity from the command line: sign the statement to publish, have a registry check
it (``tracemark creator identity``), and the operator's re-check (``tracemark identities``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.app import JsonFlag, app, creator_keys, emit, open_registry, out, reported, state
from api.cli.remote import CLI_RETRIES, creator_app
from registry import errors

identities_app = typer.Typer(
    help="Creators' proven web domains (operator, on the registry's database).",
    no_args_is_help=True,
)
app.add_typer(identities_app, name="identities")


def _show(found: dict[str, Any]) -> None:
    from verifier.identity import describe

    line = describe(found["name"], found["domain"], found["status"], found["checked_at"])
    out.print(f"{found['creator']}: {line}", markup=False)
    out.print(f"  how: {found['method']}", markup=False)


@creator_app.command("identity")
def identity(
    domain: Annotated[str, typer.Option(help="Your web domain, e.g. studio.example.")],
    api: Annotated[
        str | None,
        typer.Option(
            "--api", envvar="TRACEMARK_API_URL", help="The registry's API, e.g. https://host."
        ),
    ] = None,
    sign: Annotated[
        bool, typer.Option("--sign", help="Write the signed statement to publish; send nothing.")
    ] = False,
    name: Annotated[str | None, typer.Option(help="Your display name (with --sign).")] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="Where --sign writes (default: stdout).")
    ] = None,
    recheck: Annotated[
        bool, typer.Option("--recheck", help="Have the registry fetch your statement again.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Prove your web domain: --sign writes the statement to serve at
    https://DOMAIN/.well-known/tracemark-creator.json (signed with your creator key under the
    registry's EIP-712 domain, TRACEMARK_CHAIN_ID / TRACEMARK_CONTRACT_ADDRESS); without it the
    registry fetches and checks it (signs in with Ethereum using your creator key)."""
    from verifier.client import TracemarkClient
    from verifier.identity import WELL_KNOWN_PATH, CreatorStatement

    with reported():
        keys = creator_keys()
        if sign:
            if name is None:
                raise errors.InvalidInput("--sign needs --name")
            statement = CreatorStatement.signed(
                private_key=bytes(keys.account.key),
                domain=domain,
                name=name,
                issued_at=int(time.time()),
                eip712_domain=state.settings.domain,
            )
            text = statement.to_json()
            if output is None:
                out.file.write(text)
                out.file.flush()
            else:
                output.write_text(text, encoding="utf-8")
                out.print(
                    f"wrote {output}: serve it at https://{domain}{WELL_KNOWN_PATH}, then run "
                    f"tracemark creator identity --domain {domain} --api URL",
                    markup=False,
                )
            return
        if api is None or not api.strip():
            raise errors.InvalidInput("give --api URL (or TRACEMARK_API_URL), or --sign")
        with TracemarkClient(api, max_retries=CLI_RETRIES) as client:
            client.sign_in(keys.account)
            found = client.recheck_identity() if recheck else client.prove_identity(domain)
    document = found.model_dump()
    emit(document, as_json, lambda: _show(document))


@identities_app.command("recheck")
def identities_recheck(as_json: JsonFlag = False) -> None:
    """Fetch every verified creator's statement again; one that no longer verifies (gone,
    changed, signed by another key) is marked lapsed with a logged entry. Uses
    TRACEMARK_IDENTITY_* for the fetch."""
    import asyncio

    from api.identity import IdentityService, load_identity_settings

    with reported():
        registry = open_registry()
        try:
            service = IdentityService(registry, load_identity_settings())
            checked = asyncio.run(service.recheck_all())
        finally:
            registry.engine.dispose()
    documents = [c.document() for c in checked]

    def show() -> None:
        if not documents:
            out.print("no verified identity to re-check", markup=False)
        for document in documents:
            _show(document)

    emit({"identities": documents}, as_json, show)


__all__ = ["identities_app"]
