"""The API's cache of unsealed code keys: bounded, and entries expire (a retirement made
through another process reaches this one within the TTL)."""

from __future__ import annotations

from readmodels.authenticity import CodeKeyCache
from registry.fingerprints import CodeFingerprinter


def test_entries_expire_and_are_bounded() -> None:
    now = [100.0]
    cache = CodeKeyCache(capacity=2, ttl=30.0, clock=lambda: now[0])
    keys = (CodeFingerprinter(bytes(32)), CodeFingerprinter(bytes([1]) * 32))
    cache.put(b"a", keys)
    assert cache.get(b"a") == keys
    now[0] += 29.9
    assert cache.get(b"a") == keys
    now[0] += 0.1
    assert cache.get(b"a") is None
    for name in (b"a", b"b", b"c"):
        cache.put(name, keys[:1])
    assert cache.get(b"a") is None and cache.get(b"c") == keys[:1]
    cache.forget(b"c")
    assert cache.get(b"c") is None
