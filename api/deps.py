"""The dependencies route modules share: the context, the caller and what it must hold.

Every route module takes these from here (never from another route module), as the
full-stack FastAPI template's ``deps.py``: handlers then read like the domain
(``ctx: Context, principal: Auditor``). The dependency functions keep their names
(``authenticated*``, ``require_*``): ``api.app.document_security`` finds the authenticated
operations by them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth import (
    CurrentPrincipal,
    authenticated,
    authenticated_signed_write,
    caller,
    require_creator,
    require_scope,
)
from api.context import ApiContext, context
from api.principal import Principal
from registry.fingerprints import GoodType

#: The good types by their wire names (``GoodTypeName``).
GOOD_TYPES: dict[str, GoodType] = {
    "file": GoodType.FILE,
    "code": GoodType.CODE,
    "item": GoodType.ITEM,
}

Context = Annotated[ApiContext, Depends(context)]
#: Anyone, the anonymous caller included (charged to its request budget).
Caller = Annotated[Principal, Depends(authenticated)]
#: Anyone, an anonymous caller charged to the ``signed_write`` budget (the route checks the
#: EIP-712 signature).
SignedWriter = Annotated[Principal, Depends(authenticated_signed_write)]
#: A platform API key with the ``audit`` scope.
Auditor = Annotated[Principal, Depends(require_scope("audit"))]
#: A platform API key with the ``transfer`` scope.
TransferPlatform = Annotated[Principal, Depends(require_scope("transfer"))]
#: A creator signed in with Ethereum.
Creator = Annotated[Principal, Depends(require_creator())]

__all__ = [
    "GOOD_TYPES",
    "ApiContext",
    "Auditor",
    "Caller",
    "Context",
    "Creator",
    "CurrentPrincipal",
    "Principal",
    "SignedWriter",
    "TransferPlatform",
    "caller",
    "require_scope",
]
