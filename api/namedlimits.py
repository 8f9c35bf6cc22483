"""The named rate limits: each bucket's name, what it is keyed by, its default, and why.

Kept apart from the limiters that count them (``api.ratelimit``'s one-process buckets,
``api.sharedlimits``' windows in Redis, ``api.sharedfallback``'s local share): what the limits
are is one policy every limiter, the settings and the tests read; how they are counted is not.
``api.ratelimit`` re-exports the names, so a caller reads them from there.

Named limits (``RateLimits``; each a token bucket of ``rate`` tokens a second up to ``burst``):

=================  =========================================  ==============================
bucket             keyed by                                   default
=================  =========================================  ==============================
``api_key``        a platform API key (``key:<id>``)          100/s, burst 200
``auditor``        an API key with the ``audit`` scope        1000/s, burst 2000
``creator``        a signed-in creator (SIWE)                 20/s, burst 40
``anonymous``      the client IP of an unauthenticated call   5/s, burst 10
``signed_write``   the client IP of a creator's signed write  20/s, burst 40
                   sent without a session token
``code_lookup``    the client IP of a public code lookup      10/min, burst 10
``code_lookup_all`` every public code lookup together (one    600/min, burst 600
                   key, ``all``; ``TRACEMARK_ANON_CODE_LOOKUPS_PER_MINUTE``)
``fingerprint``    a code's fingerprint, across every caller  60/min, burst 60
``probe``          lookups of codes that do not exist, per    20/min, burst 20
                   key or IP (see ``record_probe_failure``)
``health``         the client IP of a credential-less         20/s, burst 40
                   ``/livez`` or ``/readyz`` (a load
                   balancer's health checks), per replica
=================  =========================================  ==============================

- Auditors get a higher limit than platforms: they read the whole log (every entry, every
  proof) and must keep up with its growth, which a platform-sized budget would not allow.
- A creator's writes (registrations, revocations, key enrolment, bulk uploads) carry their
  own EIP-712 signature and need no session. Sent without one they are charged to
  ``signed_write`` per IP, not to ``anonymous``: the CLI makes a few requests per command
  and a bulk upload cannot be resent after a 429, while ``anonymous`` is sized for the
  public page. Forged signatures cost a recovery each (~0.1 ms), which 20/s bounds.
- A platform or IP that exhausts its ``probe`` budget is refused (429) until it refills and
  is *flagged* in memory (``RateLimiter.flags()``) with counts, for the API to report and log; the
  signals work persists such flags later.
- A *public* code lookup is an anonymous one, or a creator session's lookup of a code that is
  not its own: it is charged to ``code_lookup`` by client address and to ``code_lookup_all``,
  and must carry a proof of work (``api.pow``). Rotating addresses escapes the first, not the
  other two; a fresh wallet escapes none (sessions from one address share its bucket).
- ``health``: a load balancer checks every replica from its own address with no
  credentials. Charged to ``anonymous`` (shared by the replicas), N replicas checked every
  ``I`` seconds cost ``N / I`` of that address's 5/s, and past it the replicas answered 429
  and were taken out of rotation, all at once. So health probes have a budget of their own,
  counted in each replica only (``api.sharedfallback.LOCAL_ONLY``): each replica is checked on
  its own, so its own count is the right one, and a check costs no Redis round trip. Still
  bounded (a flood of ``/readyz``, each a database query and a chain call, gets 429s).
- ``fingerprint`` is shared by everyone: a card polled far more than any honest resale
  needs is the signature of a bot draining it. NOTE: the flip side is that a hostile caller
  can exhaust one card's budget for a minute; the budget is per card, so that only delays
  checks of that card.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

API_KEY = "api_key"
AUDITOR = "auditor"
CREATOR = "creator"
SIGNED_WRITE = "signed_write"
ANONYMOUS = "anonymous"
CODE_LOOKUP = "code_lookup"
CODE_LOOKUP_ALL = "code_lookup_all"
#: The one key of ``code_lookup_all``.
EVERYONE = "all"
FINGERPRINT = "fingerprint"
PROBE = "probe"
HEALTH = "health"


@dataclass(frozen=True)
class Limit:
    """A token bucket: ``rate`` tokens a second, holding at most ``burst``."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not self.rate > 0 or self.burst < 1:
            raise ValueError("a limit needs a positive rate and a burst of at least 1")

    @classmethod
    def per_second(cls, count: float, burst: int | None = None) -> Limit:
        return cls(rate=float(count), burst=burst if burst is not None else max(1, int(count)))

    @classmethod
    def per_minute(cls, count: float, burst: int | None = None) -> Limit:
        return cls(rate=count / 60.0, burst=burst if burst is not None else max(1, int(count)))


#: A platform key: far above an honest integration's steady rate, with room for bursts.
DEFAULT_API_KEY: Final = Limit.per_second(100, burst=200)
#: An auditor's key: ten times a platform's, to read the log as fast as it grows.
DEFAULT_AUDITOR: Final = Limit.per_second(1000, burst=2000)
#: A signed-in creator reading their goods and statements.
DEFAULT_CREATOR: Final = Limit.per_second(20, burst=40)
#: One IP without credentials (public reads; refused credentials are charged here too).
DEFAULT_ANONYMOUS: Final = Limit.per_second(5, burst=10)
#: One IP sending signed creator writes without a session token.
DEFAULT_SIGNED_WRITE: Final = Limit.per_second(20, burst=40)
#: One IP looking codes up without a key: a code is a short secret (THREATS 11, 38).
DEFAULT_CODE_LOOKUP: Final = Limit.per_minute(10)
#: Every public code lookup together: what address rotation cannot multiply.
DEFAULT_CODE_LOOKUP_ALL: Final = Limit.per_minute(600)
#: One code's fingerprint, whoever asks: a card polled harder is being drained.
DEFAULT_FINGERPRINT: Final = Limit.per_minute(60)
#: Lookups of codes that do not exist, per key or IP: a guesser's trace.
DEFAULT_PROBE: Final = Limit.per_minute(20)
#: One address's health checks of one replica: a balancer checking every 100 ms uses half.
DEFAULT_HEALTH: Final = Limit.per_second(20, burst=40)


@dataclass(frozen=True)
class RateLimits:
    """Every named limit, with the defaults documented in the module docstring."""

    api_key: Limit = DEFAULT_API_KEY
    auditor: Limit = DEFAULT_AUDITOR
    creator: Limit = DEFAULT_CREATOR
    anonymous: Limit = DEFAULT_ANONYMOUS
    signed_write: Limit = DEFAULT_SIGNED_WRITE
    code_lookup: Limit = DEFAULT_CODE_LOOKUP
    code_lookup_all: Limit = DEFAULT_CODE_LOOKUP_ALL
    fingerprint: Limit = DEFAULT_FINGERPRINT
    probe: Limit = DEFAULT_PROBE
    health: Limit = DEFAULT_HEALTH
    #: Most buckets held at once, all names together (~200 bytes each).
    max_buckets: int = 100_000
    #: Most probing flags held at once.
    max_flags: int = 10_000

    def __post_init__(self) -> None:
        if self.max_buckets < 1 or self.max_flags < 1:
            raise ValueError("max_buckets and max_flags must be at least 1")

    def named(self) -> dict[str, Limit]:
        """The bucket limits by name (every field that is a ``Limit``)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if isinstance(value, Limit)}


__all__ = [
    "ANONYMOUS",
    "API_KEY",
    "AUDITOR",
    "CODE_LOOKUP",
    "CODE_LOOKUP_ALL",
    "CREATOR",
    "DEFAULT_ANONYMOUS",
    "DEFAULT_API_KEY",
    "DEFAULT_AUDITOR",
    "DEFAULT_CODE_LOOKUP",
    "DEFAULT_CODE_LOOKUP_ALL",
    "DEFAULT_CREATOR",
    "DEFAULT_FINGERPRINT",
    "DEFAULT_HEALTH",
    "DEFAULT_PROBE",
    "DEFAULT_SIGNED_WRITE",
    "EVERYONE",
    "FINGERPRINT",
    "HEALTH",
    "PROBE",
    "SIGNED_WRITE",
    "Limit",
    "RateLimits",
]
