"""What every route needs, built once per app and kept on ``app.state.context``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request

from anchoring.chain import Chain
from api.chainwatch import ChainWatch
from api.identity import IdentityCache
from api.jobs import JobRunner
from api.pow import ProofOfWork
from api.ratelimit import RateLimiter
from api.telemetry import TelemetryBuffer
from api.trustroot import TrustRootConfig
from readmodels.authenticity import CodeKeyCache, GoodLookup
from registry.fingerprints import CodeFingerprinter
from registry.replica import ReplicaReads
from registry.service import Registry

T = TypeVar("T")

#: Largest file a platform may upload to have it fingerprinted (bytes); bigger files are
#: hashed by the caller (``tracemark fingerprint``, or the page in the browser).
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
#: Largest bulk upload (NDJSON/CSV of fingerprints): 10^6 codes at ~70 bytes a line and more.
MAX_BULK_BYTES = 256 * 1024 * 1024
#: Largest JSON body of any other request.
MAX_JSON_BYTES = 64 * 1024


@dataclass
class ApiContext:
    registry: Registry
    chain: Chain | None
    limiter: RateLimiter
    lookup: GoodLookup
    telemetry: TelemetryBuffer
    chain_watch: ChainWatch
    jobs: JobRunner
    code_keys: CodeKeyCache = field(default_factory=CodeKeyCache)
    #: The host[:port] a Sign-In with Ethereum message must name.
    siwe_domain: str = "127.0.0.1:8000"
    #: What the served trust root says of the registry besides its keys (``api.trustroot``).
    trust_root: TrustRootConfig = field(default_factory=TrustRootConfig)
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_bulk_bytes: int = MAX_BULK_BYTES
    #: Creators' proven names for verify answers (``api.identity``); None: never shown.
    identities: IdentityCache | None = None
    #: Challenges and proofs for public code lookups (``api.pow``); None: none is issued, so
    #: every public code lookup is refused (fail closed).
    proof_of_work: ProofOfWork | None = None
    #: A streaming replica that reads may go to while fresh (``registry.replica``); None: all
    #: reads on the primary.
    replica: ReplicaReads | None = None

    def fingerprinters(self, creator: bytes) -> tuple[CodeFingerprinter, ...]:
        """One per live code key of the creator, newest first; empty when it has none (not
        cached: an unknown creator costs a read, as a creator with keys does once)."""
        found = self.code_keys.get(creator)
        if found is None:
            found = tuple(CodeFingerprinter(key) for key in self.registry.code_keys_of(creator))
            if found:
                self.code_keys.put(creator, found)
        return found

    def read(
        self, use: Callable[[Registry], T], *, confirm: Callable[[T], bool] | None = None
    ) -> T:
        """``use(registry)`` for a read that may be a little stale: on the replica while it is
        fresh, a negative answer asked of the primary again (``ReplicaReads.read``). Writes,
        and reads that must see one just made, use ``self.registry``."""
        if self.replica is None:
            return use(self.registry)
        return self.replica.read(use, confirm=confirm)

    def close(self) -> None:
        self.telemetry.close()
        self.chain_watch.close()
        self.lookup.close()
        if self.replica is not None:
            self.replica.close()


async def context(request: Request) -> ApiContext:
    """Dependency: the app's context (async: a sync dependency would cost a thread hop)."""
    ctx: ApiContext = request.app.state.context
    return ctx
