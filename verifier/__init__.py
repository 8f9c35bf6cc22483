"""What a platform or auditor needs without the server.

- ``bundle``: the ``tracemark-bundle/v1`` proof bundle (format, strict parsing, building it);
- ``offline``: checking a bundle with nothing but the chain (``tracemark verify``);
- ``authenticity``: a good's facts and the verdict on them (the verify endpoint's core);
- ``schemas``: the HTTP API's wire models, shared by the server and the client;
- ``client``: the typed Python client for platforms, creators and auditors;
- ``problems``: the client's errors (problem+json answers, an unreachable registry), light
  enough for the CLI to map to exit codes without importing the client;
- ``market``, ``signals``: the records fraud signals read, and the explainable rules over them;
- ``anomaly``: the robust-z anomaly score and the risk index the verify endpoint reads;
- ``boundedjson``: JSON whose nesting depth is checked, without recursion, before parsing.
"""

__all__: list[str] = []
