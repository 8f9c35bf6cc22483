"""entries' references checked once a statement on PostgreSQL, not by two row foreign keys

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05 09:45:00.000000

A bulk batch COPYs 10^6 rows into ``entries``; each row's two foreign keys (``record_id`` ->
``signed_records``, ``product_id`` -> ``products``) fired an RI trigger of their own, a
lookup in each parent a row: ~8-10 us a row, half the table's server CPU at 10^6 (issue 16
item 7). A batch's rows all name one record and one product, so the same guarantee is one
set-based check a statement: an AFTER INSERT ... FOR EACH STATEMENT trigger reads the
statement's rows (a transition table) once, locks the distinct parents it names FOR KEY
SHARE (as the RI check does, so a concurrent delete waits for this transaction) and refuses
the statement with a ``foreign_key_violation`` naming the old constraint if one is missing.
Server CPU of 10^5 rows COPYed in chunks of 4,096: 1.4-1.6 s with the foreign keys, 0.64-0.69 s
with the trigger, 0.65-0.67 s with neither; of a single-row INSERT and its commit: ~390 us
against ~365 us with the foreign keys (both measured at load 10-13 on 2 cores).

What else the foreign keys held, kept by triggers too: an UPDATE of an entry's
``record_id`` or ``product_id`` is checked the same way (row trigger, only when one of the
two changes: the sequencer's updates do not fire it); deleting, re-keying or truncating a
signed record or product that an entry names is refused, as NO ACTION refused it.

SQLite keeps its row foreign keys: they run in process, a few hundred ns a row.
"""

from __future__ import annotations

from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

#: (column of entries, parent table, the foreign key this replaces)
_REFERENCES = (
    ("record_id", "signed_records", "fk_entries_record_id_signed_records"),
    ("product_id", "products", "fk_entries_product_id_products"),
)

# The inserted rows' parents, in one query (each query a trigger runs costs ~40 us of
# executor start-up: four of them made a single-row INSERT ~200 us dearer than with the
# foreign keys, one ~30 us): the statement's distinct references from the transition table,
# the parents they name locked FOR KEY SHARE as the RI check locks them (a concurrent delete
# waits for this transaction; one that committed meanwhile leaves its row out of the locked
# set), and the first reference that found no parent.
_CHECK_INSERTED = """
CREATE FUNCTION entries_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing_record bigint;
    missing_product bigint;
BEGIN
    WITH named AS (SELECT DISTINCT record_id, product_id FROM new_entries),
    records AS (SELECT id FROM signed_records
                 WHERE id IN (SELECT record_id FROM named) FOR KEY SHARE),
    products AS (SELECT id FROM products
                  WHERE id IN (SELECT product_id FROM named) FOR KEY SHARE)
    SELECT (SELECT record_id FROM named WHERE record_id NOT IN (SELECT id FROM records) LIMIT 1),
           (SELECT product_id FROM named WHERE product_id NOT IN (SELECT id FROM products) LIMIT 1)
      INTO missing_record, missing_product;
    IF missing_record IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "entries" violates foreign key constraint '
            '"fk_entries_record_id_signed_records"'
            USING ERRCODE = 'foreign_key_violation',
                  CONSTRAINT = 'fk_entries_record_id_signed_records',
                  DETAIL = format('Key (record_id)=(%s) is not present in table '
                                  '"signed_records".', missing_record);
    END IF;
    IF missing_product IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "entries" violates foreign key '
            'constraint "fk_entries_product_id_products"'
            USING ERRCODE = 'foreign_key_violation',
                  CONSTRAINT = 'fk_entries_product_id_products',
                  DETAIL = format('Key (product_id)=(%s) is not present in table '
                                  '"products".', missing_product);
    END IF;
    RETURN NULL;
END
$$
"""

# An entry whose reference changes: the new values checked as an inserted row's are.
_CHECK_UPDATED = """
CREATE FUNCTION entries_check_changed_references() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM signed_records WHERE id = NEW.record_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'insert or update on table "entries" violates foreign key constraint '
            '"fk_entries_record_id_signed_records"'
            USING ERRCODE = 'foreign_key_violation',
                  CONSTRAINT = 'fk_entries_record_id_signed_records';
    END IF;
    IF NEW.product_id IS NOT NULL THEN
        PERFORM 1 FROM products WHERE id = NEW.product_id FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'insert or update on table "entries" violates foreign key '
                'constraint "fk_entries_product_id_products"'
                USING ERRCODE = 'foreign_key_violation',
                      CONSTRAINT = 'fk_entries_product_id_products';
        END IF;
    END IF;
    RETURN NEW;
END
$$
"""

# The parents' side (TG_ARGV: the column of entries, the constraint's name): a delete, an id
# changed or a truncate is refused while an entry names the row. There is no index on the
# column (the foreign key's NO ACTION check scanned too); none of these ever runs in the
# registry: records and products are never deleted.
_KEEP_REFERENCED = """
CREATE FUNCTION entries_keep_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named boolean;
BEGIN
    IF TG_OP = 'DELETE' THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM entries WHERE %I IN '
                       '(SELECT id FROM gone))', TG_ARGV[0]) INTO named;
    ELSIF TG_OP = 'UPDATE' THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM entries WHERE %I = $1)', TG_ARGV[0])
            INTO named USING OLD.id;
    ELSE
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM entries WHERE %I IS NOT NULL)',
                       TG_ARGV[0]) INTO named;
    END IF;
    IF named THEN
        RAISE EXCEPTION 'update or delete on table "%" violates foreign key constraint "%" '
            'on table "entries"', TG_TABLE_NAME, TG_ARGV[1]
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[1];
    END IF;
    RETURN NULL;
END
$$
"""


def _execute(sql: str) -> None:
    # On the driver's own cursor, without parameters: the functions' bodies hold ``%`` and
    # ``$1``, which psycopg would otherwise take for placeholders. Same transaction.
    cursor = op.get_bind().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for _, _, constraint in _REFERENCES:
        op.drop_constraint(constraint, "entries", type_="foreignkey")
    _execute(_CHECK_INSERTED)
    _execute(_CHECK_UPDATED)
    _execute(_KEEP_REFERENCED)
    _execute(
        "CREATE TRIGGER entries_references_inserted AFTER INSERT ON entries "
        "REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT "
        "EXECUTE FUNCTION entries_check_references()"
    )
    _execute(
        "CREATE TRIGGER entries_references_updated BEFORE UPDATE OF record_id, product_id "
        "ON entries FOR EACH ROW WHEN (OLD.record_id IS DISTINCT FROM NEW.record_id OR "
        "OLD.product_id IS DISTINCT FROM NEW.product_id) "
        "EXECUTE FUNCTION entries_check_changed_references()"
    )
    for column, parent, constraint in _REFERENCES:
        arguments = f"('{column}', '{constraint}')"
        _execute(
            f"CREATE TRIGGER {parent}_kept_deleted AFTER DELETE ON {parent} "
            "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
            f"EXECUTE FUNCTION entries_keep_referenced{arguments}"
        )
        _execute(
            f"CREATE TRIGGER {parent}_kept_rekeyed AFTER UPDATE OF id ON {parent} "
            "FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) "
            f"EXECUTE FUNCTION entries_keep_referenced{arguments}"
        )
        _execute(
            f"CREATE TRIGGER {parent}_kept_truncated BEFORE TRUNCATE ON {parent} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION entries_keep_referenced{arguments}"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for _, parent, _ in _REFERENCES:
        for suffix in ("deleted", "rekeyed", "truncated"):
            _execute(f"DROP TRIGGER {parent}_kept_{suffix} ON {parent}")
    _execute("DROP TRIGGER entries_references_updated ON entries")
    _execute("DROP TRIGGER entries_references_inserted ON entries")
    for function in (
        "entries_keep_referenced",
        "entries_check_changed_references",
        "entries_check_references",
    ):
        _execute(f"DROP FUNCTION {function}()")
    for column, parent, constraint in _REFERENCES:
        op.create_foreign_key(constraint, "entries", parent, [column], ["id"])
