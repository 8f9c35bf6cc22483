"""The anchoring side of ``tracemark serve``: the chain (embedded or real), the key, the worker.

On the embedded default the dev chain is started in the data dir and the contract deployed
from anvil's account #0 on first start (so the EIP-712 domain is the fixed dev domain); on
a real network the configured RPC URL and anchoring key are used. Either way the server
refuses to start when the chain id or the contract code do not match (THREATS 32).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount

from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.settings import AnchoringSettings
from anchoring.worker import AnchorPolicy, AnchorWorker
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

    def close(self) -> None:
        if self.devchain is not None:
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


def start_anchoring(
    registry: Registry, settings: Settings, anchoring: AnchoringSettings
) -> AnchoringRuntime:
    devchain = None
    if anchoring.chain_rpc_url:
        account = anchoring_key(anchoring)
        chain = Chain.connect(anchoring.chain_rpc_url, settings.contract_address)
    else:
        devchain = DevChain(
            state_file=settings.data_dir / DEV_CHAIN_STATE_FILE,
            block_time=anchoring.dev_block_time,
        ).start()
        account = Account.from_key(ANVIL_ACCOUNT_0_KEY)
        chain = Chain.connect(devchain.rpc_url, settings.contract_address)
        try:
            if not chain.has_contract():
                deployed = chain.deploy(account)
                if deployed != chain.address:
                    raise ConfigurationError(
                        f"the dev chain deployed the contract at {deployed}, not at "
                        f"{chain.address}: its state is not the embedded default's"
                    )
        except BaseException:
            devchain.stop()
            raise
    try:
        chain.check(settings.chain_id)
    except BaseException:
        if devchain is not None:
            devchain.stop()
        raise
    policy = AnchorPolicy(
        max_entries=anchoring.anchor_max_entries,
        max_age_seconds=anchoring.anchor_max_age,
        confirmations=anchoring.anchor_confirmations,
        max_fee_per_gas=int(anchoring.anchor_max_fee_gwei * 10**9),
    )
    return AnchoringRuntime(chain, AnchorWorker(registry, chain, account, policy), devchain)
