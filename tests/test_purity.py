"""The pure domain core imports neither web3, an ORM nor a web framework (STYLE rule 1)."""

from __future__ import annotations

import json
import subprocess
import sys

PURE_MODULES = [
    "registry.fingerprints",
    "registry.codekeyring",
    "registry.canonicaljson",
    "registry.leaf",
    "registry.royalty",
    "registry.eip712",
    "registry.signatures",
    "registry.payloads",
    "registry.transferpayload",
    "registry.merkle",
    "registry.tiles",
    # The signed requests and the distribution policy a platform's client builds (issue 13).
    "registry.signed",
    "registry.requests",
    "registry.distribution_policy",
    # The orders' state table and terms (issue 17): what a platform's client can check.
    "registry.orders",
    # The rebate split (issue 17 item 6): what a platform's client can check.
    "registry.rebatesplit",
    # The one-type formats (issue 13, item 1): what the kit parses receipts, heads, batch
    # proofs and edge fields with.
    "registry.edges",
    "registry.receipts",
    "registry.treehead",
    "registry.batchproof",
    "registry.parties",
    # The state map of goods (issue 14): its hashing, proofs and the in-memory map.
    "registry.statemap",
    "registry.statemaptree",
    # The map auditor: what a monitor runs over the leaves it fetched (issue 14, item 3).
    "registry.statemapaudit",
    # The witness policy (issue 15): what a verifier's trust root and the registry both read.
    "registry.witnesspolicy",
    # The transparency formats (issue 15): signed notes, checkpoints, the log's note keys.
    "registry.note",
    "registry.cosignature",
    "registry.checkpoint",
    # Real-name attestations (issue 18 item 4): the payload the kit proves offline, and the
    # personal-data detectors.
    "registry.attestations",
    "registry.personaldata",
    "registry.logkeys",
    # The witness role (issue 15): add-checkpoint, its durable state and its config file.
    "registry.witness",
    "registry.witnessstate",
    "registry.witnessconfig",
    # C2SP tlog-tiles paths, bundles and the root from tiles: what a monitor follows a log with.
    "registry.tlogtiles",
    "verifier.identity",
    # What a verifier runs (issue 11): trust roots, the checks, the JSON-RPC reader, the
    # client's proof of work: no web3, no ORM, no web framework.
    "verifier.boundedjson",
    "verifier.errors",
    "verifier.trust",
    "verifier.truststore",
    "verifier.bundle",
    "verifier.offline",
    "verifier.entrycheck",
    # The c2sp.org/tlog-proof@v1 offline proof and its check (issue 15).
    "verifier.tlogproof",
    "verifier.tlogproofcheck",
    "verifier.export",
    # The buyer's delivery receipt and its offline check (issue 17 item 3).
    "registry.deliveryreceipt",
    "verifier.deliveryreceipt",
    # A real-name attestation's offline proof and its check (issue 18 item 4).
    "verifier.attestationproof",
    "verifier.pow",
    "verifier.schemas",
    "verifier.client",
    "anchoring.reader",
]
FORBIDDEN = ["web3", "sqlmodel", "sqlalchemy", "fastapi"]


def test_pure_modules_import_no_infrastructure() -> None:
    # A fresh interpreter: in this one, other tests may already have imported anything.
    program = (
        "import json, sys\n"
        f"for name in {PURE_MODULES!r}:\n"
        "    __import__(name)\n"
        f"print(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], check=True, capture_output=True, text=True
    )
    assert json.loads(result.stdout) == []


def test_no_module_of_the_verifier_package_imports_infrastructure() -> None:
    # Every module of ``verifier`` (what a platform or auditor runs without the server; httpx
    # for the client is allowed), in a fresh interpreter, naming the first module that loads
    # each forbidden package.
    program = (
        "import json, pkgutil, sys, verifier\n"
        "culprits = {}\n"
        "for info in pkgutil.walk_packages(verifier.__path__, 'verifier.'):\n"
        "    __import__(info.name)\n"
        f"    for m in {FORBIDDEN!r}:\n"
        "        if m in sys.modules:\n"
        "            culprits.setdefault(m, info.name)\n"
        "print(json.dumps(culprits, sort_keys=True))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], check=True, capture_output=True, text=True
    )
    assert json.loads(result.stdout) == {}
