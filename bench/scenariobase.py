"""The scenario market's state and agenda: its creators, codes and files, and the verifications
and transfers its actors schedule."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from typing import Any

from eth_account import Account

from api.ratelimit import RateLimiter
from bench.scenarioworld import (
    ALPHABET,
    ANONYMOUS,
    CODE,
    DAY,
    FILE,
    START,
    Injection,
    MarketParams,
    SimClock,
)
from registry.creator import CreatorKeys
from registry.fingerprints import CodeFingerprinter, GoodType
from registry.service import Registry
from registry.telemetry import VerificationRecord as Telemetry
from registry.transfers import Party, TransferRequest


class MarketBase:
    """A market's state, its actors' keys and goods, and the actions it schedules in time order
    (``bench.scenariomarket.Market`` plans and plays them)."""

    def __init__(self, params: MarketParams, seed: int, registry: Registry, clock: SimClock):
        self.p = params
        self.rng = random.Random(seed)
        self.registry = registry
        self.clock = clock
        self.limiter = RateLimiter(clock=lambda: float(clock.now))
        self.horizon = START + params.days * DAY
        self.actions: list[tuple[int, int, str, tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._transfer_keys = itertools.count()
        #: The hand-over authorization each honest request used, by its idempotency key.
        self._authorizations: dict[str, str] = {}
        self._users = itertools.count()
        self.injections: list[Injection] = []
        self.live: set[bytes] = set()
        self.revoked: set[bytes] = set()
        self.consumed: set[bytes] = set()
        self.telemetry: list[Telemetry] = []
        self.outcomes: Counter[str] = Counter()
        self.batch_records: dict[int, int] = {}
        rng = self.rng
        self.creators = [self._keys() for _ in range(params.code_creators)]
        self.file_creators = [self._keys() for _ in range(2)]
        self.pirate = self._keys()
        # Codes: per batch, (code, fingerprint); batches belong to code creators in turn.
        self.batches: list[list[tuple[str, bytes]]] = []
        self.batch_creator: list[int] = []
        sizes = self._split(params.codes, params.batches)
        for index, size in enumerate(sizes):
            creator = index % params.code_creators
            self.batches.append(self._codes(creator, size))
            self.batch_creator.append(creator)
        self.launch_batch = len(self.batches)
        self.batches.append(self._codes(0, int(params.launch_sales * 1.2) + 10))
        self.batch_creator.append(0)
        self.code_of = {fp: code for batch in self.batches for code, fp in batch}
        self.creator_index = {
            fp: self.batch_creator[i] for i, batch in enumerate(self.batches) for _, fp in batch
        }
        self.products: set[tuple[str, str]] = set()
        self.files = [(i % 2, rng.randbytes(32)) for i in range(params.files)]
        #: Files no trade has used yet: each trade chain (or ring) has its files to itself.
        self.free_files = [fp for _, fp in self.files]
        rng.shuffle(self.free_files)
        # The leaked batch is kept out of every honest use but the background lookups.
        self.leaked_batch = 1 % params.batches
        self.idle: list[bytes] = []
        self.bot_hits: set[bytes] = set()

    # -- set-up helpers -------------------------------------------------------------------

    def _keys(self) -> CreatorKeys:
        return CreatorKeys(Account.from_key(self.rng.randbytes(32)), self.rng.randbytes(32))

    def _split(self, total: int, parts: int) -> list[int]:
        weights = [self.rng.uniform(0.7, 1.3) for _ in range(parts)]
        sizes = [max(1, int(total * w / sum(weights))) for w in weights]
        sizes[-1] += total - sum(sizes)
        return sizes

    def _codes(self, creator: int, size: int) -> list[tuple[str, bytes]]:
        fingerprinter = CodeFingerprinter(self.creators[creator].require_code_key())
        out = []
        for _ in range(size):
            s = "".join(self.rng.choices(ALPHABET, k=16))
            code = f"{s[:4]}-{s[4:8]}-{s[8:12]}-{s[12:]}"
            out.append((code, fingerprinter.fingerprint(code)))
        return out

    def _u(self, lo: float, hi: float) -> float:
        return self.rng.uniform(lo, hi)

    def _user(self, platform: str) -> Party:
        return Party(platform, f"user-{next(self._users)}")

    def _price(self) -> int:
        return self.rng.choice((500, 1_000, 2_000, 5_000))

    # -- scheduling -----------------------------------------------------------------------

    def _at(self, t: float, kind: str, *data: Any) -> None:
        self.actions.append((int(t), next(self._seq), kind, data))

    def verify(
        self, t: float, platform: str, fp: bytes, *, via: str = "code", key: str | None = None
    ) -> None:
        """A platform (or an anonymous caller, ``key`` its IP) checks a good at ``t``."""
        good_type = CODE if fp in self.code_of else FILE
        key = key or f"key:{platform}"
        if via == "code" and self.rng.random() < self.p.typo_rate:
            self._at(t - self._u(5, 60), "verify", platform, key, CODE, self.rng.randbytes(32), via)
        self._at(t, "verify", platform, key, good_type, fp, via)

    def transfer(
        self,
        t: float,
        reporter: str,
        fp: bytes,
        seller: Party,
        buyer: Party,
        price: float | None,
        *,
        final: bool = False,
        tag: str = "honest",
        consent: bool | None = None,
    ) -> None:
        """``reporter`` reports a sale; when the seller is held on another platform, that
        platform consents (a one-time hand-over authorization, issue 12) if ``consent`` (by
        default: honest trades do, fraud does not)."""
        good_type = GoodType.CODE if fp in self.code_of else GoodType.FILE
        consent = tag == "honest" if consent is None else consent
        request = TransferRequest(
            platform=reporter,
            good_type=good_type,
            fingerprint=fp,
            seller=seller,
            buyer=buyer,
            price=None if price is None else int(price),
            currency=None if price is None else "EUR",
            final=final,
            # An honest platform retries with the same Idempotency-Key (and the same
            # authorization): the registry answers the recorded receipt again.
            idempotency_key=f"sim-{next(self._transfer_keys)}" if tag == "honest" else None,
        )
        self._at(t, "transfer", request, tag, consent)
        if tag == "honest" and self.rng.random() < self.p.retries:
            self._at(t + self._u(5, 300), "transfer", request, "retry", consent)

    def _creator_of(self, fp: bytes) -> CreatorKeys:
        return self.creators[self.creator_index[fp]]

    def _anonymous(self, t: float, fp: bytes) -> None:
        ip = f"ip:10.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(256)}"
        self.verify(t, ANONYMOUS, fp, key=ip)
