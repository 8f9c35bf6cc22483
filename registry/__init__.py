"""tracemark's domain core: fingerprints, leaves, the RFC 9162 log, signatures, the registry.

Knows nothing of HTTP or chains. The pure modules (fingerprints, leaf, merkle, tiles,
royalty, eip712) import neither web3, sqlmodel nor fastapi; ``Registry`` in ``service`` is
the facade the front doors call.
"""

__all__: list[str] = []
