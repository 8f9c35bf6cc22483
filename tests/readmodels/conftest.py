"""Fixtures of the read models' tests: the verifier's world (a registry on a chain, a creator)."""

from tests.anchoring.conftest import chain, devchain, operator, registry  # noqa: F401
from tests.verifier.conftest import world  # noqa: F401
