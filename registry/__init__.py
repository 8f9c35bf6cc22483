"""tracemark's domain core: fingerprints, leaves, the RFC 9162 log, signatures, the registry.

Knows nothing of HTTP or chains. The pure modules (the formats it signs and the math under
them: ``tests/test_purity.py`` lists them) import neither web3, sqlmodel, sqlalchemy nor
fastapi, so the verifier kit can use them; ``Registry`` in ``service`` is the facade the
front doors call.
"""

__all__: list[str] = []
