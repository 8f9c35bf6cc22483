"""Fixtures for the page's tests: the real app under uvicorn on a loopback port (in a thread),
a registry seeded with goods in every state, and Debian's headless Chromium driven by Selenium
through Debian's chromedriver (no browser is ever downloaded)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account

from anchoring.devchain import free_port
from api.apikeys import create_api_key
from api.app import create_app
from api.creatortokens import TOKEN_TTL, issue_creator_token
from api.identity import load_identity_settings
from api.ratelimit import Limit, RateLimits
from readmodels.riskworker import RiskWorker
from registry.creator import CreatorKeys, sign_enrollment, sign_revocation
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import CodeFingerprinter, GoodType, Use
from registry.migrate import upgrade
from registry.service import Registry
from registry.transfers import GoodRevoked, Party, TransferRequest
from tests.api.conftest import POLICY
from tests.api.test_platform_routes import anchor_everything
from tests.registry.helpers import registration
from tests.serving import serving

CHROMIUM = Path(os.environ.get("TRACEMARK_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("TRACEMARK_CHROMEDRIVER", "/usr/bin/chromedriver"))
REQUIRE_BROWSER = os.environ.get("TRACEMARK_REQUIRE_BROWSER") == "1"
HOW_TO_INSTALL = (
    f"no Chromium at {CHROMIUM} or no chromedriver at {CHROMEDRIVER}: install Debian's "
    "(apt-get install -y chromium chromium-driver; `make test` and .ci/run do it) to run "
    "the page's browser tests"
)
#: Where screenshots go (git-ignored); TRACEMARK_TEST_OUTPUT moves it.
OUTPUT = Path(os.environ.get("TRACEMARK_TEST_OUTPUT", Path(__file__).parents[2] / "test-output"))
SCREENSHOTS = OUTPUT / "screenshots"

#: The page's checks come from one loopback address; these limits leave room for the tests
#: (the anonymous code tier's real budget is 10 a minute per IP).
ROOMY = RateLimits(
    anonymous=Limit.per_second(200, burst=400),
    code_lookup=Limit.per_minute(600, burst=100),
    probe=Limit.per_minute(600, burst=100),
)


@dataclass(frozen=True)
class Market:
    """What the registry under the page holds, and how to reach it."""

    url: str
    registry: Registry
    creator: CreatorKeys
    product: str
    genuine_code: str
    revoked_code: str
    unknown_code: str
    genuine_fp: str
    revoked_fp: str
    #: A registered file of a few MiB (several 4 MiB slices), transferred twice with royalties.
    big_file: Path
    big_file_fp: str
    empty_file: Path
    audit_key: str
    creator_token: str


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _seed(registry: Registry, files: Path) -> dict[str, object]:
    now = registry.clock()
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    code_key = creator.require_code_key()
    registry.enroll_code_key(sign_enrollment(creator, DEV_DOMAIN, now=now), code_key)
    fingerprinter = CodeFingerprinter(code_key)
    suffix = secrets.token_hex(3).upper()
    genuine, revoked, unknown = (f"{p}-4821-{suffix}" for p in ("GEN", "REV", "UNK"))
    product = "30-day-card"
    for index, code in enumerate((genuine, revoked)):
        registry.register(
            registration(
                creator,
                now,
                fingerprint=fingerprinter.fingerprint(code),
                good_type=GoodType.CODE,
                product=product,
                use=Use.SINGLE,
                policy=POLICY,
                new_product=index == 0,
            )
        )
    # 9 MiB and a bit: three 4 MiB slices, the last one short and not block-aligned.
    big = files / "artwork.bin"
    big.write_bytes(secrets.token_bytes(9 * 1024 * 1024 + 123))
    big_fp = hashlib.sha256(big.read_bytes()).digest()
    registry.register(
        registration(
            creator, now, fingerprint=big_fp, good_type=GoodType.FILE, product="art", policy=POLICY
        )
    )
    empty = files / "empty.txt"
    empty.write_bytes(b"")
    registry.revoke(
        sign_revocation(
            creator,
            DEV_DOMAIN,
            good_type=GoodType.CODE,
            fingerprint=fingerprinter.fingerprint(revoked),
            reason="leaked lot 7",
            now=now,
        )
    )
    registry.sequence_all()
    # The file changes hands twice: the resale owes the creator's royalty.
    alice, bob = Party("cardhub", "alice"), Party("keyshop", "bob")
    for platform, seller, buyer, price in (
        ("cardhub", Party(None, None), alice, 5_000),
        ("cardhub", alice, bob, 8_000),  # the holder's platform reports its user's sale
    ):
        registry.transfer(
            TransferRequest(
                platform=platform,
                good_type=GoodType.FILE,
                fingerprint=big_fp,
                seller=seller,
                buyer=buyer,
                price=price,
                currency="EUR",
            )
        )
    # A platform tries to sell the revoked code: refused, and a signal for the auditors.
    with contextlib.suppress(GoodRevoked):
        registry.transfer(
            TransferRequest(
                platform="shadowkeys",
                good_type=GoodType.CODE,
                fingerprint=fingerprinter.fingerprint(revoked),
                seller=Party(None, None),
                buyer=Party("shadowkeys", "mallory"),
                price=900,
                currency="EUR",
            )
        )
    anchor_everything(registry)
    RiskWorker(registry.engine, clock=registry.clock).run_once()
    return {
        "creator": creator,
        "product": product,
        "genuine_code": genuine,
        "revoked_code": revoked,
        "unknown_code": unknown,
        "genuine_fp": _hex(fingerprinter.fingerprint(genuine)),
        "revoked_fp": _hex(fingerprinter.fingerprint(revoked)),
        "big_file": big,
        "big_file_fp": _hex(big_fp),
        "empty_file": empty,
    }


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    """The API and the page on a free loopback port over a seeded SQLite registry."""
    home = tmp_path_factory.mktemp("web")
    engine = create_db_engine(f"sqlite:///{(home / 'registry.db').as_posix()}")
    upgrade(engine)
    registry = Registry(
        engine, domain=DEV_DOMAIN, account=Account.create(), master_key=secrets.token_bytes(32)
    )
    seeded = _seed(registry, home)
    now = registry.clock()
    audit_key, _ = create_api_key(engine, "auditdesk", ["audit"], "page tests", now)
    port = free_port()
    app = create_app(
        registry,
        limits=ROOMY,
        siwe_domain=f"127.0.0.1:{port}",
        telemetry_interval=0.05,
        # The creator's web domain is served on loopback (test_page's identity test).
        identity_settings=load_identity_settings(allow_http=True, allow_loopback=True),
    )
    creator: CreatorKeys = seeded["creator"]  # type: ignore[assignment]
    token = issue_creator_token(
        app.state.authenticator.token_key,
        creator.address,
        chain_id=registry.domain.chain_id,
        now=now,
        expires_at=now + TOKEN_TTL,
    )
    try:
        with serving(app, port, name="web-api") as url:
            yield Market(
                url=url,
                registry=registry,
                audit_key=audit_key,
                creator_token=token,
                **seeded,  # type: ignore[arg-type]
            )
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Debian's Chromium, headless, through Debian's chromedriver: nothing downloaded."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if REQUIRE_BROWSER:
            pytest.fail(HOW_TO_INSTALL)
        pytest.skip(HOW_TO_INSTALL)
    # Selenium Manager never runs with an explicit driver path; offline mode makes sure.
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        # This machine's network is closed: no background calls home.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
