"""Operator commands for platforms' API keys: ``tracemark api-keys create | list | revoke``.

They work on the local database (the operator's mode). A key is printed once, at creation;
the database keeps only its SHA-256, so a lost key is revoked and replaced, never recovered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.app import JsonFlag, app, emit, err, open_registry, out, reported
from verifier.timetext import utc_text

# api.auth imports FastAPI and the database layer: the commands import it when they run.
if TYPE_CHECKING:
    from api.apikeys import ApiKeyInfo

api_keys_app = typer.Typer(
    help="Platforms' API keys: create (shown once), list, revoke.", no_args_is_help=True
)
app.add_typer(api_keys_app, name="api-keys")

SHOWN_ONCE = "store this key now: it cannot be shown again (only its hash is kept)"


def _when(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return utc_text(seconds, "%Y-%m-%dT%H:%M:%SZ")


def _line(info: ApiKeyInfo) -> str:
    state = f"revoked {_when(info.revoked_at)}" if info.revoked_at is not None else "active"
    label = f"  {info.label}" if info.label else ""
    return (
        f"{info.id:>5}  {info.platform}  {info.prefix}  {','.join(sorted(info.scopes))}  "
        f"created {_when(info.created_at)}  {state}{label}"
    )


@api_keys_app.command("create")
def create(
    platform: Annotated[str, typer.Option(help="Platform id (a slug), e.g. cardhub.")],
    scope: Annotated[
        list[str], typer.Option(help="verify, transfer or audit; repeat for several.")
    ],
    label: Annotated[str, typer.Option(help="A note for listings, e.g. 'production'.")] = "",
    platform_name: Annotated[
        str | None, typer.Option(help="Display name, when the platform is new.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key for a platform (the platform too, if new). Prints the key once."""
    from api.apikeys import create_api_key

    with reported():
        registry = open_registry()
        key, info = create_api_key(
            registry.engine,
            platform,
            scope,
            label,
            registry.clock(),
            platform_name=platform_name,
        )
    data = {"key": key, **info.as_dict(), "warning": SHOWN_ONCE}

    def human() -> None:
        out.print(key, markup=False)
        err.print(
            f"API key {info.id} ({info.prefix}) for platform {info.platform}, scopes "
            f"{', '.join(sorted(info.scopes))}: {SHOWN_ONCE}",
            markup=False,
        )

    emit(data, as_json, human)


@api_keys_app.command("list")
def list_(
    platform: Annotated[str | None, typer.Option(help="Only this platform's keys.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every API key (prefix, scopes, created, revoked); never a key or its hash."""
    from api.apikeys import list_api_keys

    with reported():
        keys = list_api_keys(open_registry().engine, platform)
    data = {"api_keys": [info.as_dict() for info in keys]}

    def human() -> None:
        if not keys:
            err.print("no API keys", markup=False)
        for info in keys:
            out.print(_line(info), markup=False)

    emit(data, as_json, human)


@api_keys_app.command("revoke")
def revoke(
    key: Annotated[
        str,
        typer.Argument(
            metavar="KEY_ID_OR_PREFIX", help="The key's id or prefix as listed (or the key)."
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Revoke an API key: refused by every server once this returns."""
    from api.apikeys import revoke_api_key

    with reported():
        registry = open_registry()
        info, revoked_now = revoke_api_key(registry.engine, key, registry.clock())
    data = {**info.as_dict(), "revoked_now": revoked_now}
    if revoked_now:
        summary = f"revoked API key {info.id} ({info.prefix}) of platform {info.platform}"
    else:
        summary = (
            f"API key {info.id} ({info.prefix}) of platform {info.platform} "
            f"was already revoked at {_when(info.revoked_at)}"
        )
    emit(data, as_json, lambda: out.print(summary, markup=False))


__all__ = ["api_keys_app"]
