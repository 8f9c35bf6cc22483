"""Fixtures shared by the anchoring tests: a real anvil, its account #0, the contract
deployed as that account's first transaction (so at the dev domain's address), and a
registry on SQLite."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.runtime import ANVIL_ACCOUNT_0_KEY
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.migrate import upgrade
from registry.service import Registry
from tests.conftest import Clock

DEV_CONTRACT = DEV_DOMAIN.verifying_contract


@pytest.fixture
def devchain() -> Iterator[DevChain]:
    with DevChain() as chain:
        yield chain


@pytest.fixture
def operator() -> LocalAccount:
    account: LocalAccount = Account.from_key(ANVIL_ACCOUNT_0_KEY)
    return account


@pytest.fixture
def chain(devchain: DevChain, operator: LocalAccount) -> Chain:
    address = Chain.connect(devchain.rpc_url, DEV_CONTRACT).deploy(operator)
    assert address == DEV_CONTRACT  # account #0's first transaction: the dev domain's contract
    return Chain.connect(devchain.rpc_url, address)


@pytest.fixture
def registry(tmp_path: Path, clock: Clock) -> Registry:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    upgrade(engine)
    return Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
