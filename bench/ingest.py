"""Ingest benchmarks, each figure beside its reference from the same run.

1. api       — events accepted at the API (production mode: PostgreSQL + Redis bus, 2 API
               processes), batches of 100, loaded with wrk; reference: the same server's
               answer to a request that does nothing (the framework's floor).
2. pipeline  — end to end into PostgreSQL: batches waiting in the Redis stream, drained by the
               real worker (raw rows + rollups + acks) in 1 and in 2 processes, as that many
               `pulseboard worker` would; reference: a raw COPY of the same rows into an
               unpartitioned copy of the events table. Also the design's ceiling: the same
               two workers with the rollups left out (raw rows, uuid claims, source counters
               and acks only).
3. embedded  — `pulseboard serve` on SQLite with the in-process bus: every 202 is a commit of the
               raw rows, rolled up within 250 ms; the throughput counts the time an API
               read then takes to have the last of them rolled up.

The API and embedded figures are medians of three wrk runs against the same server (`--runs`),
each run kept in the JSON: one 10-s run on this 2-core machine, which the load generator shares,
can be 20 % off the next.

Needs PostgreSQL and Redis on 127.0.0.1 (as `.ci/run` leaves them) and `wrk`
(`apt-get install wrk`). Run: backend/.venv/bin/python bench/ingest.py [--seconds N]
Writes bench/results/ingest.json. Traffic goes to 127.0.0.1 only, bounded in time and count.
"""

import argparse
import asyncio
import functools
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import PULSEBOARD, ROOT, SECRET, recreate_database, register_user

sys.path.insert(0, str(ROOT / "backend"))

import asyncpg
import httpx
import orjson
from redis.asyncio import Redis

from pulseboard.core.db import create_engine, create_sessionmaker
from pulseboard.core.redis_bus import INGEST_STREAM, RedisStreamBus
from pulseboard.core.runtime import tune_gc
from pulseboard.core.settings import Settings
from pulseboard.pipeline.partitions import Partitions
from pulseboard.pipeline.worker import Worker

RESULTS = ROOT / "bench" / "results" / "ingest.json"
BENCH_DB = "pulseboard_bench"
REDIS_URL = "redis://127.0.0.1:6379/14"
STREAM = "bench:ingest"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
BATCH = 100
PIPELINE_EVENTS = 200_000


def request_events(rng: random.Random, count: int = BATCH) -> list[dict[str, Any]]:
    """A browser's batch: pageviews and a few clicks over a site of 200 pages."""
    return [
        {
            "event": rng.choice(["pageview"] * 8 + ["click", "signup"]),
            "distinct_id": f"user-{rng.randrange(50_000)}",
            "session_id": f"session-{rng.randrange(100_000)}",
            "page_url": f"https://shop.example.com/p/{rng.randrange(200)}"
            + rng.choice(["", "", "?utm_source=newsletter", "?utm_source=twitter"]),
            "referrer": rng.choice(
                ["", "https://www.google.com/", "https://news.ycombinator.com/"]
            ),
            "properties": {"plan": rng.choice(["free", "pro"]), "value": rng.randrange(100)},
        }
        for _ in range(count)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def reset_database() -> str:
    await recreate_database(BENCH_DB)
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    return f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}"


@contextmanager
def server(env: dict[str, str], workers: int, cwd: Path) -> Iterator[str]:
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    full_env.update(env)
    log = (cwd / "serve.log").open("wb")
    process = subprocess.Popen(
        [PULSEBOARD, "serve", "--port", str(port), "--workers", str(workers)],
        cwd=cwd,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        else:
            raise RuntimeError(f"server did not start; see {cwd / 'serve.log'}")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def project_key(base: str) -> tuple[str, str]:
    """A new user's access token and the write key of a new project of theirs."""
    with httpx.Client(base_url=base, timeout=30) as http:
        token = register_user(http)
        headers = {"Authorization": f"Bearer {token}"}
        project = http.post("/api/v1/projects/", json={"name": "bench"}, headers=headers)
        key: str = project.json()["write_key"]
        return token, key


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    latency = {
        percent: _millis(value, unit)
        for percent, value, unit in re.findall(
            r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M
        )
    }
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": latency["50"],
        "p99_ms": latency["99"],
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def _millis(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def post_script(directory: Path, key: str, bodies: int = 50) -> Path:
    """A wrk script cycling through pre-made batches, so that not every request is identical."""
    rng = random.Random(1)
    lines = ["local bodies = {}"]
    for i in range(bodies):
        body = json.dumps({"events": request_events(rng)})
        lines.append(f"bodies[{i + 1}] = {json.dumps(body)}")
    lines += [
        "local i = 0",
        'wrk.method = "POST"',
        'wrk.headers["Content-Type"] = "application/json"',
        f'wrk.headers["X-API-Key"] = "{key}"',
        f'wrk.headers["User-Agent"] = "{CHROME}"',
        "request = function()",
        f"  i = (i % {bodies}) + 1",
        "  return wrk.format(nil, nil, nil, bodies[i])",
        "end",
    ]
    script = directory / "post.lua"
    script.write_text("\n".join(lines))
    return script


def fresh_database() -> str:
    """The bench database made again, empty, and migrated; its URL."""
    database = asyncio.run(reset_database())
    subprocess.run(
        [PULSEBOARD, "migrate"],
        env={**os.environ, "PULSEBOARD_DATABASE_URL": database, "PULSEBOARD_SECRET_KEY": SECRET},
        check=True,
        capture_output=True,
    )
    return database


def bench_api(seconds: int, runs: int, directory: Path) -> dict[str, Any]:
    env = {
        "PULSEBOARD_ENVIRONMENT": "production",
        "PULSEBOARD_DATABASE_URL": fresh_database(),
        "PULSEBOARD_REDIS_URL": REDIS_URL,
        "PULSEBOARD_SECRET_KEY": SECRET,
    }
    with server(env, workers=2, cwd=directory) as base:
        script = post_script(directory, project_key(base)[1])
        wrk(f"{base}/api/v1/events/ingest", 2, 32, script)  # warm up caches and connections

        def run() -> dict[str, float]:
            asyncio.run(_drop_ingest_stream())
            ingest = wrk(f"{base}/api/v1/events/ingest", seconds, 32, script)
            return {"events_per_s": ingest["requests_per_s"] * BATCH, **ingest}

        result = repeated(run, runs)
        floor = wrk(f"{base}/api/v1/nothing-here", seconds, 32)
    return {
        **result,
        "reference_empty_requests_per_s": floor["requests_per_s"],
        "reference_empty_p99_ms": floor["p99_ms"],
    }


async def _drop_ingest_stream() -> None:
    """The batches earlier runs put on the bus (no worker drains it here, and a run grows it by
    about 800 MB), so that each run starts from the same empty stream."""
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.delete(INGEST_STREAM)
    finally:
        await redis.aclose()


def repeated(run: Callable[[], dict[str, float]], times: int) -> dict[str, Any]:
    """Each figure's median over `times` runs (the failed requests' sum), every run kept beside:
    on a 2-core machine shared with the load generator one 10-s run can be 20 % off the next."""
    results = [run() for _ in range(times)]
    summary: dict[str, Any] = {
        key: statistics.median(result[key] for result in results) for key in results[0]
    }
    summary["non_2xx"] = sum(result["non_2xx"] for result in results)
    summary["runs"] = results
    return summary


def spread(result: dict[str, Any], key: str, template: str) -> str:
    """The lowest and highest of a figure over the runs, as the table shows them."""
    values = [run[key] for run in result["runs"]]
    return template.format(min(values)) + "-" + template.format(max(values))


def pipeline_messages(project_id: uuid.UUID, source_id: uuid.UUID) -> list[bytes]:
    """What the API would have published for PIPELINE_EVENTS events, as bus payloads."""
    from pulseboard.ingest.enrich import page_parts, referrer_domain
    from pulseboard.ingest.service import new_uuids

    rng = random.Random(2)
    now = datetime.now(UTC)
    messages = []
    for _ in range(PIPELINE_EVENTS // BATCH):
        items = []
        for event, event_id in zip(request_events(rng), new_uuids(BATCH), strict=True):
            page = page_parts(event["page_url"])
            items.append(
                {
                    "id": event_id,
                    # Live traffic: events of the last minute, as the API stamps them.
                    "timestamp": now - timedelta(milliseconds=rng.randrange(60_000)),
                    "event_name": event["event"],
                    "distinct_id": event["distinct_id"],
                    "session_id": event["session_id"],
                    "properties": event["properties"],
                    "page_url": event["page_url"],
                    "host": page.host,
                    "path": page.path,
                    "referrer": event["referrer"] or None,
                    "referrer_domain": referrer_domain(event["referrer"] or None, page.host),
                    "utm_source": page.utm_source,
                    "utm_medium": None,
                    "utm_campaign": None,
                    "utm_term": None,
                    "utm_content": None,
                    "browser": "Chrome",
                    "os": "Windows",
                    "device": "desktop",
                    "is_bot": False,
                    "ip_hash": "0" * 64,
                }
            )
        messages.append(
            orjson.dumps(
                {
                    "kind": "events",
                    "project_id": str(project_id),
                    "source_id": str(source_id),
                    "timezone": "UTC",
                    "received_at": now,
                    "items": items,
                }
            )
        )
    return messages


def drain(
    database: str,
    messages: list[bytes],
    workers: int,
    target: Callable[[str, str, Any], None] | None = None,
) -> float:
    """Seconds for `workers` worker processes (as `pulseboard worker` runs, one loop each) to
    store and ack every message already in the stream, timed from when all of them are ready.
    `target(database, name, ready)` runs in each process (picklable; the real worker if None)."""
    asyncio.run(_fill_stream(messages))
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(workers + 1)
    processes = [
        context.Process(target=target or _worker_process, args=(database, f"w{i}", ready))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    ready.wait(timeout=120)
    started = time.perf_counter()
    try:
        asyncio.run(_wait_drained(len(messages), processes))
        return time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
            process.join()


async def _fill_stream(messages: list[bytes]) -> None:
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    bus = RedisStreamBus(redis, stream=STREAM)
    pipe = redis.pipeline(transaction=False)
    for payload in messages:
        pipe.xadd(bus.stream, {"p": payload})
    await pipe.execute()
    await bus.ensure_group()
    await redis.aclose()


async def _wait_drained(count: int, processes: list[Any], limit: float = 600) -> None:
    """Until the group has read and acknowledged `count` entries; an error if a worker process
    ends first, or after `limit` seconds."""
    redis = Redis.from_url(REDIS_URL)
    deadline = time.monotonic() + limit
    try:
        while True:
            (group,) = await redis.xinfo_groups(STREAM)
            if group["entries-read"] == count and group["pending"] == 0:
                return
            if not all(process.is_alive() for process in processes):
                raise RuntimeError("a worker process ended before the stream was drained")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stream was not drained in {limit:.0f} s")
            await asyncio.sleep(0.01)
    finally:
        await redis.aclose()


def _worker_process(
    database: str, name: str, ready: Any, roll_up: Callable[..., Any] | None = None
) -> None:
    """One worker process; with `roll_up`, its stores roll up by that instead of
    `store.roll_up` (a bench of another design, never a mode of the product)."""
    if roll_up is not None:
        from pulseboard.pipeline import store

        store.roll_up = roll_up
    asyncio.run(_worker_loop(database, name, ready))


async def no_rollups(repository: Any, stored: Any) -> None:
    """Rolls up nothing: the worker then stores, claims and acks only, the ceiling of its raw
    path."""


async def _worker_loop(database: str, name: str, ready: Any) -> None:
    tune_gc()  # as `pulseboard worker` does
    redis = Redis.from_url(REDIS_URL)
    settings = Settings.model_validate({"database_url": database, "secret_key": SECRET})
    engine = create_engine(settings)
    partitions = Partitions(engine)
    await partitions.ensure_ahead(datetime.now(UTC).date())
    worker = Worker(
        RedisStreamBus(redis, stream=STREAM),
        create_sessionmaker(engine),
        name=name,
        batch_size=settings.worker_batch_size,  # as `pulseboard worker` runs
        batch_events=settings.worker_batch_events,
        block_ms=100,
        partitions=partitions,
    )
    await asyncio.to_thread(ready.wait, 120)
    await worker.run()  # until the bench terminates the process


async def copy_reference(database: str, messages: list[bytes]) -> float:
    """Seconds for one raw COPY of the same rows into a plain table shaped like `events`."""
    from pulseboard.models import Event
    from pulseboard.pipeline.messages import decode

    columns = [column.name for column in Event.__table__.columns]
    records = []
    for payload in messages:
        batch = decode(payload)
        for item in batch.items:
            row = {
                **item,
                "project_id": batch.project_id,
                "source_id": batch.source_id,
                "received_at": batch.received_at,
                "properties": orjson.dumps(item["properties"]).decode(),
            }
            records.append(tuple(row[c] for c in columns))
    connection = await asyncpg.connect(database)
    try:
        await connection.execute("DROP TABLE IF EXISTS events_copy")
        await connection.execute(
            "CREATE TABLE events_copy (LIKE events INCLUDING DEFAULTS); "
            "ALTER TABLE events_copy ADD PRIMARY KEY (project_id, timestamp, id); "
            "CREATE INDEX ON events_copy (project_id, event_name, timestamp)"
        )
        started = time.perf_counter()
        await connection.copy_records_to_table("events_copy", records=records, columns=columns)
        return time.perf_counter() - started
    finally:
        await connection.close()


def bench_pipeline() -> dict[str, Any]:
    database = fresh_database()
    project_id, source_id = uuid.uuid4(), uuid.uuid4()
    messages = pipeline_messages(project_id, source_id)
    url = database.replace("postgresql://", "postgresql+asyncpg://")
    result: dict[str, Any] = {"events": PIPELINE_EVENTS}
    copy_seconds = asyncio.run(copy_reference(database, messages))
    result["reference_copy_events_per_s"] = PIPELINE_EVENTS / copy_seconds
    for workers in (1, 2):
        fresh_database()
        seconds = drain(url, messages, workers)
        result[f"workers_{workers}_events_per_s"] = PIPELINE_EVENTS / seconds
    best = max(result["workers_1_events_per_s"], result["workers_2_events_per_s"])
    result["ratio_to_copy"] = best / result["reference_copy_events_per_s"]
    # The ceiling of the design: the same two workers with the rollups left out altogether.
    fresh_database()
    seconds = drain(url, messages, 2, functools.partial(_worker_process, roll_up=no_rollups))
    result["raw_only_workers_2_events_per_s"] = PIPELINE_EVENTS / seconds
    result["raw_only_ratio_to_copy"] = (
        result["raw_only_workers_2_events_per_s"] / result["reference_copy_events_per_s"]
    )
    return result


def bench_embedded(seconds: int, runs: int, directory: Path) -> dict[str, Any]:
    data = directory / "embedded"
    env = {"PULSEBOARD_DATA_DIR": str(data)}
    with server(env, workers=1, cwd=directory) as base:
        token, key = project_key(base)
        script = post_script(directory, key)
        wrk(f"{base}/api/v1/events/ingest", 2, 16, script)
        headers = {"Authorization": f"Bearer {token}"}

        def run() -> dict[str, float]:
            ingest = wrk(f"{base}/api/v1/events/ingest", seconds, 16, script)
            # The worker rolls up within 250 ms of the 202; an API read has it roll up at once
            # what it still holds, and that time counts too.
            began = time.perf_counter()
            httpx.get(f"{base}/api/v1/projects/", headers=headers, timeout=60).raise_for_status()
            settle = time.perf_counter() - began
            events = ingest["requests_per_s"] * seconds * BATCH
            return {
                "events_per_s": events / (seconds + settle),
                "settle_ms": settle * 1000,
                "p50_ms": ingest["p50_ms"],
                "p99_ms": ingest["p99_ms"],
                "non_2xx": ingest["non_2xx"],
            }

        result = repeated(run, runs)
        floor = wrk(f"{base}/api/v1/nothing-here", seconds, 16)
    return {**result, "reference_empty_requests_per_s": floor["requests_per_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs of ingest (medians shown)")
    parser.add_argument("--only", choices=["api", "pipeline", "embedded"], action="append")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    phases = args.only or ["api", "pipeline", "embedded"]
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with tempfile.TemporaryDirectory(prefix="pulseboard-bench-") as tmp:
        directory = Path(tmp)
        if "api" in phases:
            results["api"] = bench_api(args.seconds, args.runs, directory)
        if "pipeline" in phases:
            results["pipeline"] = bench_pipeline()
        if "embedded" in phases:
            results["embedded"] = bench_embedded(args.seconds, args.runs, directory)

    rows = []
    if "api" in results:
        api = results["api"]
        rows += [
            (
                "API accepted, Redis bus, batches of 100",
                f"{api['events_per_s']:,.0f} events/s",
                "≥ 100,000",
                f"empty request {api['reference_empty_requests_per_s']:,.0f} req/s",
            ),
            (
                "  latency p50 / p99",
                f"{api['p50_ms']:.1f} / {api['p99_ms']:.1f} ms",
                "p99 < 50",
                f"empty p99 {api['reference_empty_p99_ms']:.1f} ms",
            ),
            (
                f"  each of {len(api['runs'])} runs: events/s, p99",
                spread(api, "events_per_s", "{:,.0f}"),
                "",
                spread(api, "p99_ms", "{:.1f}") + " ms",
            ),
        ]
    if "pipeline" in results:
        pipe = results["pipeline"]
        rows += [
            (
                "End to end into PostgreSQL, 1 worker",
                f"{pipe['workers_1_events_per_s']:,.0f} events/s",
                "",
                f"COPY {pipe['reference_copy_events_per_s']:,.0f} events/s",
            ),
            (
                "End to end into PostgreSQL, 2 workers",
                f"{pipe['workers_2_events_per_s']:,.0f} events/s",
                "≥ 0.6 x COPY",
                f"ratio {pipe['ratio_to_copy']:.2f}",
            ),
            (
                "  ceiling: 2 workers, rollups left out",
                f"{pipe['raw_only_workers_2_events_per_s']:,.0f} events/s",
                "",
                f"ratio {pipe['raw_only_ratio_to_copy']:.2f}",
            ),
        ]
    if "embedded" in results:
        emb = results["embedded"]
        rows += [
            (
                "Embedded (SQLite) end to end",
                f"{emb['events_per_s']:,.0f} events/s",
                "≥ 20,000",
                f"empty request {emb['reference_empty_requests_per_s']:,.0f} req/s",
            ),
            ("  latency p50 / p99", f"{emb['p50_ms']:.1f} / {emb['p99_ms']:.1f} ms", "", ""),
            ("  last rollups, after a run", f"{emb['settle_ms']:.0f} ms", "", ""),
            (
                f"  each of {len(emb['runs'])} runs: events/s, p99",
                spread(emb, "events_per_s", "{:,.0f}"),
                "",
                spread(emb, "p99_ms", "{:.0f}") + " ms",
            ),
        ]
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'measured':>22}  {'target':>14}  reference (same run)")
    for what, measured, target, reference in rows:
        print(f"{what:<{width}}  {measured:>22}  {target:>14}  {reference}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
