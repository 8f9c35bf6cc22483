"""The cluster benchmark's goods and requests: codes registered and revoked alike in both
registries, the request mix, the check of every answer, the wait until both sides anchored."""

from __future__ import annotations

import json
import random
import secrets
import socket
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.clustersides import Side
from bench.common import sign_code_batch
from bench.verifycache import PLATFORMS

PRODUCT = "cluster-card"
#: The request mix: (what, how looked up) -> share. Unknown codes are few: a platform's key
#: has a probe budget of 20 unknown codes a minute (THREATS 38), and honest platforms mostly
#: ask about codes that exist; unknown fingerprints cost no probe budget.
MIX = {
    ("registered", "code"): 45,
    ("registered", "fingerprint"): 30,
    ("revoked", "code"): 5,
    ("revoked", "fingerprint"): 5,
    ("unknown", "code"): 1,
    ("unknown", "fingerprint"): 14,
}
EXPECTED = {"registered": "authentic", "revoked": "revoked", "unknown": "unknown"}


@dataclass
class Goods:
    creator: Any  # registry.creator.CreatorKeys
    codes: Path
    revoked_codes: Path
    #: What the requests ask about: kind -> [(code, 0x fingerprint)].
    pools: dict[str, list[tuple[str, str]]]
    #: A registered code no request asks about: polled until the registry says authentic.
    probe: tuple[str, str]


def make_goods(tmp: Path, goods: int, revoked: int, requests: int) -> Goods:
    from eth_account import Account

    from bench.ingest_bench import ALPHABET, write_codes
    from registry.creator import CreatorKeys
    from registry.fingerprints import CodeFingerprinter

    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    fingerprinter = CodeFingerprinter(creator.require_code_key())
    codes = tmp / "codes.txt"
    write_codes(codes, goods)
    every = codes.read_text().split()
    rng = random.Random(16)
    order = rng.sample(range(goods), goods)
    revoked_codes = [every[i] for i in order[:revoked]]
    (tmp / "revoked.txt").write_text("\n".join(revoked_codes) + "\n")
    share = {kind: sum(v for (k, _), v in MIX.items() if k == kind) / 100 for kind in EXPECTED}
    wanted = int(requests * share["registered"]) + 1
    if revoked + wanted > goods:
        raise SystemExit(f"--goods {goods} is too few for {requests} requests a round")
    registered = [every[i] for i in order[revoked : revoked + wanted]]
    unknown = [
        "-".join("".join(rng.choices(ALPHABET, k=4)) for _ in range(4))
        for _ in range(int(requests * share["unknown"]) + 1)
    ]
    pools = {
        kind: [(code, "0x" + fingerprinter.fingerprint(code).hex()) for code in chosen]
        for kind, chosen in (
            ("registered", registered[1:]),
            ("revoked", revoked_codes),
            ("unknown", unknown),
        )
    }
    probe = registered[0]
    return Goods(
        creator, codes, tmp / "revoked.txt", pools, (probe, fingerprinter.fingerprint(probe).hex())
    )


def populate(settings: Any, goods: Goods, keys: int) -> list[str]:
    """The goods registered and revoked in the registry of ``settings``; its platform keys."""
    from api.apikeys import create_api_key
    from registry.codesfile import prepare_code_batch
    from registry.creator import sign_batch_revocation, sign_enrollment
    from registry.fingerprints import GoodType
    from registry.service import Registry

    registry = Registry.open(settings)
    creator = goods.creator
    code_key = creator.require_code_key()
    registry.enroll_code_key(
        sign_enrollment(creator, registry.domain, now=registry.clock()), code_key
    )
    with goods.codes.open(newline="") as source:
        batch = prepare_code_batch(source, code_key)
    request = sign_code_batch(registry, creator, batch, product=PRODUCT, new_product=True)
    registry.register_batch(request, batch.fingerprints())
    batch.close()
    with goods.revoked_codes.open(newline="") as source:
        batch = prepare_code_batch(source, code_key)
    revocation = sign_batch_revocation(
        creator,
        registry.domain,
        batch,
        good_type=GoodType.CODE,
        reason="bench",
        now=registry.clock(),
    )
    registry.revoke_batch(revocation, batch.fingerprints())
    batch.close()
    made = [
        create_api_key(
            registry.engine,
            f"bench-platform-{i % PLATFORMS}",
            ["verify"],
            f"cluster bench {i}",
            registry.clock(),
        )[0]
        for i in range(keys)
    ]
    registry.engine.dispose()
    return made


def build_requests(goods: Goods, keys: list[str], port: int, count: int) -> list[bytes]:
    """``count`` requests in ``MIX``'s shares, shuffled the same way for both sides; each
    good asked about once."""
    kinds = [kind for kind, share in MIX.items() for _ in range(share)]
    rng = random.Random(5)
    taken: Counter[str] = Counter()
    out = []
    for i in range(count):
        what, how = kinds[rng.randrange(len(kinds))]
        pool = goods.pools[what]
        code, fingerprint = pool[taken[what] % len(pool)]
        taken[what] += 1
        if how == "code":
            body = {"good_type": "code", "code": code, "creator": goods.creator.address}
        else:
            body = {"good_type": "code", "fingerprint": fingerprint}
        data = json.dumps(body, separators=(",", ":")).encode()
        out.append(
            (
                f"POST /v1/verify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {keys[i % len(keys)]}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data
        )
    return out


def expected_verdicts(count: int) -> Counter[str]:
    kinds = [kind for kind, share in MIX.items() for _ in range(share)]
    rng = random.Random(5)
    return Counter(EXPECTED[kinds[rng.randrange(len(kinds))][0]] for _ in range(count))


class Verdicts:
    """The check of every answer: 200 and a verdict, counted."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def __call__(self, status: int, body: bytes) -> str | None:
        if status != 200:
            return f"HTTP {status}"
        at = body.find(b'"verdict":"')
        if at < 0:
            return "no verdict"
        end = body.find(b'"', at + 11)
        self.seen[body[at + 11 : end].decode()] += 1
        return None


def wait_until_anchored(side: Side, goods: Goods, seconds: float = 120.0) -> str:
    """Poll one registered good (asked about by no round) until its verdict is authentic:
    both sides answer from anchored goods. The verdict seen last."""
    body = json.dumps({"good_type": "code", "fingerprint": "0x" + goods.probe[1]}).encode()
    head = (
        f"POST /v1/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {side.keys[0]}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    deadline = time.monotonic() + seconds
    verdict = ""
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", side.port), timeout=10) as sock:
            sock.sendall(head + body)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        at = answer.find(b'"verdict":"')
        verdict = answer[at + 11 : answer.find(b'"', at + 11)].decode() if at >= 0 else "?"
        if verdict == "authentic":
            break
        time.sleep(1.0)
    return verdict
