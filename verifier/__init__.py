"""What a platform or auditor needs without the server.

It imports no sqlalchemy, sqlmodel, fastapi or web3 (a test proves it); the server's read
models, which do, are ``readmodels``.

- ``bundle``: the ``tracemark-bundle/v1`` proof bundle (format, strict parsing);
- ``exportformat``, ``export``: the ``tracemark-export/v1`` evidence export, and checking one;
- ``offline``: checking a bundle with nothing but the chain (``tracemark verify``);
- ``schemas``: the HTTP API's wire models, shared by the server and the client;
- ``client``: the typed Python client for platforms, creators and auditors;
- ``problems``: the client's errors (problem+json answers, an unreachable registry), light
  enough for the CLI to map to exit codes without importing the client;
- ``boundedjson``: JSON whose nesting depth is checked, without recursion, before parsing.
"""

__all__: list[str] = []
