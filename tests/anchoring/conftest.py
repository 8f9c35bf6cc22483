"""Fixtures shared by the anchoring tests: a real anvil, its account #0, a deployed
contract, and a registry on SQLite."""

from tests.anchoring.test_worker import chain, devchain, operator, registry  # noqa: F401
