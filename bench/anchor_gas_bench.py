"""Gas of one ``anchor`` on anvil: a head of 10^6 entries extending one 10% smaller.

Run: ``.venv/bin/python -m bench.anchor_gas_bench``. The floor is the 21,000 gas every
transaction pays; the target (issue 3) is at most 4x that. Also reports the first anchor
(no proof) and gas per good at several batch sizes. Writes ``bench/results/anchor_gas.json``.
(The peers of issue 3, EAS and an ERC-721 mint, are still to be added here.)
"""

from __future__ import annotations

import hashlib

from web3 import Web3

from anchoring.devchain import DevChain
from bench.common import save
from contracts import anchor_artifact
from registry.tiles import MemoryTree

FLOOR = 21_000


def main() -> None:
    sha256 = hashlib.sha256
    tree = MemoryTree()
    tree.append([sha256(b"\x00" + i.to_bytes(8, "big")).digest() for i in range(1_000_000)])
    artifact = anchor_artifact()
    results: dict[str, int] = {}
    with DevChain() as chain:
        w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
        w3.eth.default_account = w3.eth.accounts[0]
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        deployed = w3.eth.wait_for_transaction_receipt(factory.constructor().transact())
        anchor = w3.eth.contract(address=deployed["contractAddress"], abi=artifact["abi"])
        results["deploy"] = int(deployed["gasUsed"])

        def send(size: int, previous: int) -> int:
            proof = tree.consistency_proof(previous, size) if previous else []
            tx = anchor.functions.anchor(size, tree.root(size), proof).transact()
            return int(w3.eth.wait_for_transaction_receipt(tx)["gasUsed"])

        results["first_anchor_900000"] = send(900_000, 0)
        results["anchor_1000000_from_900000"] = send(1_000_000, 900_000)
    ratio = results["anchor_1000000_from_900000"] / FLOOR
    per_good = {
        str(n): results["anchor_1000000_from_900000"] / n
        for n in (10**2, 10**3, 10**4, 10**5, 10**6)
    }
    path = save("anchor_gas", {"gas": results, "ratio_to_21000": ratio, "gas_per_good": per_good})
    print(
        f"anchor at 10^6 extending 9*10^5: {results['anchor_1000000_from_900000']:,} gas "
        f"= {ratio:.2f}x the 21,000 floor (target <= 4x)"
    )
    print(
        "gas per good if one anchor covers N goods: "
        + ", ".join(f"{n}: {g:.3f}" for n, g in per_good.items())
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
