"""The server's read models: what the registry's database says, read for the API and its workers.

Between ``verifier`` and ``api`` (api → readmodels → verifier → anchoring → registry): these
modules read the database (SQL, the ORM's tables) and build the documents ``verifier``
defines. They are not the platform's or auditor's kit: nothing here runs without the server's
database, and ``verifier`` never imports this package.

- ``authenticity``: a good's facts in one statement, and the verdict on them (verify's core);
- ``trace``, ``traceevents``, ``tracerender``: a good's history in order, its events, and
  how it is drawn (graph, Mermaid, table);
- ``bundles``, ``exports``: building proof bundles and writing evidence exports;
- ``tlogproofs``: a registration or a receipt's TRANSFER as a ``c2sp.org/tlog-proof@v1``;
- ``market``, ``marketreads``: the records fraud signals read, and reading them from the
  database;
- ``signals``, ``rules``, ``holderrules``, ``velocityrules``: what a rule raises, and the
  explainable rules that raise it;
- ``anomaly``, ``riskindex``: the robust-z anomaly score, and the risk index verify reads;
- ``riskworker``: the risk worker process and the owner of its tables.
"""

__all__: list[str] = []
