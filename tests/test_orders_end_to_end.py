"""Guaranteed trade (issue 17) on the real stack: `tracemark serve` (uvicorn on a loopback port,
the sequencer with its order sweep, the anchoring worker) on anvil, over SQLite and PostgreSQL,
driven through the typed client, the CLI and the receipt's page in headless Chromium.

One server per database (a module fixture): the creator registers codes with a royalty policy
through the CLI over HTTP and sets a rebate policy of three levels for the product; cardhub
places an agent tree of three levels above its seller, who buys the codes first-hand. Then:

- an order reserves a good: keyshop's sale of it is 409 ``reserved`` and verify says so; it is
  delivered, the buyer's receipt opened at ``/r/<id>`` in Chromium matches the code and not a
  wrong one, and the window passes: the sequencer's sweep auto-confirms it unread;
- a second order is disputed and released; both orders' royalty and rebate lines are due, and
  payouts clear them (owed -> paid, for the platform and for the creator);
- a fake delivery (a code sold on keyshop) is refused and changes nothing;
- a dispute refunded (every line reversed), the code then redeemed on keyshop: the order's
  evidence verifies offline against anvil under the pinned trust root and says so.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import create_engine, text

from anchoring.chain import Chain
from anchoring.devchain import DevChain, free_port
from anchoring.runtime import ANVIL_ACCOUNT_0_KEY
from api.cli.verify import EXIT_NOT_FINAL
from registry.creator import CreatorKeys
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import CodeFingerprinter
from tests import polling
from tests.conftest import HOW_TO_ENABLE, POSTGRES_URL, REQUIRE_POSTGRES, _postgres_available
from tests.test_end_to_end import _answers, _checksum
from tests.web.conftest import browser  # noqa: F401  (the module's Chromium)
from tests.web.test_page import by_id, console_errors, css, fill, shot, wait_for
from verifier.client import ProblemConflict, TracemarkClient
from verifier.schemas import OrderOut

pytestmark = pytest.mark.slow

TRACEMARK = str(Path(sys.executable).parent / "tracemark")
PRODUCT = "30-day-card"
STUDIO = "0x" + "5b" * 20
ROYALTY_BPS = 800
REBATE_LEVELS = [300, 200, 100]
PRICE = 10_000
CURRENCY = "CNY"
CODES = 8
#: The shortest confirmation window the API takes: the auto-confirmed order waits this long.
WINDOW = 60


def wait_until(what: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
    return polling.wait_until(what, check, timeout=timeout, every=0.5)


@dataclass
class Stack:
    """The running server and what the module set up on it."""

    url: str
    env: dict[str, str]
    home: Path
    anvil: DevChain
    log: Path
    codes: list[str]
    fingerprints: list[bytes]
    creator: CreatorKeys
    cardhub: TracemarkClient
    keyshop: TracemarkClient
    session: TracemarkClient
    #: The rebate payees of levels 1, 2, 3 above the seller (nearest first).
    uplines: list[str]
    next_code: int = 0

    def tracemark(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [TRACEMARK, *args], env=self.env, capture_output=True, text=True, timeout=300
        )
        if check:
            assert done.returncode == 0, f"tracemark {args[0]}: {done.stderr}"
        return done

    def good_with_seller(self) -> tuple[str, bytes]:
        """The next code, sold first-hand by its creator to cardhub's seller (no royalty)."""
        code, fingerprint = self.codes[self.next_code], self.fingerprints[self.next_code]
        self.next_code += 1
        self.cardhub.transfer(
            good_type="code",
            fingerprint=fingerprint,
            seller={"creator": True},
            buyer={"reference": "seller"},
            price=1,
            currency=CURRENCY,
        )
        return code, fingerprint

    def open_order(self, fingerprint: bytes, *, window: int = 7 * 86_400) -> OrderOut:
        return self.cardhub.open_order(
            good_type="code",
            fingerprint=fingerprint,
            seller={"reference": "seller"},
            buyer_reference="buyer-" + secrets.token_hex(4),
            price=PRICE,
            currency=CURRENCY,
            confirm_window=window,
        )


def _postgres_schema() -> tuple[str, Callable[[], None]]:
    if not _postgres_available():
        if REQUIRE_POSTGRES:
            pytest.fail(HOW_TO_ENABLE)
        pytest.skip(HOW_TO_ENABLE)
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in POSTGRES_URL else "?"

    def drop() -> None:
        for _ in range(5):
            try:
                with admin.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
                break
            except Exception:  # a lingering lock of the stopped server: only cleanup
                time.sleep(0.5)
        admin.dispose()

    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}", drop


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp(f"orders-{request.param}")
    drop: Callable[[], None] = lambda: None  # noqa: E731
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with DevChain(block_time=1) as anvil:
        operator = Account.from_key(ANVIL_ACCOUNT_0_KEY)
        address = Chain.connect(anvil.rpc_url, DEV_DOMAIN.verifying_contract).deploy(operator)
        assert address == DEV_DOMAIN.verifying_contract
        env = {
            **os.environ,
            "TRACEMARK_DATA_DIR": str(home / "server"),
            "TRACEMARK_KEYS_DIR": str(home / "creator-keys"),
            "TRACEMARK_API_PORT": str(port),
            "TRACEMARK_CHAIN_RPC_URL": anvil.rpc_url,
            "TRACEMARK_ANCHOR_KEY": ANVIL_ACCOUNT_0_KEY,
            "TRACEMARK_SEQUENCER_INTERVAL": "0.2",
            "TRACEMARK_ANCHOR_MAX_AGE": "0",
            "TRACEMARK_ANCHOR_CONFIRMATIONS": "2",
            "TRACEMARK_TRUST_DIR": str(home / "trust"),
        }
        if request.param == "postgres":
            env["TRACEMARK_DATABASE_URL"], drop = _postgres_schema()
        log = home / "serve.log"
        server_log = log.open("w")
        server = subprocess.Popen([TRACEMARK, "serve"], env=env, stderr=server_log)
        clients: list[TracemarkClient] = []
        try:
            polling.wait_until("the API", lambda: _answers(f"{url}/livez"), timeout=90.0)
            yield _set_up(url, env, home, anvil, log, clients)
        finally:
            for client in clients:
                client.close()
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            finally:
                if server.poll() is None:
                    server.kill()
                server_log.close()
                drop()
        assert server.returncode == 0, log.read_text()[-3000:]


def _set_up(
    url: str,
    env: dict[str, str],
    home: Path,
    anvil: DevChain,
    log: Path,
    clients: list[TracemarkClient],
) -> Stack:
    # The creator, over HTTP: its codes never leave its machine, only fingerprints.
    creator_env = {k: v for k, v in env.items() if k != "TRACEMARK_DATABASE_URL"}
    creator_env["TRACEMARK_DATA_DIR"] = str(home / "creator-side")
    creator_env["TRACEMARK_API_URL"] = url

    def creator(*args: str) -> str:
        done = subprocess.run(
            [TRACEMARK, *args], env=creator_env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"tracemark {args}: {done.stderr}"
        return done.stdout

    creator("keys", "new")
    creator("keys", "enroll")
    codes = [f"CARD-{i:04d}-{os.urandom(3).hex().upper()}" for i in range(CODES)]
    (home / "codes.txt").write_text("\n".join(codes) + "\n")
    royalty = {"recipients": [{"address": STUDIO, "bps": ROYALTY_BPS, "label": "studio"}]}
    (home / "policy.json").write_text(json.dumps(royalty))
    summary = json.loads(
        creator(
            "register-codes",
            str(home / "codes.txt"),
            "--product",
            PRODUCT,
            "--use",
            "single",
            "--new-product",
            "--royalty",
            str(home / "policy.json"),
            "--json",
        )
    )
    assert summary["registered"] == CODES
    keys = CreatorKeys.load(home / "creator-keys")
    fingerprinter = CodeFingerprinter(keys.require_code_key())

    def api_key(platform: str, *scopes: str) -> str:
        flags = [x for s in scopes for x in ("--scope", s)]
        made = subprocess.run(
            [TRACEMARK, "api-keys", "create", "--platform", platform, *flags, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert made.returncode == 0, made.stderr
        return str(json.loads(made.stdout)["key"])

    cardhub = TracemarkClient(url, api_key=api_key("cardhub", "verify", "transfer"))
    keyshop = TracemarkClient(url, api_key=api_key("keyshop", "verify", "transfer"))
    session = TracemarkClient(url)
    clients += [cardhub, keyshop, session]
    session.sign_in(keys.account)
    # The creator's rebate policy for the product: three levels above the final seller.
    assert session.set_my_rebate_policy(PRODUCT, REBATE_LEVELS).setter == "creator"
    # cardhub's tree: top <- region <- city <- seller.
    placed = cardhub.place_agents(
        [("top", None), ("region", "top"), ("city", "region"), ("seller", "city")]
    )
    top, region, city, _seller = (a.payee for a in placed.agents)
    assert cardhub.agent("seller").uplines == [city, region, top]
    assert cardhub.rebate_policies(keys.address, PRODUCT).applies == "creator"
    return Stack(
        url=url,
        env=env,
        home=home,
        anvil=anvil,
        log=log,
        codes=codes,
        fingerprints=[fingerprinter.fingerprint(c) for c in codes],
        creator=keys,
        cardhub=cardhub,
        keyshop=keyshop,
        session=session,
        uplines=[city, region, top],
    )


def _expected_lines() -> list[tuple[str, str]]:
    """An order's lines at PRICE: the studio's royalty, then the three levels' rebates."""
    return [("royalty", str(PRICE * ROYALTY_BPS // 10_000))] + [
        ("rebate", str(PRICE * bps // 10_000)) for bps in REBATE_LEVELS
    ]


def _owed(stack: Stack, order_id: int) -> list[Any]:
    return [line for line in stack.cardhub.owed_lines(limit=200).items if line.order_id == order_id]


def _check_on_page(driver: Any, code: str) -> tuple[str, str]:
    fill(by_id(driver, "receipt-code"), code)
    css(driver, "#form-receipt-code button[type=submit]")[0].click()

    def answered(d: Any) -> Any:
        found = css(d, "#receipt-result .verdict, #receipt-result .problem")
        return found[0] if found else None

    card = wait_for(driver, answered, "the receipt check's answer")
    return str(card.get_attribute("data-match")), str(card.text)


def test_an_order_reserved_delivered_auto_confirmed_released_and_paid_out(
    stack: Stack,
    browser: Any,  # noqa: F811
) -> None:
    cardhub, keyshop = stack.cardhub, stack.keyshop
    code, fingerprint = stack.good_with_seller()

    # -- the order reserves the good: another platform's sale is refused, verify says so ------
    order = stack.open_order(fingerprint, window=WINDOW)
    assert order.state == "reserved" and order.open
    with pytest.raises(ProblemConflict) as refused:
        keyshop.transfer(
            good_type="code",
            fingerprint=fingerprint,
            seller={"creator": True},
            buyer={"reference": "someone"},
            price=PRICE,
            currency=CURRENCY,
        )
    assert refused.value.status == 409 and refused.value.code == "reserved"
    holder = cardhub.verify("code", fingerprint=fingerprint).holder
    assert holder is not None and holder.reserved is True

    # -- delivery: the buyer's receipt, checked on the page in Chromium ------------------------
    delivered = cardhub.deliver_order(order.order_id, code=code)
    assert delivered.order.state == "delivered" and delivered.receipt is not None
    receipt = delivered.receipt
    assert cardhub.delivery_receipt(order.order_id).receipt_id == receipt.receipt_id
    browser.get(f"{stack.url}/r/{receipt.receipt_id}")
    assert "Delivery receipt" in browser.title
    assert "0x" + fingerprint.hex() in by_id(browser, "receipt-facts").text
    verdict = by_id(browser, "receipt-verdict")
    # Handed down the distribution chain (the seller bought it first-hand) but never sold to
    # a buyer nor consumed: "never sold before" as the receipt defines it, its transfer counted.
    assert verdict.get_attribute("data-never-sold") == "true"
    assert receipt.document["receipt"]["facts"]["transfers_before"] == 1
    shot(browser, "60-e2e-receipt")
    found, words = _check_on_page(browser, code)
    assert found == "true" and "Match" in words, words
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    found, words = _check_on_page(browser, wrong)
    shot(browser, "61-e2e-receipt-no-match")
    assert found == "false" and "No match" in words, words
    assert console_errors(browser) == []

    # -- a second order: disputed, then released -----------------------------------------------
    _, second_fp = stack.good_with_seller()
    second = stack.open_order(second_fp)
    cardhub.deliver_order(second.order_id, fingerprint=second_fp)
    assert _owed(stack, second.order_id) == []  # held, not owed
    assert cardhub.dispute_order(second.order_id).state == "disputed"
    released = cardhub.resolve_order(second.order_id, "release")
    assert released.state == "released"
    released_lines = _owed(stack, second.order_id)
    assert [(x.kind, x.amount) for x in released_lines] == _expected_lines()
    assert [x.payee for x in released_lines[1:]] == stack.uplines
    assert released_lines[0].recipient == _checksum(STUDIO)

    # -- the first order's window passes: the sweep settles it, nobody reading it -------------
    # (owed_lines reads the ledger only; GET /v1/orders/{id} would settle it lazily.)
    swept = wait_until(
        "the sweep to auto-confirm the first order",
        lambda: _owed(stack, order.order_id),
        timeout=WINDOW + 90.0,
    )
    assert [(x.kind, x.amount) for x in swept] == _expected_lines()
    assert "order(s) past their time" in stack.log.read_text()
    settled = cardhub.order(order.order_id)
    assert settled.state == "auto_confirmed" and not settled.open
    assert (settled.changes[-1].event, settled.changes[-1].actor) == ("auto_confirm", "registry")
    assert cardhub.verify("code", fingerprint=fingerprint).verdict == "consumed"

    # -- payouts clear every due line: owed -> paid ---------------------------------------------
    lines = swept + released_lines
    by_party: dict[tuple[str, str], list[Any]] = {}
    for line in lines:
        by_party.setdefault((line.kind, line.recipient or line.payee or ""), []).append(line)
    paid_at = int(time.time()) - 5
    for (kind, party), its in sorted(by_party.items()):
        total = sum(int(x.amount) for x in its)
        payout = cardhub.record_payout(
            kind=kind,  # type: ignore[arg-type]
            recipient=party if kind == "royalty" else None,
            payee=party if kind == "rebate" else None,
            amount=total,
            currency=CURRENCY,
            reference=f"bank-{kind}-{party[-6:]}",
            paid_at=paid_at,
            lines=[x.line_id for x in its],
        )
        assert payout.amount == str(total) and sorted(payout.lines) == sorted(
            x.line_id for x in its
        )
    assert _owed(stack, order.order_id) == [] and _owed(stack, second.order_id) == []
    everything = 2 * sum(int(amount) for _, amount in _expected_lines())
    (platform_total,) = cardhub.platform_balances(period="all").totals
    assert (platform_total.owed, platform_total.paid) == ("0", str(everything))
    (creator_total,) = stack.session.creator_balances(period="all").totals
    assert (creator_total.platform, creator_total.owed, creator_total.paid) == (
        "cardhub",
        "0",
        str(2 * PRICE * ROYALTY_BPS // 10_000),
    )


def test_a_fake_delivery_is_refused_and_changes_nothing(stack: Stack) -> None:
    cardhub, keyshop = stack.cardhub, stack.keyshop
    _, fingerprint = stack.good_with_seller()
    # Another code of the creator, already sold (and redeemed) on keyshop.
    sold_code, sold_fp = stack.codes[stack.next_code], stack.fingerprints[stack.next_code]
    stack.next_code += 1
    keyshop.transfer(
        good_type="code",
        fingerprint=sold_fp,
        seller={"creator": True},
        buyer={"reference": "player-9"},
        price=PRICE,
        currency=CURRENCY,
        final=True,
    )
    order = stack.open_order(fingerprint)
    with pytest.raises(ProblemConflict) as refused:
        cardhub.deliver_order(order.order_id, code=sold_code)
    assert refused.value.status == 409 and refused.value.code == "not-the-reserved-good"
    assert sold_code not in str(refused.value)
    after = cardhub.order(order.order_id)
    assert after.state == "reserved" and after.changes == order.changes
    assert _owed(stack, order.order_id) == []
    assert cardhub.cancel_order(order.order_id).state == "cancelled"


def test_a_code_redeemed_elsewhere_after_a_refund_is_in_evidence_that_verifies_offline(
    stack: Stack,
) -> None:
    cardhub, keyshop = stack.cardhub, stack.keyshop
    code, fingerprint = stack.good_with_seller()
    order = stack.open_order(fingerprint)
    cardhub.deliver_order(order.order_id, code=code)

    def agents() -> dict[str, tuple[int, int]]:
        totals = cardhub.rebate_statement(period="all").totals
        return {t.payee: (int(t.held), int(t.reversed)) for t in totals}

    def studio_held() -> int:
        held = stack.session.royalty_statement(period="all").held
        return sum(int(h.amount) for h in held if h.recipient == _checksum(STUDIO))

    held_agents, held_royalty = agents(), studio_held()
    assert held_royalty >= PRICE * ROYALTY_BPS // 10_000
    assert cardhub.dispute_order(order.order_id).state == "disputed"
    assert cardhub.resolve_order(order.order_id, "refund").state == "refunded"
    # Every line reversed: the royalty and each level's rebate leave the held sums.
    assert studio_held() == held_royalty - PRICE * ROYALTY_BPS // 10_000
    reversed_now = agents()
    for payee, bps in zip(stack.uplines, REBATE_LEVELS, strict=True):
        amount = PRICE * bps // 10_000
        assert reversed_now[payee] == (
            held_agents[payee][0] - amount,
            held_agents[payee][1] + amount,
        )
    assert _owed(stack, order.order_id) == []

    # The good is the seller's again; with cardhub's consent keyshop sells it, final: redeemed.
    consent = cardhub.authorize_handover(
        good_type="code", fingerprint=fingerprint, reference="seller", buyer_platform="keyshop"
    )
    keyshop.transfer(
        good_type="code",
        fingerprint=fingerprint,
        seller={"platform": "cardhub"},
        buyer={"reference": "player-3"},
        price=PRICE,
        currency=CURRENCY,
        final=True,
        authorization=consent.authorization,
    )
    evidence = wait_until(
        "evidence under an anchored head holding the sale",
        lambda: (
            (e := cardhub.order_evidence(order.order_id)).bundle.anchor is not None
            and e.bundle.pending_entries == 0
            and not e.summary["clean"]
            and e
        ),
    )
    path = stack.home / f"evidence-{order.order_id}.json"
    path.write_text(evidence.to_json())
    # The verifier pins the registry's trust root, checked against its fingerprint.
    root = cardhub.trust_root()
    pinned = stack.tracemark(
        "trust", "add", stack.url, "--fingerprint", root.fingerprint(), "--json"
    )
    assert json.loads(pinned.stdout)["status"] == "added"

    def verified() -> subprocess.CompletedProcess[str] | None:
        done = stack.tracemark("verify", str(path), "--rpc", stack.anvil.rpc_url, check=False)
        return None if done.returncode == EXIT_NOT_FINAL else done

    checked = wait_until("the evidence's anchor to be final", verified)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith(f"OK: order {order.order_id}: code 0x"), checked.stdout
    assert "redeemed (a final sale consumed it) on platform keyshop" in checked.stdout
    assert "after delivery" in checked.stdout
    assert f"trust root {root.label()}" in checked.stdout
    answer = json.loads(
        stack.tracemark("verify", str(path), "--rpc", stack.anvil.rpc_url, "--json").stdout
    )
    assert answer["status"] == "verified" and answer["clean"] is False
    assert answer["state"] == "refunded"
