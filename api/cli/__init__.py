"""The ``tracemark`` command: creators register and revoke, operators run and inspect the log.

The creator commands talk to a registry's HTTP API with ``--api URL`` (signing locally), or
call the registry's service layer on the database directly (the operator's mode). Exit codes
(README): 0 ok, 1 internal error, 2 usage, 3 invalid input, 4 not found, 5 conflict,
6 signature refused, 7 busy (retry), 8 configuration, 9 the stored log contradicts itself,
10 the chain is unreachable, 11 a bundle does not verify, 12 a bundle checks out but is not
yet evidence against the chain, 13 the API refused the credentials, 14 the API is
unreachable, 15 no pinned trust root names the evidence's registry, 16 the evidence's
anchor is not final yet, 17 an absence proof verified: the good is not registered, 18 a
monitor's alarm: the log contradicts itself or what the monitor verified (split view, rollback).
"""

# Each command's module is imported when the command runs (api.cli.lazy.COMMANDS, the
# order of --help too): ``tracemark verify`` imports none of the others.
from api.cli.app import EXIT_CODES, app, fail


def main() -> None:
    app()


__all__ = ["EXIT_CODES", "app", "fail", "main"]
