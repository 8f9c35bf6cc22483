"""alembic environment: one history for every package's tables, on SQLite or PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import anchoring.models  # noqa: F401  (the anchoring worker's tables)
import api.models  # noqa: F401  (the API's tables: keys, nonces, idempotency, jobs)
import registry.models  # noqa: F401  (the registry's tables)

target_metadata = SQLModel.metadata
config = context.config


def run_migrations() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        # Invoked as `alembic upgrade head` with -x url=... or sqlalchemy.url in alembic.ini.
        url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
            "sqlalchemy.url"
        )
        if not url:
            raise SystemExit("give the database as: alembic -x url=sqlite:///path upgrade head")
        engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
