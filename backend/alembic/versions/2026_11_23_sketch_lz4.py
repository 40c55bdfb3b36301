"""sketch columns compressed with lz4: rollup writes and reads spend less time in pglz

A rollup row holds sketches of about 2 KB each, so PostgreSQL compresses and moves them out of
line (TOAST) on every rewrite. pglz spent about half the time of each rollup save in
`bench/ingest.py`; lz4 is several times faster both ways. Only values written afterwards use it.
PostgreSQL builds without lz4 keep pglz.

Revision ID: d4a9b2c6e813
Revises: c3f8a1e5d702
Create Date: 2026-11-23 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "d4a9b2c6e813"
down_revision: str | None = "c3f8a1e5d702"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {"event_rollups": ("users", "sessions"), "metric_rollups": ("quantiles",)}


def _set(method: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    methods = bind.execute(
        sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar_one()
    if method not in methods:
        return
    for table, columns in COLUMNS.items():
        changes = ", ".join(f"ALTER COLUMN {column} SET COMPRESSION {method}" for column in columns)
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    _set("lz4")


def downgrade() -> None:
    _set("pglz")
