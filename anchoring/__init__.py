"""Anchoring tree heads on an EVM chain: chain access, the dev chain, the anchoring worker.

Imports ``registry`` and nothing above it. Where things live: ``chain`` (the one seam to the
chain) and ``reader`` (a read-only one for verifiers); ``states`` (an anchor's states and
allowed transitions); ``worker`` (the state machine's steps) with ``store``, ``replacement``,
``reconcile``, ``health``, ``loop`` and ``policy`` beside it; ``lease``, ``runtime``,
``devchain``, ``settings``, ``errors``.
"""

# NOTE: nothing is re-exported here: importing ``anchoring.states`` (the CLI does, on every
# start) must not load web3 and the database layer that the worker's modules import.
__all__: list[str] = []
