"""The ``tracemark`` command: creators register and revoke, operators run and inspect the log.

Until the HTTP API exists the commands call the registry's service layer on the database
directly (the operator's mode). Exit codes (README): 0 ok, 1 internal error, 2 usage,
3 invalid input, 4 not found, 5 conflict, 6 signature refused, 7 database busy,
8 configuration, 9 the stored log contradicts itself, 10 the chain is unreachable.
"""

# Each module registers its commands, in this order in --help.
from api.cli import server, creator, log, chain  # noqa: F401, I001
from api.cli import verify  # noqa: F401
from api.cli import apikeys  # noqa: F401
from api.cli.app import EXIT_CODES, app, fail


def main() -> None:
    app()


__all__ = ["EXIT_CODES", "app", "fail", "main"]
