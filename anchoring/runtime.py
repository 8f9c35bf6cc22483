"""The anchoring side of ``tracemark serve``: the chain (embedded or real), the key, the worker.

On the embedded default the dev chain is started in the data dir and the contract deployed
from anvil's account #0 on first start (so the EIP-712 domain is the fixed dev domain); on
a real network the configured RPC URL and anchoring key are used. Either way the server
refuses to start when the chain id or the contract code do not match (THREATS 32).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.errors import AnchoringError
from anchoring.policy import AnchorPolicy
from anchoring.settings import AnchoringSettings
from anchoring.worker import AnchorWorker
from registry.errors import ConfigurationError
from registry.keyring import parse_key_text, read_secret
from registry.service import Registry
from registry.settings import Settings

#: anvil's first dev account: a published test key, only ever used on the embedded dev chain.
ANVIL_ACCOUNT_0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_CHAIN_STATE_FILE = "chain-state.json"


@dataclass
class AnchoringRuntime:
    chain: Chain
    worker: AnchorWorker
    devchain: DevChain | None
    data_dir: Path

    def close(self) -> None:
        if self.devchain is not None:
            (self.data_dir / DEV_CHAIN_INFO_FILE).unlink(missing_ok=True)
            self.devchain.stop()


def anchoring_key(anchoring: AnchoringSettings) -> LocalAccount:
    """The anchoring key of a real network, from the environment or a 0600 file."""
    if anchoring.anchor_key is not None:
        key = parse_key_text(
            anchoring.anchor_key.get_secret_value(), size=32, what="TRACEMARK_ANCHOR_KEY"
        )
    elif anchoring.anchor_keyfile is not None:
        key = parse_key_text(
            read_secret(anchoring.anchor_keyfile).decode(),
            size=32,
            what=str(anchoring.anchor_keyfile),
        )
    else:
        raise ConfigurationError(
            "TRACEMARK_CHAIN_RPC_URL is set: give the anchoring key as TRACEMARK_ANCHOR_KEY "
            "or TRACEMARK_ANCHOR_KEYFILE"
        )
    account: LocalAccount = Account.from_key(key)
    return account


DEV_CHAIN_INFO_FILE = "devchain.json"


def _running_devchain(settings: Settings) -> str | None:
    """The RPC URL of the dev chain a running ``serve`` started, if it still answers."""
    info_path = settings.data_dir / DEV_CHAIN_INFO_FILE
    if not info_path.exists():
        return None
    try:
        rpc_url = str(json.loads(info_path.read_text())["rpc_url"])
        Chain.connect(rpc_url, settings.contract_address, timeout=2).chain_id()
    except (ValueError, KeyError, OSError, AnchoringError):
        return None
    return rpc_url


def open_chain(
    settings: Settings, anchoring: AnchoringSettings, *, start_devchain: bool = True
) -> tuple[Chain, LocalAccount, DevChain | None]:
    """The chain to anchor on, its key, and the dev chain this process started (if any).

    A real network when TRACEMARK_CHAIN_RPC_URL is set; else the dev chain of a running
    ``serve``; else (``start_devchain``) the embedded dev chain, started from the data dir's
    state file, with the contract deployed on first start. Refuses a chain whose id or code
    does not match (THREATS 32).
    """
    devchain = None
    if anchoring.chain_rpc_url:
        account = anchoring_key(anchoring)
        chain = Chain.connect(anchoring.chain_rpc_url, settings.contract_address)
    else:
        account = Account.from_key(ANVIL_ACCOUNT_0_KEY)
        rpc_url = _running_devchain(settings)
        if rpc_url is None:
            if not start_devchain:
                raise ConfigurationError("no dev chain is running: start it with tracemark serve")
            devchain = DevChain(
                state_file=settings.data_dir / DEV_CHAIN_STATE_FILE,
                block_time=anchoring.dev_block_time,
            ).start()
            rpc_url = devchain.rpc_url
        chain = Chain.connect(rpc_url, settings.contract_address)
    try:
        if devchain is not None and not chain.has_contract():
            deployed = chain.deploy(account)
            if deployed != chain.address:
                raise ConfigurationError(
                    f"the dev chain deployed the contract at {deployed}, not at "
                    f"{chain.address}: its state is not the embedded default's"
                )
        chain.check(settings.chain_id)
    except BaseException:
        if devchain is not None:
            devchain.stop()
        raise
    return chain, account, devchain


def anchor_policy(anchoring: AnchoringSettings) -> AnchorPolicy:
    return AnchorPolicy(
        max_entries=anchoring.anchor_max_entries,
        max_age_seconds=anchoring.anchor_max_age,
        confirmations=anchoring.anchor_confirmations,
        use_finalized_tag=anchoring.anchor_use_finalized,
        max_fee_per_gas=int(anchoring.anchor_max_fee_gwei * 10**9),
        time_to_anchor_seconds=anchoring.anchor_time_to_anchor,
    )


def start_anchoring(
    registry: Registry, settings: Settings, anchoring: AnchoringSettings
) -> AnchoringRuntime:
    """What ``serve`` runs: the chain (announcing its dev chain to other commands) and the
    worker."""
    chain, account, devchain = open_chain(settings, anchoring)
    if devchain is not None:
        (settings.data_dir / DEV_CHAIN_INFO_FILE).write_text(
            json.dumps({"rpc_url": devchain.rpc_url, "contract": chain.address}) + "\n"
        )
    worker = AnchorWorker(registry, chain, account, anchor_policy(anchoring))
    return AnchoringRuntime(chain, worker, devchain, settings.data_dir)
