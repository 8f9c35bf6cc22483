"""Anchoring tree heads on an EVM chain: chain access, the dev chain, the anchoring worker.

Empty until issue 3; it will import ``registry`` and nothing above it.
"""

__all__: list[str] = []
