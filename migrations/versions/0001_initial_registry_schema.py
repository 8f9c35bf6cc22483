"""initial registry schema: signed records, products, code keys, the log (entries, tiles, heads)

Revision ID: 0001
Revises:
Create Date: 2026-11-25 22:31:05.483748
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_tiles",
        sa.Column("record_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("tile_level", sa.SmallInteger(), nullable=False),
        sa.Column("tile_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("width", sa.SmallInteger(), nullable=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint(
            "record_id", "tile_level", "tile_index", name=op.f("pk_batch_tiles")
        ),
    )
    log_state = op.create_table(
        "log_state",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_state")),
    )
    # The log starts empty; appenders lock this one row (registry.log.lock_log).
    op.bulk_insert(log_state, [{"id": 1, "tree_size": 0}])
    op.create_table(
        "signed_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("primary_type", sa.String(length=32), nullable=False),
        sa.Column("signer", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("payload_hash", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signed_records")),
    )
    with op.batch_alter_table("signed_records", schema=None) as batch_op:
        batch_op.create_index("uq_signed_records_signer_nonce", ["signer", "nonce"], unique=True)

    op.create_table(
        "tree_heads",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("signer", sa.LargeBinary(), nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_tree_heads")),
    )
    op.create_table(
        "tree_tiles",
        sa.Column("tile_level", sa.SmallInteger(), nullable=False),
        sa.Column("tile_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("width", sa.SmallInteger(), nullable=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tile_level", "tile_index", name=op.f("pk_tree_tiles")),
    )
    op.create_table(
        "code_keys",
        sa.Column("creator", sa.LargeBinary(), nullable=False),
        sa.Column("key_commitment", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"], ["signed_records.id"], name=op.f("fk_code_keys_record_id_signed_records")
        ),
        sa.PrimaryKeyConstraint("creator", name=op.f("pk_code_keys")),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("creator", sa.LargeBinary(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("use", sa.SmallInteger(), nullable=False),
        sa.Column("first_record_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["first_record_id"],
            ["signed_records.id"],
            name=op.f("fk_products_first_record_id_signed_records"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index("uq_products_creator_slug", ["creator", "slug"], unique=True)

    op.create_table(
        "entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("leaf_index", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("good_type", sa.SmallInteger(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("actor", sa.LargeBinary(), nullable=False),
        sa.Column("payload_hash", sa.LargeBinary(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=True),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_entries_product_id_products")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["signed_records.id"], name=op.f("fk_entries_record_id_signed_records")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
    )
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_entries_good_events",
            ["good_type", "fingerprint"],
            unique=False,
            sqlite_where=sa.text("kind <> 1"),
            postgresql_where=sa.text("kind <> 1"),
        )
        batch_op.create_index(
            "ix_entries_queue",
            ["id"],
            unique=False,
            sqlite_where=sa.text("leaf_index IS NULL"),
            postgresql_where=sa.text("leaf_index IS NULL"),
        )
        batch_op.create_index("uq_entries_leaf_index", ["leaf_index"], unique=True)
        batch_op.create_index(
            "uq_entries_registered_good",
            ["good_type", "fingerprint"],
            unique=True,
            sqlite_where=sa.text("kind = 1"),
            postgresql_where=sa.text("kind = 1"),
        )


def downgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_entries_registered_good",
            sqlite_where=sa.text("kind = 1"),
            postgresql_where=sa.text("kind = 1"),
        )
        batch_op.drop_index("uq_entries_leaf_index")
        batch_op.drop_index(
            "ix_entries_queue",
            sqlite_where=sa.text("leaf_index IS NULL"),
            postgresql_where=sa.text("leaf_index IS NULL"),
        )
        batch_op.drop_index(
            "ix_entries_good_events",
            sqlite_where=sa.text("kind <> 1"),
            postgresql_where=sa.text("kind <> 1"),
        )

    op.drop_table("entries")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index("uq_products_creator_slug")

    op.drop_table("products")
    op.drop_table("code_keys")
    op.drop_table("tree_tiles")
    op.drop_table("tree_heads")
    with op.batch_alter_table("signed_records", schema=None) as batch_op:
        batch_op.drop_index("uq_signed_records_signer_nonce")

    op.drop_table("signed_records")
    op.drop_table("log_state")
    op.drop_table("batch_tiles")
