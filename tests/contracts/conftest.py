"""One behavioural suite, two chains: the in-process py-evm and a real anvil node."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract

from anchoring.devchain import DevChain
from contracts import anchor_artifact


@pytest.fixture(scope="module", params=["py-evm", pytest.param("anvil", marks=pytest.mark.slow)])
def w3(request: pytest.FixtureRequest) -> Iterator[Web3]:
    """A fresh chain per test module (py-evm's receipt lookups slow down as it grows)."""
    if request.param == "py-evm":
        web3 = Web3(EthereumTesterProvider())
        web3.eth.default_account = web3.eth.accounts[0]
        yield web3
        return
    with DevChain() as chain:
        web3 = Web3(Web3.HTTPProvider(chain.rpc_url))
        web3.eth.default_account = web3.eth.accounts[0]
        yield web3


@pytest.fixture(scope="module")
def deployed(w3: Web3) -> Contract:
    artifact = anchor_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact())
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


@pytest.fixture
def anchor(w3: Web3, deployed: Contract) -> Iterator[Contract]:
    """The deployed contract, with every test's changes rolled back afterwards."""
    snapshot: Any = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    yield deployed
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
