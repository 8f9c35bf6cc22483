"""The demo's small market: its creators, platforms, goods and trades, made over HTTP.

What ``tracemark demo`` (``api/cli/demo.py``) fills a running registry with: the platforms'
API keys on the local database (as the operator's ``tracemark api-keys create`` does), and
everything else through the HTTP API like any creator or platform.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from api.cli.app import err, open_registry, state
from registry import errors
from registry.fingerprints import CodeFingerprinter, GoodType, Use
from verifier.problems import ApiProblem, RegistryUnreachable

# The HTTP client, the signing helpers and the database are imported when the demo runs, not
# on every start of the command (``tracemark verify`` imports this module too).
if TYPE_CHECKING:
    from registry.creator import CreatorKeys
    from registry.eip712 import Domain
    from registry.royalty import RoyaltyPolicy
    from verifier.client import TracemarkClient

#: Codes in the card publisher's batch (a real batch would be 10^5 to 10^6).
BATCH_SIZE = 120
#: Creators sign writes without credentials: the anonymous rate limit applies, so resend.
RETRIES = 6
T = TypeVar("T")


@dataclass(frozen=True)
class Creator:
    name: str
    keys: CreatorKeys
    folder: Path

    @property
    def address(self) -> str:
        return self.keys.address


def _say(text: str, quiet: bool) -> None:
    if not quiet:
        err.print(f"· {text}", markup=False)


def _retry_busy(action: Callable[[], T]) -> T:
    """The server writes too (sequencer, worker): wait out SQLite's writer lock."""
    for attempt in range(20):
        try:
            return action()
        except errors.StorageBusy:
            time.sleep(0.2 * (attempt + 1))
    return action()


def _creator(folder: Path, name: str) -> Creator:
    from registry.creator import CreatorKeys

    keys_dir = folder / name
    keys_dir.mkdir(parents=True, mode=0o700)
    return Creator(name, CreatorKeys.create(keys_dir), keys_dir)


def _policy(recipient: str, bps: int, label: str) -> RoyaltyPolicy:
    from registry.royalty import RoyaltyPolicy

    return RoyaltyPolicy.parse({"recipients": [{"address": recipient, "bps": bps, "label": label}]})


def _artwork(path: Path, hue: int, title: str) -> bytes:
    """A small, real SVG picture: something to drop on the page."""
    circles = "".join(
        f'<circle cx="{40 + 60 * i}" cy="{100 + 30 * ((i * hue) % 3)}" r="{20 + 7 * i}" '
        f'fill="hsl({(hue + 40 * i) % 360},70%,55%)" opacity="0.8"/>'
        for i in range(5)
    )
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="200" viewBox="0 0 320 200">'
        f'<rect width="320" height="200" fill="hsl({hue},40%,15%)"/>{circles}'
        f'<text x="16" y="30" fill="#fff" font-family="sans-serif" font-size="18">{title}</text>'
        f"<!-- {secrets.token_hex(16)} --></svg>\n"
    )
    path.write_text(svg)
    return svg.encode()


def _identity(url: str) -> dict[str, Any]:
    """``GET /v1/registry``, or exit 14 with what to do."""
    import httpx2

    try:
        answer = httpx2.get(url + "/v1/registry", timeout=5)
    except httpx2.HTTPError as exc:
        raise RegistryUnreachable(
            f"no registry answers at {url} ({type(exc).__name__}): start one with `make run` "
            "(or name it with --api URL)"
        ) from None
    if answer.status_code != 200:
        raise RegistryUnreachable(f"{url} answered HTTP {answer.status_code} to /v1/registry")
    document: dict[str, Any] = answer.json()
    return document


def _wait(condition: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def fill_market(url: str, anchor_wait: float, *, quiet: bool) -> dict[str, Any]:
    """Make the demo's market on the registry at ``url`` and wait for its anchor; what the
    guide names (codes, fingerprints, keys, files)."""
    from api.apikeys import create_api_key
    from registry.codesfile import codes_source, prepare_code_batch
    from registry.creator import (
        sign_batch_registration,
        sign_enrollment,
        sign_registration,
        sign_revocation,
    )
    from verifier.client import TracemarkClient
    from verifier.clienterrors import SignInRefused

    started = time.monotonic()
    identity = _identity(url)
    registry = open_registry()
    if identity["address"].lower() != registry.address.lower():
        raise errors.ConfigurationError(
            f"the registry at {url} is not the one in {state.settings.data_dir}: run the demo "
            "on the server's machine with its TRACEMARK_DATA_DIR (API keys are made locally)"
        )
    domain: Domain = registry.domain
    run_id = time.strftime("%Y%m%d-%H%M%S")
    folder = state.settings.data_dir / "demo" / run_id
    folder.mkdir(parents=True, mode=0o700)

    # 1. Platforms and their API keys (operator's mode, on the shared database).
    def key(platform: str, name: str, scopes: list[str]) -> str:
        made, _ = _retry_busy(
            lambda: create_api_key(
                registry.engine,
                platform,
                scopes,
                f"demo {run_id}",
                registry.clock(),
                platform_name=name,
            )
        )
        return made

    cardhub_key = key("cardhub", "CardHub", ["verify", "transfer"])
    keyshop_key = key("keyshop", "KeyShop", ["verify", "transfer"])
    audit_key = key("audit-desk", "Compliance desk", ["audit"])
    _say("platforms cardhub and keyshop, and an auditor's key", quiet)

    anon = TracemarkClient(url, max_retries=RETRIES)
    cardhub = TracemarkClient(url, api_key=cardhub_key, max_retries=RETRIES)
    keyshop = TracemarkClient(url, api_key=keyshop_key, max_retries=RETRIES)
    try:
        # 2. Creators: a card publisher (a bulk batch of single-use codes) and a studio (files).
        northwind = _creator(folder, "northwind-games")
        lumen = _creator(folder, "lumen-studio")
        pirate = _creator(folder, "copycat")
        now = int(time.time())
        anon.enroll_code_key(
            sign_enrollment(northwind.keys, domain, now=now), northwind.keys.require_code_key()
        )
        codes = [
            "NW-" + "-".join(secrets.token_hex(2).upper() for _ in range(3))
            for _ in range(BATCH_SIZE)
        ]
        codes_file = folder / "northwind-codes.csv"
        codes_file.write_text("code\n" + "\n".join(codes) + "\n")
        codes_file.chmod(0o600)
        batch = prepare_code_batch(
            codes_source("\n".join(codes)), northwind.keys.require_code_key()
        )
        try:
            request = sign_batch_registration(
                northwind.keys,
                domain,
                batch,
                good_type=GoodType.CODE,
                product="1000-points",
                use=Use.SINGLE,
                royalty_policy=_policy(northwind.address, 500, "northwind"),
                metadata={"title": "1000 points card", "lot": run_id},
                now=now,
                new_product=True,
            )
            job = anon.register_batch(request, batch.fingerprints())
        finally:
            batch.close()
        anon.wait_job(job.job_id, timeout=30, interval=0.5)
        fingerprinter = CodeFingerprinter(northwind.keys.require_code_key())
        code_fp = [fingerprinter.fingerprint(c) for c in codes]
        _say(f"Northwind Games registered {BATCH_SIZE} cards in one signed batch", quiet)

        files_dir = folder / "files"
        files_dir.mkdir()
        artworks: list[tuple[Path, bytes]] = []
        for index, (name, hue) in enumerate((("aurora", 200), ("ember", 15), ("tide", 170))):
            path = files_dir / f"{name}.svg"
            fingerprint = hashlib.sha256(_artwork(path, hue, name.title())).digest()
            artworks.append((path, fingerprint))
            anon.register(
                sign_registration(
                    lumen.keys,
                    domain,
                    good_type=GoodType.FILE,
                    fingerprint=fingerprint,
                    product="prints",
                    use=Use.TRANSFERABLE,
                    royalty_policy=_policy(lumen.address, 1_000, "lumen"),
                    metadata={"title": name.title()},
                    now=now,
                    new_product=index == 0,
                )
            )
        aurora = artworks[0][1]
        # A pirate claims Lumen's first file: logged as a CONFLICT, never applied.
        anon.register(
            sign_registration(
                pirate.keys,
                domain,
                good_type=GoodType.FILE,
                fingerprint=aurora,
                product="stolen-prints",
                use=Use.TRANSFERABLE,
                royalty_policy=_policy(pirate.address, 9_000, "copycat"),
                metadata={},
                now=now,
                new_product=True,
            )
        )
        _say("Lumen Studio registered 3 files; a copycat claimed one of them", quiet)

        # 3. The sequencer logs the queue about once a second: wait for it.
        last = artworks[-1][1]
        if not _wait(lambda: cardhub.verify("file", fingerprint=last).verdict != "unknown", 20):
            raise errors.StorageBusy("the registry did not log the demo's goods within 20 s")

        # 4. Trade: cardhub buys 20 cards wholesale for its agent, who sells 5 to end users
        #    (final: the cards are consumed); the resales owe Northwind 5%.
        agent = {"platform": "cardhub", "reference": "agent-7"}
        for fp in code_fp[:20]:
            cardhub.verify("code", fingerprint=fp)
            cardhub.transfer(
                good_type="code",
                fingerprint=fp,
                seller={"creator": True},
                buyer={"reference": "agent-7"},
                price=900,
                currency="EUR",
            )
        for n, fp in enumerate(code_fp[:5]):
            cardhub.transfer(
                good_type="code",
                fingerprint=fp,
                seller=agent,
                buyer={"reference": f"customer-{n + 1}"},
                price=1_000,
                currency="EUR",
                final=True,
            )
        # Buyers check their cards by code, as a shop's till would.
        for code in codes[5:10]:
            keyshop.verify("code", code=code, creator=northwind.address, product="1000-points")
        # A double sale: keyshop lists card 7, which agent-7 on cardhub holds.
        double_sale: dict[str, Any] = {"fingerprint": "0x" + code_fp[7].hex()}
        try:
            keyshop.transfer(
                good_type="code",
                fingerprint=code_fp[7],
                seller={"reference": "mallory"},
                buyer={"reference": "victim"},
                price=700,
                currency="EUR",
            )
            double_sale["refused"] = False
        except ApiProblem as exc:
            double_sale.update(refused=True, status=exc.status, detail=exc.detail)
        # Aurora changes hands three times; every resale owes Lumen 10%.
        # Alice (on cardhub) sells to bob on keyshop: cardhub consents once, keyshop reports.
        chain: list[tuple[TracemarkClient, dict[str, Any], dict[str, Any], int]] = [
            (cardhub, {"creator": True}, {"reference": "alice"}, 12_000),
            (keyshop, {"platform": "cardhub"}, {"reference": "bob"}, 15_000),
            (keyshop, {"reference": "bob"}, {"reference": "carol"}, 18_000),
        ]
        for platform, seller, buyer, price in chain:
            consent = None
            if seller.get("platform") == "cardhub":
                consent = cardhub.authorize_handover(
                    good_type="file",
                    fingerprint=aurora,
                    reference="alice",
                    buyer_platform="keyshop",
                ).authorization
            platform.transfer(
                good_type="file",
                fingerprint=aurora,
                seller=seller,
                buyer=buyer,
                price=price,
                currency="EUR",
                authorization=consent,
            )
        for _, fp in artworks:
            keyshop.verify("file", fingerprint=fp)
        _say("25 card sales, 3 resales of a print, a refused double sale", quiet)

        # 5. A leaked card, revoked by its creator.
        leaked = code_fp[-1]
        anon.revoke(
            sign_revocation(
                northwind.keys,
                domain,
                good_type=GoodType.CODE,
                fingerprint=leaked,
                reason="leaked on a forum",
                now=int(time.time()),
            )
        )
        _say("Northwind revoked a leaked card", quiet)

        # 6. Wait until everything so far is logged and anchored (final).
        def revoked_now() -> bool:
            return cardhub.verify("code", fingerprint=leaked).verdict == "revoked"

        _wait(revoked_now, 20)
        size = anon.tree_head().tree_size
        anchor: dict[str, Any] = {}

        def anchored() -> bool:
            bundle = anon.proof_bundle("code", code_fp[0])
            if bundle.anchor is None or bundle.anchor.tree_size < size:
                return False
            anchor.update(bundle.anchor.model_dump(mode="json"))
            return bundle.anchor.state == "final"

        _say(f"waiting for the log (size {size}) to be anchored on chain…", quiet)
        final = _wait(anchored, anchor_wait, interval=1.0)

        # 7. Session tokens for the creators' dashboards (Sign-In with Ethereum, 1 h).
        tokens: dict[str, str | None] = {}
        for creator in (lumen, northwind):
            signer = TracemarkClient(url, max_retries=RETRIES)
            try:
                try:
                    tokens[creator.name] = signer.sign_in(creator.keys.account)
                except SignInRefused:
                    domain_name = f"{state.settings.api_host}:{state.settings.api_port}"
                    tokens[creator.name] = signer.sign_in(creator.keys.account, domain=domain_name)
            except ApiProblem:
                tokens[creator.name] = None
            finally:
                signer.close()
    finally:
        for client in (anon, cardhub, keyshop):
            client.close()

    def hex0x(data: bytes) -> str:
        return "0x" + data.hex()

    return {
        "url": url,
        "folder": str(folder),
        "seconds": round(time.monotonic() - started, 1),
        "anchored": final,
        "anchor": anchor or None,
        "creators": {c.name: c.address for c in (northwind, lumen, pirate)},
        "genuine_code": {"code": codes[50], "creator": northwind.address, "product": "1000-points"},
        "genuine_fingerprint": hex0x(code_fp[50]),
        "consumed_fingerprint": hex0x(code_fp[0]),
        "revoked_fingerprint": hex0x(leaked),
        "double_sale": double_sale,
        "file": str(artworks[0][0]),
        "file_fingerprint": hex0x(aurora),
        "audit_key": audit_key,
        "platform_keys": {"cardhub": cardhub_key, "keyshop": keyshop_key},
        "creator_tokens": tokens,
    }


__all__ = ["fill_market"]
