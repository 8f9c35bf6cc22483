"""Gas per registered good: tracemark's anchors against what a user would pick instead.

Run: ``npm ci --prefix bench && .venv/bin/python -m bench.gas_bench``. One anvil, one run:
tracemark anchors covering 10^2 .. 10^6 new goods each (every anchor extends the last, its
RFC 9162 consistency proof checked on chain), against EAS ``attest``, ``multiAttest`` and
``multiTimestamp`` (deployed from the compiled artifacts the npm package
``@ethereum-attestation-service/eas-contracts`` ships) and an ERC-721 mint
(``@openzeppelin/contracts`` 4.9.6, ``ERC721PresetMinterPauserAutoId``).
Writes ``bench/results/gas.json``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract

from anchoring.devchain import DevChain
from bench.common import save
from contracts import anchor_artifact
from registry.tiles import MemoryTree

NODE_MODULES = Path(__file__).parent / "node_modules"
EAS = NODE_MODULES / "@ethereum-attestation-service/eas-contracts/artifacts/contracts"
OZ = NODE_MODULES / "@openzeppelin/contracts/build/contracts"
ZERO32 = bytes(32)
BATCH = 50  # items per multiAttest / multiTimestamp transaction


def _artifact(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise SystemExit(f"{path} is missing: run npm ci --prefix bench")
    return dict(json.loads(path.read_text()))


def _deploy(w3: Web3, artifact: dict[str, Any], *args: Any) -> Contract:
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor(*args).transact())
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def _gas(w3: Web3, call: Any) -> int:
    return int(w3.eth.wait_for_transaction_receipt(call.transact())["gasUsed"])


def _fingerprint(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


def peers(w3: Web3) -> dict[str, float]:
    registry = _deploy(w3, _artifact(EAS / "SchemaRegistry.sol/SchemaRegistry.json"))
    receipt = w3.eth.wait_for_transaction_receipt(
        registry.functions.register("bytes32 fingerprint", "0x" + "00" * 20, True).transact()
    )
    schema = bytes(receipt["logs"][0]["topics"][1])
    eas = _deploy(w3, _artifact(EAS / "EAS.sol/EAS.json"), registry.address)
    me = w3.eth.default_account

    def item(i: int) -> tuple[Any, ...]:
        return (me, 0, True, ZERO32, _fingerprint(i), 0)

    attest = [_gas(w3, eas.functions.attest((schema, item(i)))) for i in range(5)]
    multi = _gas(w3, eas.functions.multiAttest([(schema, [item(100 + i) for i in range(BATCH)])]))
    stamp = _gas(w3, eas.functions.multiTimestamp([_fingerprint(1000 + i) for i in range(BATCH)]))
    nft = _deploy(w3, _artifact(OZ / "ERC721PresetMinterPauserAutoId.json"), "Goods", "GD", "")
    mints = [_gas(w3, nft.functions.mint(me)) for _ in range(5)]
    return {
        "eas_attest": sorted(attest)[len(attest) // 2],
        "eas_multiAttest": multi / BATCH,
        "eas_multiTimestamp": stamp / BATCH,
        "erc721_mint": sorted(mints)[len(mints) // 2],
    }


def tracemark(w3: Web3) -> dict[str, dict[str, float]]:
    sizes = [10**2, 10**3, 10**4, 10**5, 10**6]
    base = 10**6
    total = base + sum(sizes)
    tree = MemoryTree()
    sha256 = hashlib.sha256
    tree.append([sha256(b"\x00" + i.to_bytes(8, "big")).digest() for i in range(total)])
    anchor = _deploy(w3, anchor_artifact())
    _gas(w3, anchor.functions.anchor(base, tree.root(base), []))
    results = {}
    previous = base
    for n in sizes:
        size = previous + n
        proof = tree.consistency_proof(previous, size)
        gas = _gas(w3, anchor.functions.anchor(size, tree.root(size), proof))
        results[str(n)] = {"anchor_gas": gas, "gas_per_good": gas / n}
        previous = size
    return results


def main() -> None:
    with DevChain() as chain:
        w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
        w3.eth.default_account = w3.eth.accounts[0]
        ours = tracemark(w3)
        theirs = peers(w3)
    at_1e5 = ours[str(10**5)]["gas_per_good"]
    data = {
        "tracemark_per_anchor": ours,
        "peers_gas_per_good": theirs,
        "tracemark_gas_per_good_at_1e5": at_1e5,
        "ratios_at_1e5": {name: gas / at_1e5 for name, gas in theirs.items()},
    }
    path = save("gas", data)
    for n, row in ours.items():
        print(
            f"tracemark, {int(n):>9,} goods per anchor: {row['anchor_gas']:>7,} gas "
            f"= {row['gas_per_good']:.3f} gas per good"
        )
    for name, gas in theirs.items():
        print(f"{name:>20}: {gas:>10,.0f} gas per good = {gas / at_1e5:,.0f}x tracemark at 10^5")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
