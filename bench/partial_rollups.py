"""Rollup writes on PostgreSQL: rows merged under a lock, or partial rows appended (DESIGN §4).

DESIGN.md leaves two ways for several workers to write the same rollup rows and asks which is
faster on PostgreSQL. The worker merges: under the project's advisory lock it reads each event
rollup row, adds the batch to its sketches and writes it back. The other way (Druid-style)
appends each batch's own partial row per key, which queries merge and a compaction step folds
together later. This bench drains the same events as `bench/ingest.py`'s pipeline run from the
Redis stream, with 1 and 2 worker processes, both ways:

  merged   — the worker as it is;
  appended — the same worker, except that each transaction's event rollup deltas are copied
             into a table of partial rows (same columns and key index, no unique key, sketches
             built from the batch alone) before the lock is taken. Sessions and their rollups
             are still merged under the lock: a session's first and last event cannot be
             appended.

Then what the appended rows cost afterwards: partial rows per merged row, the compaction (read
every part, union each key's sketches, write one row per key), and reading a day's hourly and
daily totals' sketches from parts against merged rows.

Needs PostgreSQL and Redis on 127.0.0.1. Run: backend/.venv/bin/python bench/partial_rollups.py
Writes bench/results/partial_rollups.json.
"""

import asyncio
import functools
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from common import ROOT

sys.path.insert(0, str(ROOT / "backend"))

import asyncpg
from ingest import (
    PIPELINE_EVENTS,
    _worker_process,
    drain,
    fresh_database,
    pipeline_messages,
)

from pulseboard.pipeline import sketches, store
from pulseboard.pipeline.repository import EVENT_KEY, EVENT_VALUES, PostgresPipelineRepository

PARTS = "event_rollup_parts"
RESULTS = ROOT / "bench" / "results" / "partial_rollups.json"


async def append_parts(repository: PostgresPipelineRepository, deltas: dict[Any, Any]) -> None:
    """One partial row per key, its sketches built from this batch's values alone."""
    records = [
        (*key, delta.count, sketches.hll_of(delta.users), sketches.hll_of(delta.sessions))
        for key, delta in deltas.items()
    ]
    driver = await repository._driver()
    await driver.copy_records_to_table(PARTS, records=records, columns=[*EVENT_KEY, *EVENT_VALUES])


async def roll_up_appending(repository: Any, stored: store.Stored) -> None:
    """`store.roll_up` with the event rollups appended before the lock instead of merged."""
    new_events = [row for rows in stored.events.values() for row in rows]
    events = store.event_deltas(new_events)
    sessions = store.grown_sessions(new_events)
    await append_parts(repository, events)
    await repository.lock_rollups(set(stored.events))
    await store.merge_sessions(repository, sessions)


def database_with_parts() -> str:
    """A fresh, migrated bench database with the table of partial rows; its URL."""
    database = fresh_database()
    asyncio.run(_make_parts_table(database))
    return database


async def _make_parts_table(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        await connection.execute(
            f"CREATE TABLE {PARTS} (LIKE event_rollups INCLUDING DEFAULTS "
            "INCLUDING COMPRESSION) WITH (toast_tuple_target = 8160); "
            f"CREATE INDEX ON {PARTS} ({', '.join(EVENT_KEY)})"
        )
    finally:
        await connection.close()


async def afterwards(database: str) -> dict[str, Any]:
    """Rows, compaction and reads of the appended parts (the database of an appended run)."""
    connection = await asyncpg.connect(database)
    try:
        parts = await connection.fetchval(f"SELECT count(*) FROM {PARTS}")
        keys = await connection.fetchval(
            f"SELECT count(*) FROM (SELECT DISTINCT {', '.join(EVENT_KEY)} FROM {PARTS}) k"
        )
        reads = await _reads(connection)
        began = time.perf_counter()
        grouped: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
        for row in await connection.fetch(f"SELECT * FROM {PARTS}"):
            grouped[tuple(row[name] for name in EVENT_KEY)].append(row)
        records = [
            (
                *key,
                sum(row["count"] for row in rows),
                sketches.hll_merge(row["users"] for row in rows),
                sketches.hll_merge(row["sessions"] for row in rows),
            )
            for key, rows in grouped.items()
        ]
        await connection.execute("TRUNCATE event_rollups")
        await connection.copy_records_to_table(
            "event_rollups", records=records, columns=[*EVENT_KEY, *EVENT_VALUES]
        )
        compaction = time.perf_counter() - began
        merged_reads = await _reads(connection, table="event_rollups")
    finally:
        await connection.close()
    return {
        "partial_rows": parts,
        "merged_rows": keys,
        "compaction_s": compaction,
        "read_ms_parts": reads,
        "read_ms_merged": merged_reads,
    }


async def _reads(connection: Any, table: str = PARTS) -> dict[str, float]:
    """Median ms to read the day's hourly and daily total user sketches and union each bucket's
    (20 runs)."""
    figures = {}
    for label, granularity in (("hourly totals", 3600), ("daily totals", 86400)):
        times = []
        for _ in range(20):
            began = time.perf_counter()
            rows = await connection.fetch(
                f"SELECT bucket, users FROM {table} WHERE granularity = $1 AND dimension = ''",
                granularity,
            )
            by_bucket: dict[datetime, list[bytes]] = defaultdict(list)
            for row in rows:
                by_bucket[row["bucket"]].append(row["users"])
            for blobs in by_bucket.values():
                sketches.hll_count_union(blobs)
            times.append((time.perf_counter() - began) * 1000)
        figures[label] = statistics.median(times)
    return figures


def main() -> None:
    project_id, source_id = uuid.uuid4(), uuid.uuid4()
    messages = pipeline_messages(project_id, source_id)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": PIPELINE_EVENTS,
    }
    for workers in (1, 2):
        for way in ("merged", "appended"):
            database = database_with_parts()
            target = functools.partial(
                _worker_process, roll_up=roll_up_appending if way == "appended" else None
            )
            seconds = drain(database, messages, workers, target)
            results[f"{way}_{workers}_events_per_s"] = PIPELINE_EVENTS / seconds
            print(f"{way}, {workers} worker(s): {PIPELINE_EVENTS / seconds:,.0f} events/s")
            if way == "appended" and workers == 2:
                results["appended_afterwards"] = asyncio.run(afterwards(database))
    after = results["appended_afterwards"]
    print(
        f"partial rows {after['partial_rows']:,} for {after['merged_rows']:,} merged rows; "
        f"compaction {after['compaction_s']:.2f} s"
    )
    for label, ms in after["read_ms_parts"].items():
        print(f"{label}: {ms:.1f} ms from parts, {after['read_ms_merged'][label]:.1f} ms merged")
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
