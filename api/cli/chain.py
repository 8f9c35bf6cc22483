"""Chain commands: ``anchor`` now, the anchoring ``status``, ``deploy`` to a network, ``chain``."""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

import typer

from anchoring.states import ANCHORED, AnchorState
from api.cli.app import JsonFlag, app, emit, open_registry, out, reported, state
from registry import errors

#: How long ``anchor --wait`` waits for finality before it gives up (seconds).
WAIT_SECONDS = 120


def _anchors(registry: Any, limit: int = 5) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from anchoring.models import anchors_t as table
    from registry.db import read_transaction

    with read_transaction(registry.engine) as conn:
        rows = conn.execute(select(table).order_by(table.c.id.desc()).limit(limit)).all()
    return [
        {
            "tree_size": row.tree_size,
            "state": row.state,
            "previous_size": row.previous_size,
            "tx_hash": None if row.tx_hash is None else "0x" + bytes(row.tx_hash).hex(),
            "block_number": row.block_number,
            "error": row.error,
        }
        for row in rows
    ]


@app.command()
def status(as_json: JsonFlag = False) -> None:
    """The log's head and where its anchoring stands (read from the database)."""
    with reported():
        registry = open_registry()
        head = registry.latest_tree_head()
        anchors = _anchors(registry)
    final = next((a for a in anchors if a["state"] in ANCHORED), None)
    data = {
        "tree_size": 0 if head is None else head.tree_size,
        "last_anchored": None if final is None else final,
        "recent_anchors": anchors,
    }

    def human() -> None:
        out.print(f"log size {data['tree_size']:,}")
        for anchor in anchors:
            where = (
                f" tx {anchor['tx_hash']} block {anchor['block_number']}"
                if anchor["tx_hash"]
                else ""
            )
            note = f" ({anchor['error']})" if anchor["error"] else ""
            out.print(
                f"  head {anchor['tree_size']:,}: {anchor['state']}{where}{note}", markup=False
            )
        if not anchors:
            out.print("  nothing anchored yet")

    emit(data, as_json, human)


@app.command()
def anchor(
    now: Annotated[
        bool, typer.Option("--now", help="Seal the latest head whatever its age.")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it is final.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Anchor the latest signed head now (on the running serve's dev chain, or the network)."""
    from anchoring.runtime import anchor_policy, open_chain
    from anchoring.settings import load_anchoring_settings
    from anchoring.worker import AnchorWorker
    from registry.lease import Lease

    with reported():
        registry = open_registry()
        settings = load_anchoring_settings()
        policy = anchor_policy(settings)
        if now:
            policy = type(policy)(**{**policy.__dict__, "max_entries": 1, "max_age_seconds": 0})
        # The anchoring role's lease (registry.lease; trivially held on SQLite): on PostgreSQL
        # a running ``serve`` that holds it anchors, and this command must not sign beside it.
        lease = Lease(registry.engine, "anchoring", seconds=state.settings.lease_seconds)
        if not lease.acquire():
            raise errors.LeaseLost(
                "another process holds the anchoring role (tracemark serve): it anchors the"
                " latest head itself, when TRACEMARK_ANCHOR_MAX_ENTRIES or _MAX_AGE says"
            )
        stop_keeping = threading.Event()
        keeper = lease.keep(stop_keeping)
        devchain = None
        try:
            chain, account, devchain = open_chain(state.settings, settings)
            worker = AnchorWorker(registry, chain, account, policy)
            worker.fence = lease.fence
            worker.reconcile()
            steps = worker.run_until_idle()
            deadline = time.monotonic() + WAIT_SECONDS
            while (
                wait
                and _anchors(registry, 1)
                and _anchors(registry, 1)[0]["state"] != AnchorState.FINAL
            ):
                if time.monotonic() > deadline:
                    raise errors.TracemarkError("the anchor did not become final in time")
                if devchain is not None:
                    devchain.rpc("anvil_mine", "0x1")
                time.sleep(0.5)
                steps += worker.run_until_idle()
        finally:
            stop_keeping.set()
            keeper.join(10)  # gives the lease up
            if devchain is not None:
                devchain.stop()
        data = {"steps": steps, "anchors": _anchors(registry, 1)}
    emit(data, as_json, lambda: out.print("\n".join(steps) or "nothing to anchor", markup=False))


@app.command()
def deploy(as_json: JsonFlag = False) -> None:
    """Deploy the anchor contract to TRACEMARK_CHAIN_RPC_URL with the anchoring key."""
    from anchoring.chain import Chain
    from anchoring.runtime import anchoring_key
    from anchoring.settings import load_anchoring_settings

    with reported():
        settings = load_anchoring_settings()
        if not settings.chain_rpc_url:
            raise errors.ConfigurationError(
                "set TRACEMARK_CHAIN_RPC_URL (and the anchoring key) to deploy to a network; "
                "the embedded dev chain deploys itself"
            )
        account = anchoring_key(settings)
        chain = Chain.connect(settings.chain_rpc_url, "0x" + "00" * 20)
        address = chain.deploy(account)
        data = {"contract_address": address, "chain_id": chain.chain_id()}
    emit(
        data,
        as_json,
        lambda: out.print(
            f"deployed at {address}; set TRACEMARK_CONTRACT_ADDRESS={address} "
            f"TRACEMARK_CHAIN_ID={data['chain_id']}",
            markup=False,
        ),
    )


@app.command("chain")
def chain_info(as_json: JsonFlag = False) -> None:
    """The chain the registry anchors on: RPC, chain id, contract, its last anchored head."""
    from anchoring.runtime import open_chain
    from anchoring.settings import load_anchoring_settings

    with reported():
        chain, _, devchain = open_chain(
            state.settings, load_anchoring_settings(), start_devchain=False
        )
        size, root = chain.last_anchored()
        data = {
            "rpc_url": chain.w3.provider.endpoint_uri,  # type: ignore[attr-defined]
            "chain_id": chain.chain_id(),
            "contract_address": chain.address,
            "block_number": chain.w3.eth.block_number,
            "last_anchored_size": size,
            "last_anchored_root": "0x" + root.hex() if root else None,
        }
        if devchain is not None:
            devchain.stop()
    emit(
        data,
        as_json,
        lambda: out.print(
            "\n".join(f"{key}: {value}" for key, value in data.items()), markup=False
        ),
    )
