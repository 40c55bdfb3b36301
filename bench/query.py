"""Query benchmarks on 10M events over 30 days in PostgreSQL, cold and warm.

The events are loaded by COPY and their rollups built by the worker's own code
(`pipeline.store`'s event deltas and grown sessions, merged as the worker merges them per batch),
100k events per transaction. The dataset is kept in the database `pulseboard_bench_query`
between runs and made again only with --reload or when its size or the schema differs.

Each query goes through the real app (FastAPI in-process over ASGI, Redis result cache):
  cold — the result cache emptied before each run (PostgreSQL's own buffers stay warm, and
         each query runs once untimed first: a process compiles and prepares a statement once);
  warm — the same request again, answered from the result cache.
A rollup query runs 30 times cold (a p95 of 10 runs is their slowest), a raw one 10 times.
References, timed in the same run: the exact distinct count of users over the 30 days (COUNT
DISTINCT over raw rows) beside the rollups' estimate; and, beside the raw queries, the month's
rows counted with no filter (the floor of any query that reads them all, on this machine).

Needs PostgreSQL and Redis on 127.0.0.1. Run: backend/.venv/bin/python bench/query.py
[--events N] [--reload]. Writes bench/results/query.json.
"""

import argparse
import asyncio
import hashlib
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from common import PASSWORD, PG_ADMIN, ROOT, SECRET, postgres_url, recreate_database

sys.path.insert(0, str(ROOT / "backend"))

import asyncpg
import httpx
import numpy as np
import orjson
from redis.asyncio import Redis

from pulseboard.analytics.metrics import Needs
from pulseboard.analytics.service import Analytics, Scope
from pulseboard.analytics.timerange import TimeRange
from pulseboard.core import migrations
from pulseboard.core.db import create_engine, create_sessionmaker
from pulseboard.core.settings import Settings
from pulseboard.main import create_app
from pulseboard.models import Event, Project
from pulseboard.pipeline.partitions import Partitions
from pulseboard.pipeline.repository import PipelineRepository
from pulseboard.pipeline.store import (
    event_deltas,
    grown_sessions,
    merge_event_deltas,
    merge_sessions,
)

RESULTS = ROOT / "bench" / "results" / "query.json"
BENCH_DB = "pulseboard_bench_query"
DATABASE_URL = postgres_url(BENCH_DB)
REDIS_URL = "redis://127.0.0.1:6379/10"
DAYS = 30
CHUNK = 100_000
BARE_RUNS = 10

EVENT_NAMES = np.array(["pageview", "click", "signup", "purchase", "search"])
EVENT_WEIGHTS = np.array([0.70, 0.15, 0.05, 0.03, 0.07])
PATHS = np.array(["/"] + [f"/page/{i}" for i in range(199)])
REFERRERS = np.array([None] * 30 + [f"site{i}.example" for i in range(30)], dtype=object)
SOURCES = np.array([None] * 21 + ["newsletter", "twitter", "google", "partner", "ads"] * 2)
BROWSERS = np.array(["Chrome", "Firefox", "Safari", "Edge", "Opera", "Samsung Internet"])
OSES = np.array(["Windows", "Mac OS X", "Linux", "Android", "iOS"])
DEVICES = np.array(["desktop", "mobile", "tablet"])
PLANS = np.array([None, "free", "pro", "enterprise"], dtype=object)
USERS = 400_000
# The columns of a record from `day_of_events`, in its order (COPY names them; the table's own
# order is the one raw scans read them in).
RECORD_COLUMNS = [
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
]


def settings() -> Settings:
    return Settings.model_validate(
        {
            "environment": "production",
            "database_url": DATABASE_URL,
            "redis_url": REDIS_URL,
            "secret_key": SECRET,
            "data_dir": "/tmp/pulseboard-bench-query",
        }
    )


# Loading ------------------------------------------------------------------------------------------


async def existing_dataset(events: int) -> dict[str, Any] | None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        found = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", BENCH_DB)
    finally:
        await admin.close()
    if not found:
        return None
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        row = await connection.fetchrow("SELECT value FROM bench_dataset WHERE events = $1", events)
        revision = await connection.fetchval("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await connection.close()
    # A dataset loaded under an older schema is loaded again, in the schema the app has now.
    if revision != migrations.head():
        return None
    return orjson.loads(row["value"]) if row else None


async def create_account(client: httpx.AsyncClient) -> tuple[str, str]:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    token = await login(client, email)
    project = await client.post(
        "/api/v1/projects/", json={"name": "bench"}, headers={"Authorization": f"Bearer {token}"}
    )
    return email, str(project.json()["id"])


async def login(client: httpx.AsyncClient, email: str) -> str:
    response = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
    )
    token: str = response.json()["access_token"]
    return token


def day_of_events(
    rng: np.random.Generator, day: date, count: int, project_id: uuid.UUID, source_id: uuid.UUID
) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    """One day's events as COPY records and as the rows the rollup code reads."""
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    # Every event sent from a browser has an ip_hash (the day's salt and the visitor's address
    # hashed): here one per user and day, stored as the worker stores it, 32 bytes.
    ip_hashes: dict[int, bytes] = {}
    seconds = np.sort(rng.integers(0, 86400, count))
    # Skewed: a few users make many events, most make few.
    users = (USERS * rng.random(count) ** 2.5).astype(np.int64)
    names = rng.choice(EVENT_NAMES, count, p=EVENT_WEIGHTS)
    paths = PATHS[(len(PATHS) * rng.random(count) ** 2).astype(np.int64)]
    referrers = rng.choice(REFERRERS, count)
    sources = rng.choice(SOURCES, count)
    browsers = rng.choice(BROWSERS, count, p=[0.55, 0.15, 0.15, 0.1, 0.03, 0.02])
    oses = rng.choice(OSES, count)
    devices = rng.choice(DEVICES, count, p=[0.6, 0.35, 0.05])
    plans = rng.choice(PLANS, count)
    amounts = np.round(rng.uniform(5, 500, count), 2)
    bots = rng.random(count) < 0.01
    ids = rng.integers(0, 2**63, (count, 2), dtype=np.int64)
    received = midnight + timedelta(days=1)
    records: list[tuple[Any, ...]] = []
    rows: list[dict[str, Any]] = []
    for i in range(count):
        timestamp = midnight + timedelta(seconds=int(seconds[i]))
        user = f"user-{users[i]}"
        session = f"{user}-{day.isoformat()}-{int(seconds[i]) // 28800}"
        name = str(names[i])
        path = str(paths[i])
        properties: dict[str, Any] = {}
        if plans[i] is not None:
            properties["plan"] = plans[i]
        if name == "purchase":
            properties["amount"] = float(amounts[i])
        referrer = referrers[i]
        source = sources[i]
        event_id = uuid.UUID(int=(int(ids[i, 0]) << 64) | int(ids[i, 1]))
        browser, os_name, device = str(browsers[i]), str(oses[i]), str(devices[i])
        ip = ip_hashes.get(users[i])
        if ip is None:
            ip = ip_hashes[users[i]] = hashlib.sha256(f"{day}\0{user}".encode()).digest()
        records.append(
            (
                project_id,
                timestamp,
                event_id,
                source_id,
                name,
                user,
                session,
                orjson.dumps(properties).decode(),
                f"https://bench.example.com{path}",
                "bench.example.com",
                path,
                None if referrer is None else f"https://{referrer}/",
                referrer,
                source,
                None,
                None,
                None,
                None,
                browser,
                os_name,
                device,
                bool(bots[i]),
                ip,
                received,
            )
        )
        rows.append(
            {
                "project_id": project_id,
                "_timezone": "UTC",
                "timestamp": timestamp,
                "event_name": name,
                "distinct_id": user,
                "session_id": session,
                "is_bot": bool(bots[i]),
                "path": path,
                "referrer_domain": referrer,
                "utm_source": source,
                "browser": browser,
                "os": os_name,
                "device": device,
            }
        )
    return records, rows


async def load(events: int) -> dict[str, Any]:
    await recreate_database(BENCH_DB)
    config = settings()
    await asyncio.to_thread(migrations.upgrade, config)
    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            email, project = await create_account(client)
    project_id = uuid.UUID(project)
    engine = create_engine(config)
    sessions = create_sessionmaker(engine)
    connection = await asyncpg.connect(DATABASE_URL)
    source_id = await connection.fetchval(
        "SELECT id FROM data_sources WHERE project_id = $1 LIMIT 1", project_id
    )
    rng = np.random.default_rng(20261123)
    today = datetime.now(UTC).date()
    first = today - timedelta(days=DAYS - 1)
    days = [first + timedelta(days=n) for n in range(DAYS)]
    await Partitions(engine).ensure(Event.__tablename__, days)
    assert sorted(RECORD_COLUMNS) == sorted(c.name for c in Event.__table__.columns)
    started = time.perf_counter()
    copy_seconds = rollup_seconds = 0.0
    per_day = events // DAYS
    for day in days:
        records, rows = day_of_events(rng, day, per_day, project_id, source_id)
        began = time.perf_counter()
        await connection.copy_records_to_table("events", records=records, columns=RECORD_COLUMNS)
        copy_seconds += time.perf_counter() - began
        began = time.perf_counter()
        for offset in range(0, len(rows), CHUNK):
            async with sessions.begin() as session:
                repository = PipelineRepository.for_session(session)
                chunk = rows[offset : offset + CHUNK]
                await merge_event_deltas(repository, event_deltas(chunk))
                await merge_sessions(repository, grown_sessions(chunk))
        rollup_seconds += time.perf_counter() - began
        print(f"  loaded {day} ({time.perf_counter() - started:.0f} s)", flush=True)
    # What autovacuum does after a bulk load: statistics, and the visibility map that lets
    # count queries read the rollup index alone.
    await connection.execute("VACUUM ANALYZE")
    start = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    end = start + timedelta(days=DAYS)
    began = time.perf_counter()
    exact_users = await connection.fetchval(
        "SELECT count(DISTINCT distinct_id) FROM events WHERE project_id = $1 "
        "AND timestamp >= $2 AND timestamp < $3 AND NOT is_bot",
        project_id,
        start,
        end,
    )
    dataset = {
        "events": per_day * DAYS,
        "email": email,
        "project_id": project,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "exact_unique_users": exact_users,
        "exact_unique_users_seconds": time.perf_counter() - began,
        "copy_events_per_s": per_day * DAYS / copy_seconds,
        "rollup_events_per_s": per_day * DAYS / rollup_seconds,
    }
    await connection.execute("CREATE TABLE bench_dataset (events bigint, value text)")
    await connection.execute(
        "INSERT INTO bench_dataset VALUES ($1, $2)", events, orjson.dumps(dataset).decode()
    )
    await connection.close()
    await engine.dispose()
    return dataset


# Timing -------------------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(
    run: Callable[[], Awaitable[None]], redis: Redis, cold_runs: int, warm_runs: int
) -> dict[str, float]:
    # Once untimed: a process compiles and prepares each statement the first time it runs it.
    await redis.flushdb()
    await run()
    cold: list[float] = []
    for _ in range(cold_runs):
        await redis.flushdb()
        began = time.perf_counter()
        await run()
        cold.append((time.perf_counter() - began) * 1000)
    warm: list[float] = []
    for _ in range(warm_runs):
        began = time.perf_counter()
        await run()
        warm.append((time.perf_counter() - began) * 1000)
    figures = {
        "cold_p50_ms": statistics.median(cold),
        "cold_p95_ms": percentile(cold, 0.95),
        "runs": cold_runs,
    }
    if warm:
        figures.update(warm_p50_ms=statistics.median(warm), warm_p95_ms=percentile(warm, 0.95))
    return figures


async def bench(
    dataset: dict[str, Any], cold_runs: int, only: list[str] | None = None
) -> dict[str, Any]:
    config = settings()
    app = create_app(config)
    start = datetime.fromisoformat(dataset["from"])
    end = datetime.fromisoformat(dataset["to"])
    last_week = (end - timedelta(days=7)).isoformat()
    month = {"from": dataset["from"], "to": dataset["to"]}
    week = {"from": last_week, "to": dataset["to"]}
    pro = orjson.dumps([{"key": "plan", "op": "eq", "value": "pro"}]).decode()
    queries: list[tuple[str, str, dict[str, Any], str]] = [
        ("overview, 30 days", "overview", month, "rollups"),
        ("timeseries hourly, 7 days", "timeseries", {**week, "interval": "hour"}, "rollups"),
        (
            "timeseries daily unique users, 30 days",
            "timeseries",
            {**month, "interval": "day", "metric": "unique_users"},
            "rollups",
        ),
        ("breakdown by path, 30 days", "breakdown", {**month, "by": "path"}, "rollups"),
        ("top events, 30 days", "top-events", {**month, "metric": "unique_users"}, "rollups"),
        (
            "funnel signup → purchase, 7 days",
            "funnels",
            {**week, "steps": ["signup", "purchase"], "window": 86400},
            "raw",
        ),
        (
            "raw: daily series, filter plan = pro, 7 days",
            "timeseries",
            {**week, "interval": "day", "filters": pro},
            "raw",
        ),
        (
            "raw: daily series, filter plan = pro, 30 days",
            "timeseries",
            {**month, "interval": "day", "filters": pro},
            "raw",
        ),
    ]
    results: dict[str, Any] = {}
    redis = Redis.from_url(REDIS_URL)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=600
        ) as client:
            token = await login(client, dataset["email"])
            headers = {"Authorization": f"Bearer {token}"}
            base = f"/api/v1/analytics/{dataset['project_id']}"
            for label, path, params, kind in queries:
                if not _chosen(label, only):
                    continue

                async def run(path: str = path, params: dict[str, Any] = params) -> None:
                    response = await client.get(f"{base}/{path}", params=params, headers=headers)
                    assert response.status_code == 200, response.text[:500]

                runs = cold_runs if kind == "rollups" else max(3, cold_runs // 3)
                results[label] = {"kind": kind, **await timed(run, redis, runs, 20)}
                print(f"  {label}: {results[label]}", flush=True)

            label = "reference: the month's rows counted, no filter"
            if _chosen("raw", only):
                results[label] = {
                    "kind": "reference",
                    **await bare_month(redis, start, end, dataset["project_id"]),
                }

            # Unique users over 30 days, from rollups, through the service (the overview's number).
            state = app.state.pulseboard
            project_id = uuid.UUID(dataset["project_id"])
            estimates: list[float] = []

            async def unique_users() -> None:
                async with state.sessions() as session:
                    project = await session.get_one(Project, project_id)
                    analytics = Analytics(session, state.settings, state.cache, project)
                    scope = Scope(TimeRange(start, end, "UTC"))
                    found = await analytics.aggregates(
                        analytics.query(scope, scope.time_range, needs=Needs.SKETCHES)
                    )
                    estimates.append(found[(0, None)].users)

            label = "unique users, 30 days (rollups)"
            if _chosen(label, only):
                results[label] = {
                    "kind": "rollups",
                    **await timed(unique_users, redis, cold_runs, 0),
                }
                estimate = estimates[-1]
                exact = dataset["exact_unique_users"]
                results["unique_users_accuracy"] = {
                    "estimate": estimate,
                    "exact": exact,
                    "error_percent": abs(estimate - exact) / exact * 100,
                    "exact_count_distinct_ms": dataset["exact_unique_users_seconds"] * 1000,
                }
    await redis.aclose()
    return results


async def bare_month(
    redis: Redis, start: datetime, end: datetime, project: str
) -> dict[str, float]:
    """The floor of any raw query over the month on this machine: its rows counted in one
    statement, with the app's settings (JIT off, a plan for the values given) and none of the
    filter's work."""
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        await connection.execute("SET jit = off; SET plan_cache_mode = force_custom_plan")
        statement = await connection.prepare(
            "SELECT count(*) FROM events WHERE project_id = $1 AND timestamp >= $2 "
            "AND timestamp < $3"
        )
        project_id = uuid.UUID(project)

        async def run() -> None:
            # fetch, not fetchval: asyncpg asks for one row then, and PostgreSQL runs a portal
            # that may be resumed without parallel workers (1.5 s here against 0.8 s).
            await statement.fetch(project_id, start, end)

        return await timed(run, redis, BARE_RUNS, 0)
    finally:
        await connection.close()


async def server_settings() -> dict[str, str]:
    """The PostgreSQL settings that raw scans depend on, recorded beside their figures."""
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        rows = await connection.fetch(
            "SELECT name, current_setting(name) AS value FROM pg_settings WHERE name = ANY($1)",
            list(SERVER_SETTINGS),
        )
    finally:
        await connection.close()
    return {row["name"]: row["value"] for row in sorted(rows)}


SERVER_SETTINGS = (
    "server_version",
    "shared_buffers",
    "huge_pages",
    "max_parallel_workers_per_gather",
    "work_mem",
)


def _chosen(label: str, only: list[str] | None) -> bool:
    """Whether `--only` (any of its parts in the label) keeps this query; all without it."""
    return not only or any(part in label for part in only)


async def main_async(args: argparse.Namespace) -> None:
    dataset = None if args.reload else await existing_dataset(args.events)
    if dataset is None:
        print(f"loading {args.events:,} events over {DAYS} days ...", flush=True)
        dataset = await load(args.events)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "postgres": await server_settings(),
        "dataset": {k: v for k, v in dataset.items() if k != "email"},
        "queries": await bench(dataset, args.runs, args.only),
    }
    print("\nPostgreSQL: " + ", ".join(f"{k} {v}" for k, v in results["postgres"].items()))
    print(f"{'query':<46} {'cold p50/p95 ms':>18} {'warm p50/p95 ms':>16}  target")
    for label, figures in results["queries"].items():
        if "cold_p50_ms" not in figures:
            continue
        target = {"rollups": "p95 ≤ 50 ms", "raw": "≤ 1 s"}.get(figures["kind"], "")
        cold = f"{figures['cold_p50_ms']:.1f} / {figures['cold_p95_ms']:.1f}"
        warm = "-"
        if "warm_p50_ms" in figures:
            warm = f"{figures['warm_p50_ms']:.1f} / {figures['warm_p95_ms']:.1f}"
        print(f"{label:<46} {cold:>18} {warm:>16}  {target}")
    if args.only:
        return  # a partial run: printed, not written
    accuracy = results["queries"]["unique_users_accuracy"]
    print(
        f"\nunique users over 30 days: {accuracy['estimate']:,.0f} from rollups against "
        f"{accuracy['exact']:,} exact ({accuracy['error_percent']:.2f} % error; target ≤ 2 %); "
        f"COUNT DISTINCT over raw rows took {accuracy['exact_count_distinct_ms']:,.0f} ms"
    )
    print(
        f"load: COPY {dataset['copy_events_per_s']:,.0f} events/s, "
        f"rollups {dataset['rollup_events_per_s']:,.0f} events/s"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--runs", type=int, default=30, help="cold runs per rollup query (a third for raw ones)"
    )
    parser.add_argument("--reload", action="store_true", help="load the dataset again")
    parser.add_argument(
        "--only", action="append", help="time only queries whose label holds this (repeatable)"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
