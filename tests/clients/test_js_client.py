"""The typed JavaScript/TypeScript client (issue 18 item 6, ``clients/js``): its types are
exactly what the OpenAPI golden makes (and a drifted golden is caught), ``tsc`` strict passes
and refuses a misuse, and the client built to JavaScript runs in Node against a live registry
on SQLite and PostgreSQL: the pinned trust root, verify, a transfer and its replay, a double
sale and other refusals as typed problem+json exceptions (in Chinese too), an order delivered
by code and confirmed, credit. Node and the pinned TypeScript come from ``make install``."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from anchoring.devchain import free_port
from api.apikeys import create_api_key
from api.app import create_app
from api.ratelimit import Limit, RateLimits
from registry.creator import CreatorKeys, sign_enrollment
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import CodeFingerprinter, GoodType, Use
from registry.service import Registry
from tests.api.test_platform_routes import anchor_everything
from tests.registry.helpers import registration
from tests.serving import serving
from tests.trust import policy_of
from verifier.schemas import ReceiptOut
from verifier.signedanswers import verify_receipt
from verifier.trust import TrustRoot

ROOT = Path(__file__).parents[2]
CLIENT = ROOT / "clients" / "js"
GOLDEN = ROOT / "tests" / "golden" / "openapi_v1.json"
TSC = CLIENT / "node_modules" / ".bin" / "tsc"
DRIVER = Path(__file__).parent / "client_run.mjs"
#: Seconds any one Node or tsc run may take on a loaded 2-core machine.
RUN_TIMEOUT = 180


def _node() -> str:
    node = shutil.which("node")
    if node is None or not TSC.exists():
        pytest.fail("no node or no clients/js/node_modules: run `make install` (npm ci there)")
    return node


def _run(*args: str, cwd: Path = CLIENT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )


def test_the_types_are_what_the_golden_makes() -> None:
    found = _run(_node(), "scripts/generate.mjs", "--check")
    assert found.returncode == 0, found.stderr


def test_a_drifted_golden_is_caught(tmp_path: Path) -> None:
    """Mutation probe: the API renames a member of the verify answer; the check fails."""
    document = json.loads(GOLDEN.read_text(encoding="utf-8"))
    verify_out = document["components"]["schemas"]["VerifyOut"]
    verify_out["properties"]["outcome"] = verify_out["properties"].pop("verdict")
    verify_out["required"] = [
        "outcome" if name == "verdict" else name for name in verify_out["required"]
    ]
    drifted = tmp_path / "openapi.json"
    drifted.write_text(json.dumps(document), encoding="utf-8")
    found = _run(_node(), "scripts/generate.mjs", "--check", "--golden", str(drifted))
    assert found.returncode == 1
    assert "npm run generate" in found.stderr


def test_tsc_strict_passes_and_refuses_a_misuse(tmp_path: Path) -> None:
    checked = _run(_node(), str(TSC), "--noEmit", "-p", ".")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # A platform's code that names a good type the API does not have, or forgets the
    # seller of a transfer, does not compile.
    probe = tmp_path / "probe.ts"
    probe.write_text(
        f'import {{ TracemarkClient }} from "{(CLIENT / "src" / "index.js").as_posix()}";\n'
        'const client = new TracemarkClient({ baseUrl: "http://127.0.0.1:1" });\n'
        'void client.verify({ good_type: "coin", fingerprint: "0x00" });\n'
        'void client.recordTransfer({ good_type: "file", fingerprint: "0x00", '
        'buyer: { platform: "cardhub", reference: "a" } });\n',
        encoding="utf-8",
    )
    config = tmp_path / "tsconfig.json"
    config.write_text(
        json.dumps(
            {
                "extends": (CLIENT / "tsconfig.json").as_posix(),
                "compilerOptions": {"noEmit": True, "rootDir": "/"},
                "files": [probe.as_posix()],
            }
        ),
        encoding="utf-8",
    )
    refused = _run(_node(), str(TSC), "-p", str(config))
    assert refused.returncode != 0
    assert '"coin"' in refused.stdout and "'seller' is missing" in refused.stdout, refused.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client compiled to JavaScript (outside the tree: other runs may share it)."""
    out = tmp_path_factory.mktemp("client-dist")
    made = _run(_node(), str(TSC), "-p", ".", "--outDir", str(out))
    assert made.returncode == 0, made.stdout + made.stderr
    # The compiled modules are ES modules; Node reads their type from a package.json.
    (out / "package.json").write_text('{"type": "module"}\n', encoding="utf-8")
    return out / "index.js"


def _seed(registry: Registry) -> dict[str, Any]:
    now = registry.clock()
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    code_key = creator.require_code_key()
    registry.enroll_code_key(sign_enrollment(creator, DEV_DOMAIN, now=now), code_key)
    code = "JSC-4821-" + secrets.token_hex(3).upper()
    code_fp = CodeFingerprinter(code_key).fingerprint(code)
    file_fp = os.urandom(32)
    registry.register(
        registration(
            creator,
            now,
            fingerprint=code_fp,
            good_type=GoodType.CODE,
            product="30-day-card",
            use=Use.SINGLE,
        )
    )
    registry.register(registration(creator, now, fingerprint=file_fp, product="art"))
    registry.sequence_all()
    anchor_everything(registry)
    return {
        "creator": creator.address,
        "code": code,
        "codeFingerprint": "0x" + code_fp.hex(),
        "file": "0x" + file_fp.hex(),
        "unknown": "0x" + os.urandom(32).hex(),
        "aliceRef": "0x" + registry.reference_hash("cardhub", "alice").hex(),
    }


@pytest.fixture
def live(registry: Registry) -> Iterator[tuple[str, dict[str, Any]]]:
    scenario = _seed(registry)
    key, _ = create_api_key(
        registry.engine, "cardhub", ["verify", "transfer"], "node client", registry.clock()
    )
    port = free_port()
    # A small anonymous budget, so that the client meets a 429 (the key's budget is apart).
    limits = RateLimits(anonymous=Limit.per_minute(1, burst=8))
    app = create_app(
        registry, siwe_domain=f"127.0.0.1:{port}", telemetry_interval=0.05, limits=limits
    )
    with serving(app, port, name="js-client-api") as url:
        yield url, {**scenario, "url": url, "apiKey": key}


@pytest.mark.slow
def test_the_node_client_against_a_live_registry(
    built: Path, live: tuple[str, dict[str, Any]], registry: Registry
) -> None:
    url, scenario = live
    with urllib.request.urlopen(url + "/.well-known/tracemark-trust.json", timeout=10) as reply:
        served = TrustRoot.parse(reply.read())
    scenario["pinned"] = served.fingerprint()
    ran = _run(_node(), str(DRIVER), built.as_uri(), json.dumps(scenario))
    assert ran.returncode == 0, ran.stderr
    # The API key appears nowhere in what the client printed or logged.
    assert scenario["apiKey"] not in ran.stdout + ran.stderr
    out = json.loads(ran.stdout)

    # The trust root, pinned by the fingerprint Python computes (RFC 8785 in both).
    assert out["trust"]["fingerprint"] == served.fingerprint()
    assert out["trust"]["chain_id"] == registry.domain.chain_id
    assert out["wrongPin"] == "TrustRootMismatch"

    for answer in (out["verifyFile"], out["verifyCode"]):
        assert answer["verdict"] == "authentic" and answer["creator"] == scenario["creator"]
    assert out["verifyCode"]["fingerprint"] == scenario["codeFingerprint"]
    assert out["verifyUnknown"]["verdict"] == "unknown"

    # The transfer's receipt verifies offline in Python under the pinned trust root.
    receipt = ReceiptOut.model_validate(out["receipt"])
    verify_receipt(receipt, policy_of(registry))
    assert receipt.price == "5000" and receipt.fingerprint == scenario["file"]
    assert out["replayed"]["replayed"] is True
    assert out["replayed"]["transfer_id"] == receipt.transfer_id
    assert out["fetched"]["transfer_hash"] == receipt.transfer_hash

    # Refusals are typed: class, family, status, code, and the problem's members.
    double = out["doubleSale"]
    assert double["class"] == "DoubleSale" and double["status"] == 409
    assert double["chain"] == [True, True, True, False, False, False]
    assert double["code"] == "double-sale"
    assert double["earlier"]["transfer_id"] == receipt.transfer_id
    chinese = out["doubleSaleZh"]
    assert chinese["code"] == "double-sale" and chinese["class"] == "DoubleSale"
    assert chinese["title"] != double["title"]
    assert any("\u4e00" <= c <= "\u9fff" for c in chinese["title"])
    assert out["malformed"]["class"] == "InvalidRequest" and out["malformed"]["status"] == 422
    assert out["malformed"]["errors"]
    assert out["badKey"]["class"] == "Unauthorized" and out["badKey"]["status"] == 401
    assert out["noOrder"]["class"] == "NotFound" and out["noOrder"]["status"] == 404
    assert out["needsPow"]["class"] == "ProofOfWorkRequired" and out["needsPow"]["status"] == 428
    assert out["limited"]["class"] == "RateLimited" and out["limited"]["code"] == "rate-limited"
    assert out["retryAfter"] >= 1

    # An order: reserved, delivered by code (in the body), confirmed; its receipt exists.
    order = out["order"]
    assert (order["opened"], order["delivered"], order["confirmed"]) == (
        "reserved",
        "delivered",
        "confirmed",
    )
    assert order["receipt"] == registry.delivery_receipt(order["id"], platform="cardhub").receipt_id
    # Credit: cardhub reported the sale and the order; alice (the buyer) sold nothing.
    assert out["platformCredit"]["subject"] == "platform"
    assert out["platformCredit"]["inputs"]["sales_completed"] >= 2
    assert out["sellerCredit"]["seller"] == scenario["aliceRef"]
    assert out["sellerCredit"]["inputs"]["sales_completed"] == 0
