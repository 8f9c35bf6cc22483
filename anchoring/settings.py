"""Anchoring settings (``TRACEMARK_*``): which chain, which key, when to anchor, what to pay."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AnchoringSettings(BaseSettings):
    """Each one is listed in the README."""

    model_config = SettingsConfigDict(env_prefix="TRACEMARK_", extra="ignore", frozen=True)

    #: JSON-RPC of a real network; empty: the embedded dev chain (anvil) in the data dir.
    chain_rpc_url: str = ""
    #: The anchoring key, as hex ...
    anchor_key: SecretStr | None = None
    #: ... or a file holding it (mode 0600). On the dev chain: anvil's account #0.
    anchor_keyfile: Path | None = None
    #: Seal a head once this many entries wait, or once the oldest waits this long (s).
    anchor_max_entries: int = Field(default=1_000, ge=1)
    anchor_max_age: int = Field(default=5, ge=0)
    #: A mined anchor is final after this many confirmations ...
    anchor_confirmations: int = Field(default=3, ge=1)
    #: ... or once the network's `finalized` block covers it (real networks).
    anchor_use_finalized: bool = False
    #: The fee cap, in gwei: at the cap the worker stops and says so.
    anchor_max_fee_gwei: float = Field(default=200.0, gt=0)
    #: The time-to-anchor objective (s): a head waiting longer raises an alert in /readyz.
    anchor_time_to_anchor: int = Field(default=600, ge=1)
    #: Seconds between the dev chain's blocks (confirmations arrive on an idle chain).
    dev_block_time: float = Field(default=1.0, gt=0)


def load_anchoring_settings(**overrides: object) -> AnchoringSettings:
    return AnchoringSettings(**overrides)  # type: ignore[arg-type]
