"""Column conventions every table shares: constraint names, 64-bit keys, bytes as bytes."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
)
from sqlmodel import SQLModel

#: Naming convention so alembic produces the same constraint names on SQLite and PostgreSQL.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: 64-bit keys on PostgreSQL; on SQLite "INTEGER PRIMARY KEY" is the rowid, which is free.
ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


def id_column() -> Column[int]:
    """A table's surrogate key: 64-bit on PostgreSQL, the rowid on SQLite."""
    return Column(ID_TYPE, primary_key=True, autoincrement=True)


def blob_column(*, nullable: bool = False) -> Column[bytes]:
    """Raw bytes (fingerprints, hashes, addresses): hex lives only at the edges."""
    return Column(LargeBinary, nullable=nullable)


__all__ = ["ID_TYPE", "blob_column", "id_column"]
