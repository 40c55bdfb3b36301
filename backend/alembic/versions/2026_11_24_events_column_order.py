"""events: columns in the order raw scans read them (PostgreSQL)

To read a column of a heap row, PostgreSQL steps over every column before it, and a column after
a variable-width one has no fixed offset. `is_bot`, which every analytics query reads, came 22nd,
after 17 text columns; `properties` came after three. Now the fixed-width columns come first, then
what queries filter and count on (event name, properties, user, session), then the dimensions,
then what only the raw events list shows. A month of raw events filtered on a property (10M rows
in `bench/query.py`) is read in about 13 % less time.

PostgreSQL cannot move a column, so the table is made again: a new partitioned table in the new
order, each partition copied over with the same bounds, the old one dropped, names swapped. It
took 78 s for the 10 million events of `bench/query.py`, during which events are read but not
written. SQLite is left as it is: it finds a column through the record header, without stepping
over the values before it.

Revision ID: a7c3e9f1d284
Revises: f6a2d9c4b157
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "a7c3e9f1d284"
down_revision: str | None = "f6a2d9c4b157"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = (
    "project_id",
    "timestamp",
    "id",
    "source_id",
    "event_name",
    "distinct_id",
    "session_id",
    "properties",
    "page_url",
    "host",
    "path",
    "referrer",
    "referrer_domain",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "browser",
    "os",
    "device",
    "is_bot",
    "ip_hash",
    "received_at",
)
AFTER = (
    "project_id",
    "timestamp",
    "id",
    "source_id",
    "received_at",
    "is_bot",
    "event_name",
    "properties",
    "distinct_id",
    "session_id",
    "path",
    "referrer_domain",
    "utm_source",
    "browser",
    "os",
    "device",
    "host",
    "page_url",
    "referrer",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "ip_hash",
)
NEW = "events_reordered"


def _rebuild(order: Sequence[str]) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # Reads go on; a worker's insert waits, then fails on the dropped table and is retried
    # (not acknowledged) into the new one, rather than landing in a partition already copied.
    op.execute("LOCK TABLE events IN SHARE MODE")
    columns = {
        name: f"{kind} NOT NULL" if not_null else kind
        for name, kind, not_null in bind.execute(
            sa.text(
                "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
                "WHERE attrelid = 'events'::regclass AND attnum > 0 AND NOT attisdropped"
            )
        )
    }
    if sorted(columns) != sorted(order):
        raise RuntimeError(f"events has columns {sorted(columns)}, expected {sorted(order)}")
    partitions = bind.execute(
        sa.text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'events'::regclass ORDER BY c.relname"
        )
    ).all()

    # Each partition's index names, by the table's index they belong to, to be given back.
    index_names = {partition: _partition_indexes(partition) for partition, _ in partitions}

    definitions = ", ".join(f'"{name}" {columns[name]}' for name in order)
    op.execute(
        f"CREATE TABLE {NEW} ({definitions}, "
        f'CONSTRAINT pk_{NEW} PRIMARY KEY (project_id, "timestamp", id)) '
        'PARTITION BY RANGE ("timestamp")'
    )
    op.execute(
        f'CREATE INDEX ix_{NEW} ON {NEW} (project_id, event_name, "timestamp") '
        "INCLUDE (distinct_id, path, is_bot, id)"
    )
    names = ", ".join(f'"{name}"' for name in order)
    for partition, bounds in partitions:
        op.execute(f'CREATE TABLE "{partition}_new" PARTITION OF {NEW} {bounds}')
        op.execute(f'INSERT INTO "{partition}_new" ({names}) SELECT {names} FROM "{partition}"')

    op.execute("DROP TABLE events")
    op.execute(f"ALTER TABLE {NEW} RENAME TO events")
    op.execute(f"ALTER INDEX pk_{NEW} RENAME TO pk_events")
    op.execute(f"ALTER INDEX ix_{NEW} RENAME TO ix_events_project_id_event_name_timestamp")
    for partition, _ in partitions:
        op.execute(f'ALTER TABLE "{partition}_new" RENAME TO "{partition}"')
        for parent, index in _partition_indexes(partition).items():
            op.execute(f'ALTER INDEX "{index}" RENAME TO "{index_names[partition][parent]}"')
    op.execute("ANALYZE events")


def _partition_indexes(partition: str) -> dict[str, str]:
    """A partition's indexes, keyed by the name of the partitioned index each belongs to."""
    rows = op.get_bind().execute(
        sa.text(
            "SELECT parent.relname, child.relname FROM pg_index x "
            "JOIN pg_class child ON child.oid = x.indexrelid "
            "JOIN pg_inherits i ON i.inhrelid = child.oid "
            "JOIN pg_class parent ON parent.oid = i.inhparent "
            "WHERE x.indrelid = CAST(:partition AS regclass)"
        ),
        {"partition": f'"{partition}"'},
    )
    return {str(row[0]): str(row[1]) for row in rows}


def upgrade() -> None:
    _rebuild(AFTER)


def downgrade() -> None:
    _rebuild(BEFORE)
