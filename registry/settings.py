"""tracemark's configuration: every ``TRACEMARK_*`` setting, built by a factory, never at import."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.eip712 import DEV_DOMAIN, Domain

DEFAULT_DATA_DIR = Path(".tracemark")


class Settings(BaseSettings):
    """Settings read from the environment (``TRACEMARK_*``); each one is listed in the README."""

    model_config = SettingsConfigDict(env_prefix="TRACEMARK_", extra="ignore", frozen=True)

    #: Where the embedded default keeps its state: the SQLite database, the registry key,
    #: the master key and the dev chain's state.
    data_dir: Path = DEFAULT_DATA_DIR
    #: SQLAlchemy URL; empty means SQLite at ``<data_dir>/registry.db``.
    database_url: str = ""
    #: 32-byte master key (hex or base64) for code keys at rest; empty means the file
    #: ``<data_dir>/master.key``, created on first start with owner-only permissions.
    master_key: SecretStr | None = None
    #: EIP-712 domain: the chain id and anchor contract the signatures are bound to.
    chain_id: int = DEV_DOMAIN.chain_id
    contract_address: str = DEV_DOMAIN.verifying_contract
    #: The sequencer integrates at most this many queued entries per transaction ...
    sequencer_batch_size: int = Field(default=1000, ge=1, le=100_000)
    #: ... and looks at the queue this often (seconds).
    sequencer_interval: float = Field(default=1.0, gt=0, le=3600)
    #: How long a singleton role's lease lasts without a heartbeat (seconds, PostgreSQL
    #: only): a standby takes a dead holder's role over within 4/3 of it (``registry.lease``).
    lease_seconds: float = Field(default=15.0, ge=0.5, le=600)
    #: How often the telemetry role folds appended verification events into the counts a
    #: verify answer reports (seconds; ``registry.telemetryfold``): with the API's 0.5 s
    #: flush, the counts are at most about this plus 0.5 s behind.
    telemetry_fold_interval: float = Field(default=0.5, gt=0, le=60)
    #: A due royalty or rebate line unpaid for longer than this many days is overdue: balances
    #: say so and the risk worker raises ``payout-overdue`` about the platform that owes it.
    payout_overdue_days: int = Field(default=30, ge=1, le=3650)
    #: The real-name level a seller needs (``none``, ``phone``, ``id-card``, ``face``) before its
    #: sales past the limits below raise ``unattested-seller`` (``readmodels.realnamerule``).
    realname_min_level: str = Field(default="id-card", pattern=r"^(none|phone|id-card|face)$")
    #: Those limits, in minor units within 30 days, per currency: ``CUR=amount`` by commas
    #: (CNY 1,000.00: an anonymous prepaid card's cap; a currency not named never raises it).
    realname_limits: str = Field(
        default="CNY=100000,USD=15000", pattern=r"^([A-Z]{3}=[0-9]{1,30})?(,[A-Z]{3}=[0-9]{1,30})*$"
    )
    #: The ``buyer-daily-amount`` laundering rule's limits, in minor units, per currency:
    #: ``CUR=per_code:per_day`` by commas, ``-`` for none (``readmodels.launderruleslimits``:
    #: the defaults are published anonymous prepaid-card limits; a currency not named is
    #: never judged).
    amount_limits: str = Field(
        default="CNY=100000:999999,USD=200000:1000000,EUR=15000:-",
        pattern=r"^([A-Z0-9]{1,16}=([0-9]{1,18}|-):([0-9]{1,18}|-))?"
        r"(,[A-Z0-9]{1,16}=([0-9]{1,18}|-):([0-9]{1,18}|-))*$",
    )
    #: Where ``tracemark keys new`` writes a creator's account and code key.
    keys_dir: Path | None = None
    log_level: str = "INFO"
    #: Where ``serve`` answers HTTP: loopback unless told otherwise.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    #: The registry's name in the trust root it serves (a label: shown, never trusted).
    registry_name: str = Field(default="tracemark registry", min_length=1, max_length=64)
    #: The URL clients reach the registry at, named in its trust root; empty means
    #: ``http://<api_host>:<api_port>``.
    public_url: str = ""
    #: The log's checkpoint origin (C2SP tlog-checkpoint), which names its note keys too;
    #: empty means the public URL without its scheme, plus ``/tlog`` (``registry.logkeys``).
    log_origin: str = Field(default="", max_length=255)
    #: A C2SP tlog-policy file naming the witnesses (vkeys and submission URLs) and their
    #: quorum: each checkpoint is published (served, anchored) only once the quorum cosigned
    #: it. Unset: a checkpoint is published as soon as it is signed.
    witness_policy: Path | None = None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'registry.db').as_posix()}"

    @property
    def domain(self) -> Domain:
        return Domain(chain_id=self.chain_id, verifying_contract=self.contract_address)

    @property
    def resolved_public_url(self) -> str:
        return self.public_url or f"http://{self.api_host}:{self.api_port}"

    @property
    def resolved_log_origin(self) -> str:
        from registry.logkeys import default_log_origin

        return self.log_origin or default_log_origin(self.resolved_public_url)

    @property
    def resolved_keys_dir(self) -> Path:
        return self.keys_dir if self.keys_dir is not None else self.data_dir / "keys"


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides (tests, CLI flags)."""
    return Settings(**overrides)  # type: ignore[arg-type]
