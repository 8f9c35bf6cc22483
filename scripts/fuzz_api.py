"""Fuzz a live ``tracemark serve`` with schemathesis (THREATS 44), as a platform, a creator and
an auditor in turn; ``make fuzz-api`` runs it. Not part of ``make test``: it takes minutes.

1. Start ``tracemark serve`` on a fresh data directory on 127.0.0.1 (embedded dev chain).
2. Create a platform key (verify + transfer), an audit key, and sign a fresh creator in with
   Ethereum through the API's own SIWE routes.
3. Run the ``schemathesis`` CLI against ``/openapi.json`` once per credential, with the four
   conformance checks, ``--max-examples`` cases per operation and a time budget per run.
4. Write each run's JUnit and NDJSON reports and a summary under ``test-output/fuzz-api/``,
   stop the server, and exit non-zero if any run failed.

Environment: ``FUZZ_MAX_EXAMPLES`` (default 50), ``FUZZ_MAX_TIME`` seconds per run (600),
``FUZZ_SEED`` (a fixed seed makes runs comparable; default 1).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
from eth_account import Account
from eth_account.messages import encode_defunct

from anchoring.devchain import free_port
from api.siwemessage import build_message

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REPORTS = ROOT / "test-output" / "fuzz-api"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance," + (
    "response_schema_conformance"
)
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "50"))
MAX_TIME = int(os.environ.get("FUZZ_MAX_TIME", "600"))
SEED = int(os.environ.get("FUZZ_SEED", "1"))


def call(base: str, path: str, body: dict[str, Any]) -> Any:
    answer = httpx2.post(base + path, json=body, timeout=30)
    answer.raise_for_status()
    return answer.json()


def wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"tracemark serve exited ({server.returncode}) before it was ready")
        try:
            if httpx2.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("tracemark serve was not ready in time")


def api_key(env: dict[str, str], platform: str, *scopes: str) -> str:
    args = [str(BIN / "tracemark"), "api-keys", "create", "--platform", platform, "--json"]
    for scope in scopes:
        args += ["--scope", scope]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True, timeout=60)
    return str(json.loads(out.stdout)["key"])


def creator_session(base: str) -> str:
    """A fresh creator's session token, through ``/v1/auth/siwe/nonce`` and ``/v1/auth/siwe``."""
    account = Account.create()
    nonce = call(base, "/v1/auth/siwe/nonce", {})
    message = build_message(
        domain=nonce["domain"],
        address=account.address,
        uri=nonce["uri"],
        chain_id=nonce["chain_id"],
        nonce=nonce["nonce"],
        issued_at=int(time.time()),
        statement="Sign in to tracemark.",
    )
    signature = account.sign_message(encode_defunct(text=message)).signature
    answer = call(base, "/v1/auth/siwe", {"message": message, "signature": "0x" + signature.hex()})
    return str(answer["token"])


def fuzz(base: str, name: str, token: str) -> dict[str, Any]:
    """One schemathesis run as ``name``; its reports land in ``REPORTS / name``."""
    out = REPORTS / name
    args = [
        str(BIN / "schemathesis"),
        "run",
        f"{base}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_TIME),
        "--seed",
        str(SEED),
        "--request-timeout",
        "30",
        "--header",
        f"Authorization: Bearer {token}",
        "--report",
        "junit,ndjson",
        "--report-dir",
        str(out),
        "--no-color",
        "--output-truncate",
        "false",
    ]
    began = time.monotonic()
    # ``fuzz_hooks`` teaches the CLI the bulk routes' NDJSON bodies.
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "fuzz_hooks",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "scripts"), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    (out / "output.txt").write_text(run.stdout + run.stderr)
    print(f"== {name}: exit {run.returncode} in {time.monotonic() - began:.0f} s", flush=True)
    print("\n".join(run.stdout.splitlines()[-25:]), flush=True)
    return {"credential": name, "exit": run.returncode, "seconds": time.monotonic() - began}


def main() -> int:
    shutil.rmtree(REPORTS, ignore_errors=True)
    REPORTS.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="tracemark-fuzz-") as data:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "TRACEMARK_API_PORT": str(port),
            "TRACEMARK_DATA_DIR": str(Path(data) / "data"),
            "TRACEMARK_KEYS_DIR": str(Path(data) / "keys"),
            "TRACEMARK_SEQUENCER_INTERVAL": "0.2",
        }
        # The database exists once serve has started: keys are created after it is ready.
        with (REPORTS / "serve.log").open("wb") as log:
            server = subprocess.Popen(
                [str(BIN / "tracemark"), "serve"], env=env, stdout=log, stderr=log
            )
            try:
                wait_ready(base, server)
                credentials = {
                    "platform": api_key(env, "fuzz-platform", "verify", "transfer"),
                    "creator": creator_session(base),
                    "auditor": api_key(env, "fuzz-auditor", "audit"),
                }
                runs = [fuzz(base, name, token) for name, token in credentials.items()]
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    server.kill()
    (REPORTS / "summary.json").write_text(json.dumps(runs, indent=2) + "\n")
    print(f"reports in {REPORTS.relative_to(ROOT)}/")
    return 0 if all(run["exit"] == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
