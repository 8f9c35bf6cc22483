"""Operator commands for platforms' attestation keys (issue 18 item 4): ``tracemark
platform-keys enroll | list``.

A platform signs its real-name attestations with a secp256k1 key of its own (an Ethereum
address: any wallet or HSM); the operator enrolls the address the platform hands over, on
the local database, as it creates API keys. Enrolling another supersedes the current one;
attestations logged under an older key stay valid (they carry it). Each enrollment is logged
(a PLATFORM_KEY entry) as the operator's: an attestation's proof says the operator enrolled
its key, so a platform that lost its key has a way back, and nobody is misled about it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.app import JsonFlag, app, emit, err, open_registry, out, reported
from verifier.timetext import utc_text

platform_keys_app = typer.Typer(
    help="Platforms' attestation keys: enroll (supersedes the current one), list.",
    no_args_is_help=True,
)
app.add_typer(platform_keys_app, name="platform-keys")


def _when(seconds: int) -> str:
    return utc_text(seconds, "%Y-%m-%dT%H:%M:%SZ")


@platform_keys_app.command("enroll")
def enroll(
    platform: Annotated[str, typer.Option(help="Platform id (a slug), e.g. cardhub.")],
    address: Annotated[
        str, typer.Option(help="The key's Ethereum address (0x and 40 hex digits).")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Enroll a platform's attestation signing key; it supersedes the platform's current one.
    Logged: the log and every proof of its attestations say the operator enrolled it."""
    from registry.platformkeys import enroll_platform_key

    with reported():
        registry = open_registry()
        key = enroll_platform_key(registry, platform, address)
    summary = (
        f"attestation key {key.address} enrolled for platform {key.platform} (in force); "
        "logged as enrolled by the operator, not by the platform, for anyone to see"
    )
    emit(key.as_dict(), as_json, lambda: out.print(summary, markup=False))


@platform_keys_app.command("list")
def list_(
    platform: Annotated[str | None, typer.Option(help="Only this platform's keys.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every enrolled attestation key, oldest first; a platform's newest is in force."""
    from registry.platformkeys import platform_keys

    with reported():
        keys = platform_keys(open_registry().engine, platform)
    newest = {key.platform: key.id for key in keys}
    data = {
        "platform_keys": [
            {**key.as_dict(), "in_force": newest[key.platform] == key.id} for key in keys
        ]
    }

    def human() -> None:
        if not keys:
            err.print("no platform keys", markup=False)
        for key in keys:
            state = "in force" if newest[key.platform] == key.id else "superseded"
            out.print(
                f"{key.id:>5}  {key.platform}  {key.address}  enrolled {_when(key.enrolled_at)} "
                f"by {key.enrolled_by}  {state}",
                markup=False,
            )

    emit(data, as_json, human)


__all__ = ["platform_keys_app"]
