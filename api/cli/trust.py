"""``tracemark trust``: the trust roots a verifier pins; ``tracemark registry-key``: the
operator's side, the registry's signing key and its hand-over."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.app import JsonFlag, app, emit, open_registry, out, reported
from registry import errors

if TYPE_CHECKING:
    from verifier.trust import TrustRoot

trust_app = typer.Typer(
    help="Trust roots: which registries `tracemark verify` accepts evidence from.",
    no_args_is_help=True,
)
key_app = typer.Typer(help="The registry's signing key (operator).", no_args_is_help=True)
app.add_typer(trust_app, name="trust")
app.add_typer(key_app, name="registry-key")

#: Seconds a trust root download may take.
FETCH_TIMEOUT_SECONDS = 10.0


def fetch_trust_root(url: str) -> TrustRoot:
    """A trust root from a registry's URL (its well-known path is added to a bare URL)."""
    import httpx2 as httpx

    from verifier.trust import MAX_TRUST_ROOT_BYTES, WELL_KNOWN_PATH, TrustRoot

    if not url.startswith(("https://", "http://")):
        raise errors.InvalidInput("a trust root URL must be http:// or https://")
    if not url.endswith(".json"):
        url = url.rstrip("/") + WELL_KNOWN_PATH
    try:
        with (
            httpx.Client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise errors.InvalidInput(
                    f"{url} answered {response.status_code}, not a trust root"
                )
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_TRUST_ROOT_BYTES:
                    raise errors.InvalidInput(f"{url} sent more than a trust root can hold")
    except httpx.HTTPError as exc:
        raise errors.InvalidInput(f"{url} could not be fetched ({type(exc).__name__})") from None
    return TrustRoot.parse(data)


def describe(root: TrustRoot) -> dict[str, object]:
    from registry.eip712 import checksum_address

    return {
        "fingerprint": root.fingerprint(),
        "name": root.name,
        "registry_url": root.registry_url,
        "chain_id": root.chain_id,
        "contract": root.contract_address,
        "signing_keys": [
            {
                "address": checksum_address(key.address),
                "from_size": key.from_size,
                "until_size": key.until_size,
            }
            for key in root.signing_keys
        ],
        "finality": root.finality.describe(),
        "log_origin": None if root.transparency is None else root.transparency.log_origin,
        "log_vkeys": [] if root.transparency is None else list(root.transparency.log_vkeys),
        "witness_quorum": _quorum(root),
    }


def _quorum(root: TrustRoot) -> str:
    """The witness policy's quorum as pinning shows it (issue 15)."""
    if root.transparency is None:
        return "no witness policy (a trust root from before issue 15: checkpoints not checked)"
    return root.transparency.describe_quorum()


def _human(root: TrustRoot) -> str:
    from registry.eip712 import checksum_address

    keys = ", ".join(
        f"{checksum_address(k.address)} (heads {k.from_size:,}-"
        f"{'' if k.until_size is None else f'{k.until_size - 1:,}'})"
        for k in root.signing_keys
    )
    return (
        f"{root.fingerprint()}  {root.name}: chain {root.chain_id}, contract "
        f"{root.contract_address}, keys {keys}, final after {root.finality.describe()}, "
        f"witness quorum {_quorum(root)}, at {root.registry_url}"
    )


@trust_app.command("add")
def trust_add(
    source: Annotated[
        str, typer.Argument(metavar="FILE|URL", help="A trust root file, or a registry's URL.")
    ],
    fingerprint: Annotated[
        str | None,
        typer.Option(
            help="Pin only if the root's fingerprint is this (sha256:...), as the "
            "registry's operator told you out of band."
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="Replace a different root pinned for the same registry.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Pin a registry's trust root. Compare the fingerprint printed with one the registry's
    operator gives you out of band: the file or URL alone proves nothing."""
    from verifier.truststore import TrustStore, read_trust_root

    with reported():
        if source.startswith(("http://", "https://")):
            root = fetch_trust_root(source)
        else:
            root = read_trust_root(Path(source))
        if fingerprint is not None and fingerprint.strip().lower() != root.fingerprint():
            raise errors.Conflict(
                f"the trust root's fingerprint is {root.fingerprint()}, not {fingerprint.strip()}:"
                " not pinned"
            )
        pinned = TrustStore().pin(root, replace=replace)
    data = {"status": pinned.status, "replaced": pinned.replaced, **describe(root)}
    emit(data, as_json, lambda: out.print(f"{pinned.status}: {_human(root)}", markup=False))


@trust_app.command("list")
def trust_list(as_json: JsonFlag = False) -> None:
    """The pinned trust roots."""
    from verifier.truststore import TrustStore

    with reported():
        roots = TrustStore().roots()
    emit(
        {"trust_roots": [describe(root) for root in roots]},
        as_json,
        lambda: out.print(
            "\n".join(_human(r) for r in roots) or "no trust root is pinned", markup=False
        ),
    )


@trust_app.command("remove")
def trust_remove(
    selector: Annotated[str, typer.Argument(metavar="FINGERPRINT|CONTRACT")],
    as_json: JsonFlag = False,
) -> None:
    """Unpin a trust root, by its fingerprint (or 8+ hex digits of it) or contract address."""
    from verifier.truststore import TrustStore

    with reported():
        root = TrustStore().remove(selector)
    emit(
        {"status": "removed", **describe(root)},
        as_json,
        lambda: out.print(f"removed: {_human(root)}", markup=False),
    )


@key_app.command("show")
def key_show(as_json: JsonFlag = False) -> None:
    """Every key that signs (or signed) this registry's heads, with the sizes it covers."""
    from registry.eip712 import checksum_address

    with reported():
        registry = open_registry()
        periods = registry.key_periods()
    data = {"signing_keys": [p.as_document() for p in periods]}
    emit(
        data,
        as_json,
        lambda: out.print(
            "\n".join(
                f"{checksum_address(p.address)}  heads {p.from_size:,}-"
                f"{'(current)' if p.until_size is None else f'{p.until_size - 1:,}'}"
                for p in periods
            ),
            markup=False,
        ),
    )


@key_app.command("rotate")
def key_rotate(as_json: JsonFlag = False) -> None:
    """Hand the registry's signing key over to a fresh key: the current key signs the
    hand-over, logged at the next leaf; heads from there on are signed by the new key only.
    A running `tracemark serve` picks it up before its next head. Verifiers update their
    pinned trust root with `tracemark trust add URL` (accepted: it extends the pinned one)."""
    from registry.keyring import create_next_registry_key  # eth_account: only here

    with reported():
        registry = open_registry()
        new = create_next_registry_key(registry_data_dir())
        handover = registry.rotate_key(new)
    data = {
        "old_key": handover.old_key,
        "new_key": handover.new_key,
        "handover_leaf_index": handover.leaf_index,
        "new_key_from_size": handover.tree_size,
    }
    emit(
        data,
        as_json,
        lambda: out.print(
            f"signing key handed over from {handover.old_key} to {handover.new_key}: heads "
            f"from size {handover.tree_size:,} on are signed by the new key (hand-over at "
            f"leaf {handover.leaf_index:,})",
            markup=False,
        ),
    )


def registry_data_dir() -> Path:
    from api.cli.app import state

    return state.settings.data_dir


__all__ = ["fetch_trust_root", "key_app", "trust_app"]
