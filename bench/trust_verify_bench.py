"""``tracemark verify`` of an evidence export of 5,000 goods, pinned trust, against anvil.

Run: ``.venv/bin/python -m bench.trust_verify_bench [--codes N] [--files N] [--rounds R]``.
Builds a registry on SQLite with a batch of codes (one signature) and single-registered files
(one signature each), anchors it on a real anvil, exports every good to one
``tracemark-export/v1`` file and pins the registry's trust root. Then, as whole processes,
alternating, median of ``--rounds``:

- ``tracemark verify EXPORT --rpc URL --trust ROOT`` (every leaf, payload, signature under the
  trusted domain, inclusion and consistency proof, each head's signer and signature, and the
  anchors at the trust root's depth);
- the floor: one Python process that reads the file, parses it and hashes every leaf (its 224
  bytes, RFC 9162 0x00 prefix) and every proof node (0x01 prefix) with hashlib.

Both run as an installed program does: with the modules' bytecode compiled once (pip compiles
it at install, a checkout writes ``__pycache__`` on its first run), in a temporary
``PYTHONPYCACHEPREFIX`` written by an untimed first run. The verify is timed a second way too,
with ``PYTHONDONTWRITEBYTECODE=1`` in a checkout without ``__pycache__`` (the environment the
project's sessions run in): every module of the project compiled at each start, the installed
packages' bytecode read (``verify_uncached_*``: reported, not the ratio).

Writes ``bench/results/trust_verify.json``; the target is at most 3x the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account

from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.runtime import ANVIL_ACCOUNT_0_KEY
from anchoring.worker import AnchorPolicy, AnchorWorker
from api.trustroot import TrustRootConfig, registry_trust_root
from bench.common import save
from readmodels.exports import ExportSelection, write_export
from registry.codesfile import codes_source, prepare_code_batch
from registry.creator import CreatorKeys, sign_batch_registration, sign_registration
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.migrate import upgrade
from registry.royalty import RoyaltyPolicy
from registry.service import Registry

FLOOR = r"""
import hashlib, json, sys
document = json.loads(open(sys.argv[1], "rb").read())
sha = hashlib.sha256
hashes = 0
KINDS = {"REGISTER": 1, "REVOKE": 2, "TRANSFER": 3, "CONFLICT": 4}
TYPES = {"file": 1, "code": 2, "item": 3}
def word(value):
    return bytes(31) + bytes((value,))
for good in document["goods"]:
    for entry in [good["entry"], *good["later_entries"]]:
        leaf = b"".join((
            word(1), word(KINDS[entry["kind"]]), word(TYPES[entry["good_type"]]),
            bytes.fromhex(entry["fingerprint"][2:]), bytes(12) + bytes.fromhex(entry["actor"][2:]),
            bytes.fromhex(entry["payload_hash"][2:]), entry["timestamp"].to_bytes(32, "big"),
        ))
        node = sha(b"\x00" + leaf).digest()
        hashes += 1
        proof = list(entry["inclusion_proof"])
        if entry["batch_proof"]:
            proof += entry["batch_proof"]["inclusion_proof"]
        for sibling in proof:
            node = sha(b"\x01" + node + bytes.fromhex(sibling[2:])).digest()
            hashes += 1
for link in document["consistency"]:
    for node in link["proof"]:
        sha(b"\x01" + bytes.fromhex(node[2:]) * 2).digest()
        hashes += 1
print(hashes)
"""


def _build(tmp: Path, codes: int, files: int) -> tuple[DevChain, Path, Path, int]:
    devchain = DevChain().__enter__()
    operator = Account.from_key(ANVIL_ACCOUNT_0_KEY)
    chain = Chain.connect(devchain.rpc_url, DEV_DOMAIN.verifying_contract)
    chain.deploy(operator)
    engine = create_db_engine(f"sqlite:///{tmp / 'registry.db'}")
    upgrade(engine)
    registry = Registry(
        engine, domain=DEV_DOMAIN, account=Account.create(), master_key=secrets.token_bytes(32)
    )
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    now = int(time.time())
    policy = RoyaltyPolicy.parse({"recipients": []})
    if codes:
        lines = "\n".join(f"BENCH-{i:08d}" for i in range(codes))
        batch = prepare_code_batch(codes_source(lines), creator.require_code_key())
        request = sign_batch_registration(
            creator,
            DEV_DOMAIN,
            batch,
            good_type=GoodType.CODE,
            product="card",
            use=Use.SINGLE,
            royalty_policy=policy,
            metadata={"lot": 1},
            now=now,
            new_product=True,
        )
        registry.register_batch(request, batch.fingerprints())
    for index in range(files):
        registry.register(
            sign_registration(
                creator,
                DEV_DOMAIN,
                good_type=GoodType.FILE,
                fingerprint=secrets.token_bytes(32),
                product="art",
                use=Use.TRANSFERABLE,
                royalty_policy=policy,
                metadata={},
                now=now,
                new_product=index == 0,
            )
        )
    registry.sequence_all()
    worker = AnchorWorker(
        registry, chain, operator, AnchorPolicy(max_entries=1, max_age_seconds=0, confirmations=1)
    )
    worker.run_until_idle()
    devchain.rpc("anvil_mine", hex(3))
    worker.run_until_idle()
    result = write_export(registry, ExportSelection(creator=creator.address), tmp / "out")
    root = registry_trust_root(registry, TrustRootConfig(name="bench", confirmations=3))
    root_file = tmp / "root.json"
    root_file.write_text(root.to_json())
    return devchain, result.json_path, root_file, result.goods


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} exited {done.returncode}: {done.stdout}{done.stderr}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--codes", type=int, default=4_000)
    parser.add_argument("--files", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tracemark = str(Path(sys.executable).with_name("tracemark"))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        devchain, export_file, root_file, goods = _build(tmp, args.codes, args.files)
        try:
            env_file = tmp / "floor.py"
            env_file.write_text(FLOOR)
            verify_argv = [
                tracemark,
                "verify",
                str(export_file),
                "--rpc",
                devchain.rpc_url,
                "--trust",
                str(root_file),
                "--json",
            ]
            floor_argv = [sys.executable, str(env_file), str(export_file)]
            cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            cached["PYTHONPYCACHEPREFIX"] = str(tmp / "bytecode")
            # Nothing written: the project's modules (no __pycache__ in a checkout run so) are
            # compiled at every start; the installed packages' own bytecode is read.
            uncached = {k: v for k, v in cached.items() if k != "PYTHONPYCACHEPREFIX"}
            uncached["PYTHONDONTWRITEBYTECODE"] = "1"
            for argv in (verify_argv, floor_argv):  # untimed: compiles into the cache
                _timed(argv, cached)
            verify_times, uncached_times, floor_times = [], [], []
            report: dict[str, object] = {}
            for _ in range(args.rounds):
                elapsed, stdout = _timed(verify_argv, cached)
                verify_times.append(elapsed)
                report = json.loads(stdout)
                elapsed, _ = _timed(verify_argv, uncached)
                uncached_times.append(elapsed)
                elapsed, _ = _timed(floor_argv, cached)
                floor_times.append(elapsed)
        finally:
            devchain.__exit__(None, None, None)
        size = export_file.stat().st_size if export_file.exists() else 0
    verify_s, floor_s = statistics.median(verify_times), statistics.median(floor_times)
    uncached_s = statistics.median(uncached_times)
    assert report.get("status") == "verified", report
    data = {
        "goods": goods,
        "export_bytes": size,
        "rounds": args.rounds,
        "verify_seconds_median": round(verify_s, 3),
        "verify_seconds": [round(t, 3) for t in verify_times],
        "verify_uncached_seconds_median": round(uncached_s, 3),
        "verify_uncached_seconds": [round(t, 3) for t in uncached_times],
        "uncached_ratio": round(uncached_s / floor_s, 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "floor_seconds_median": round(floor_s, 3),
        "floor_seconds": [round(t, 3) for t in floor_times],
        "ratio": round(verify_s / floor_s, 2),
        "target": "<= 3x the floor",
        "status": report.get("status"),
    }
    path = save("trust_verify", data)
    print(json.dumps(data, indent=2))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
