"""What a platform or auditor needs without the server.

It imports no sqlalchemy, sqlmodel, fastapi or web3 (a test proves it); the server's read
models, which do, are ``readmodels``.

- ``bundle``: the ``tracemark-bundle`` proof bundle, v1 to v4 (format, strict parsing);
- ``absence``: the ``tracemark-absence`` proof (v1, v2) that a good is not registered;
- ``exportformat``, ``exportlimits``, ``export``: the ``tracemark-export`` evidence export
  (v1, v2), its bounds, and checking one;
- ``offline`` (with ``headcheck``, ``bundlereport``): checking a bundle with nothing but the
  chain and a pinned trust root (``tracemark verify``);
- ``checkpointcheck``: a head's C2SP checkpoint under the trust root's log keys and witness
  policy: who cosigned it (issue 15);
- ``statecheck``: what the state map under a head proves: a bundle's history complete, or
  a good's absence (issue 14);
- ``tlogproof``, ``tlogproofcheck``: the ``c2sp.org/tlog-proof@v1`` offline proof of one
  entry (format, its ``extra``) and checking one like a bundle (issue 15);
- ``trust``, ``transparency``, ``truststore``: trust roots (with the log's checkpoint keys and
  witness policy), and the ones this machine pinned;
- ``monitor`` (with ``monitorstate``, ``tiledtree``, ``tlogclient``, ``witnesswatch``):
  following a log through its static API (C2SP tlog-tiles), its state on disk, the tree's
  right edge checked tile by tile, the fetching, and witnesses' views (issue 15);
- ``identity``, ``identityclaim``: creators' proven web domains, and their logged entries;
- ``webhooks``: checking a webhook's signature;
- ``schemas``: the HTTP API's wire models, shared by the server and the client;
- ``client`` (with ``transport``, ``platformcalls``, ``creatorcalls``, ``auditorcalls``,
  ``requestdocs``, ``signin``, ``signedanswers``, ``clienterrors``): the typed Python client
  for platforms, creators and auditors;
- ``problems``: the client's errors (problem+json answers, an unreachable registry), light
  enough for the CLI to map to exit codes without importing the client;
- ``errors``: why a check refuses evidence (the step, the reason);
- ``pow``: the proof of work a public code lookup pays;
- ``boundedjson``: JSON whose nesting depth is checked, without recursion, before parsing.
"""

__all__: list[str] = []
