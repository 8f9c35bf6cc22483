"""The signed tree head: the registry's EIP-712 ``TreeHead(size, root, timestamp)``.

One type for the log that signs and stores it (``registry.log``), the route and the client
that carry it (``GET /v1/log/head``), and the bundle and export documents that embed it; its
signed message is built in one place, ``tree_head_message``.

NOTE: pure (no web3, no ORM, no web framework): the verifier kit parses heads with this.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, WithJsonSchema

from registry.edges import Address, DomainField, Hash32, SignatureBytes, Uint64
from registry.merkle import MAX_TREE_SIZE

PRIMARY_TYPE = "TreeHead"
"""The EIP-712 primary type the registry signs a head as (``eip712.STRUCT_TYPES``)."""


def tree_head_message(tree_size: int, root: bytes, timestamp: int) -> dict[str, object]:
    """The EIP-712 ``TreeHead`` message: what the registry signs for a tree size.

    NOTE: ``size`` is the frozen struct's name for the tree size.
    """
    return {"size": tree_size, "root": root, "timestamp": timestamp}


# NOTE: each field's JSON schema is pinned to what ``GET /v1/log/head`` has always published
# (plain strings and integers, the domain an open object), so the OpenAPI document does not
# change; validation is the strict one of the fields' types.
_Integer = WithJsonSchema({"type": "integer"})
_String = WithJsonSchema({"type": "string"})


def _without_description(schema: dict[str, Any]) -> None:
    schema.pop("description", None)


class TreeHead(BaseModel):
    """A signed (size, root, timestamp) of the log: EIP-712 ``TreeHead`` under ``domain``."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_without_description)

    tree_size: Annotated[StrictInt, Field(ge=1, le=MAX_TREE_SIZE), _Integer]
    root: Annotated[Hash32, _String]
    timestamp: Annotated[Uint64, _Integer]
    signature: Annotated[SignatureBytes, _String]
    #: The key that signed it: 20 bytes inside, EIP-55 text outside.
    signer: Annotated[Address, _String]
    domain: Annotated[DomainField, WithJsonSchema({"type": "object", "additionalProperties": True})]

    def message(self) -> dict[str, object]:
        """The signed EIP-712 message, rebuilt from this head's fields."""
        return tree_head_message(self.tree_size, self.root, self.timestamp)

    def to_json(self) -> dict[str, Any]:
        """The head as JSON: 0x-hex root and signature, checksummed signer, typed-data domain."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> TreeHead:
        """Parse a head document strictly; raises ``ValidationError``."""
        return cls.model_validate(document)


__all__ = ["PRIMARY_TYPE", "TreeHead", "tree_head_message"]
