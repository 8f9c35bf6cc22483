"""``tracemark demo``: fill a running registry with a small market, wait for its anchor, and
say what to open and what to try.

It runs beside ``make run`` (same machine, same ``./.tracemark/``): the platforms' API keys are
made on the local database, as the operator's ``tracemark api-keys create`` does; everything
else goes through the HTTP API like any creator or platform: two creators (a card publisher
with a bulk batch of codes, a studio with files), a pirate re-registering the studio's file,
two platforms verifying and trading (a chain of resales that owes royalties, a final sale,
one double-sale attempt), one revoked code. Then it waits until the last write is anchored.

NOTE: the labelled scenario generator (``bench/scenario.py``) writes into a registry's
database with a simulated clock that runs for weeks; a running instance needs its writes
over HTTP, in real time, so the demo makes its own, much smaller market.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.cli.app import JsonFlag, app, emit, out, reported, state
from api.cli.demomarket import fill_market

#: The whole demo must fit in a minute on the embedded default; anchoring takes most of it.
DEFAULT_ANCHOR_WAIT = 45.0


@app.command()
def demo(
    api: Annotated[
        str | None,
        typer.Option(
            "--api",
            help="The running registry (default: the one `make run` serves, from "
            "TRACEMARK_API_HOST/PORT, http://127.0.0.1:8000).",
        ),
    ] = None,
    anchor_wait: Annotated[
        float, typer.Option(help="Seconds to wait for the demo's writes to be anchored.")
    ] = DEFAULT_ANCHOR_WAIT,
    as_json: JsonFlag = False,
) -> None:
    """Fill a running registry with a small market (creators, platforms, codes, files,
    resales with royalties, a revocation, a double sale), wait for its anchor, and print what
    to open in the browser and what to try."""
    settings = state.settings
    url = (api or f"http://{settings.api_host}:{settings.api_port}").rstrip("/")
    with reported():
        result = fill_market(url, anchor_wait, quiet=as_json)

    def human() -> None:
        _print_guide(result)

    emit(result, as_json, human)


def _print_guide(r: dict[str, Any]) -> None:
    url, code = r["url"], r["genuine_code"]
    anchor = r["anchor"] or {}
    if r["anchored"]:
        where = f"final in block {anchor.get('block_number')} (tx {anchor.get('tx_hash')})"
    else:
        where = "not final yet: the anchoring worker is still at it (tracemark status)"
    lines = [
        f"tracemark demo: a small market on {url} in {r['seconds']} s; the log is {where}.",
        "",
        f"Open {url}/ and try:",
        f"  1. a genuine card by its code: {code['code']}",
        f"     creator {code['creator']}, product {code['product']}      -> Authentic",
        f"  2. a revoked card:  {url}/?type=code&fp={r['revoked_fingerprint']}",
        f"  3. a used-up card:  {url}/?type=code&fp={r['consumed_fingerprint']}",
        f"  4. drop this file on the page (hashed in your browser): {r['file']}",
        f"  5. print a label:   {url}/label/file/{r['file_fingerprint']}",
        "",
        f"Auditors: open {url}/audit, paste the audit key {r['audit_key']}",
        f"  and trace file {r['file_fingerprint']}",
        "  (three owners, royalties on each resale, a copycat's conflicting claim), or",
        f"  code {r['double_sale']['fingerprint']} (a double sale keyshop tried: refused);",
        "  then load its signals, or every standing signal (the risk worker raises them within",
        "  a few seconds: the double sale, the copycat's duplicate claim).",
        "",
        "Anyone, without trusting this server: pin its trust root once (compare the sha256 it",
        f"  prints with {url}/v1/registry), then check a bundle against the chain:",
        f"  tracemark trust add {url}",
        f"  curl -s -o bundle.json {url}/v1/goods/code/{r['revoked_fingerprint']}/proof",
        "  tracemark verify bundle.json --rpc <the dev chain's RPC URL: tracemark chain>",
    ]
    token = r["creator_tokens"].get("lumen-studio")
    if token:
        lines += [
            "",
            "Creators: paste Lumen Studio's session token (1 h) in /audit and load the dashboard:",
            f"  {token}",
        ]
    lines += [
        "",
        f"The demo's creator keys, codes and files are in {r['folder']}",
        f"  (e.g. tracemark --keys-dir {r['folder']}/lumen-studio creator statement --api {url})",
    ]
    for line in lines:
        out.print(line, markup=False)


__all__ = ["demo"]
