"""Live WebSocket benchmarks (production mode: PostgreSQL, Redis, `pulseboard worker`).

1. latency — CLIENTS sockets held by LOAD_PROCESSES separate processes, spread over PROJECTS
             projects, on `pulseboard serve --workers 2`, while RATE events/s are ingested in
             batches of BATCH; latency from the ingest's 202 to each client's receipt, p50 / p95
             / p99; reference: the ingest request's own round trip in the same run.
2. idle    — IDLE sockets held open on one API process (`--workers 1`); the process's memory per
             connection (RSS after minus before, divided by the sockets held).

Needs PostgreSQL and Redis on 127.0.0.1 (as `.ci/run` leaves them). Uses the database
`pulseboard_bench_live` and Redis db 12. Run: backend/.venv/bin/python bench/live.py
[--seconds N] [--clients N] [--idle N]. Writes bench/results/live.json. Traffic goes to
127.0.0.1 only, bounded in time and count.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import (
    PULSEBOARD,
    ROOT,
    SECRET,
    postgres_url,
    recreate_database,
    register_user,
)

sys.path.insert(0, str(ROOT / "backend"))

import httpx
import orjson
from redis.asyncio import Redis
from websockets.asyncio.client import connect

RESULTS = ROOT / "bench" / "results" / "live.json"
BENCH_DB = "pulseboard_bench_live"
DATABASE_URL = postgres_url(BENCH_DB)
REDIS_URL = "redis://127.0.0.1:6379/12"
PROJECTS = 10
LOAD_PROCESSES = 4
RATE = 1000  # events/s
BATCH = 20  # events per ingest request: 50 requests/s
CONNECT_CONCURRENCY = 50  # handshakes in flight per load process


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    env.update(
        PULSEBOARD_ENVIRONMENT="production",
        PULSEBOARD_DATABASE_URL=DATABASE_URL,
        PULSEBOARD_REDIS_URL=REDIS_URL,
        PULSEBOARD_SECRET_KEY=SECRET,
        # Tokens outlive the run, so that no socket is closed for an expired one.
        PULSEBOARD_ACCESS_TOKEN_MINUTES="120",
    )
    return env


async def reset() -> None:
    await recreate_database(BENCH_DB)
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()


@contextmanager
def process(command: list[str], directory: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    log = (directory / f"{name}.log").open("wb")
    child = subprocess.Popen(
        command, cwd=directory, env=environment(), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield child
    finally:
        child.terminate()
        child.wait(timeout=30)
        log.close()


@contextmanager
def server(directory: Path, workers: int) -> Iterator[tuple[str, int]]:
    port = 18_000 + os.getpid() % 1000
    command = [PULSEBOARD, "serve", "--port", str(port), "--workers", str(workers)]
    with process(command, directory, f"serve-{workers}") as child:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        else:
            raise RuntimeError(f"server did not start; see {directory}/serve-{workers}.log")
        yield base, child.pid


def accounts(base: str) -> tuple[str, list[tuple[str, str]]]:
    """A user's access token and PROJECTS (project id, write key) pairs."""
    with httpx.Client(base_url=base, timeout=30) as http:
        token = register_user(http)
        headers = {"Authorization": f"Bearer {token}"}
        projects = []
        for i in range(PROJECTS):
            project = http.post("/api/v1/projects/", json={"name": f"p{i}"}, headers=headers)
            projects.append((project.json()["id"], project.json()["write_key"]))
        return token, projects


def ws_url(base: str, project_id: str, token: str) -> str:
    return f"{base.replace('http://', 'ws://')}/api/v1/ws/events/{project_id}?token={token}"


# Load processes: each holds its share of the sockets and reports what it saw.


def hold_sockets(
    base: str,
    token: str,
    project_ids: list[str],
    count: int,
    first: int,
    ready: Any,
    stop: Any,
    results: Any,
) -> None:
    raise_fd_limit()
    results.put(asyncio.run(_hold(base, token, project_ids, count, first, ready, stop)))


async def _hold(
    base: str, token: str, project_ids: list[str], count: int, first: int, ready: Any, stop: Any
) -> dict[str, Any]:
    """Open `count` sockets, then record (batch, receipt time) for every batch seen."""
    receipts: list[tuple[str, float]] = []
    opened = 0
    failures = 0
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def client(index: int) -> None:
        nonlocal opened, failures
        url = ws_url(base, project_ids[(first + index) % len(project_ids)], token)
        try:
            async with gate:
                ws = await connect(url, open_timeout=120, ping_interval=None, max_size=None)
                await ws.recv()  # the snapshot
        except Exception:
            failures += 1
            return
        opened += 1
        seen: set[str] = set()
        async with ws:
            async for raw in ws:
                received = time.time()
                message = orjson.loads(raw)
                if message["type"] != "events":
                    continue
                for event in message["data"]:
                    if event["distinct_id"] not in seen:
                        seen.add(event["distinct_id"])
                        receipts.append((event["distinct_id"], received))

    tasks = [asyncio.create_task(client(i)) for i in range(count)]
    while opened + failures < count:  # noqa: ASYNC110 (counts kept by the client tasks)
        await asyncio.sleep(0.1)
    ready.put((opened, failures))
    while not stop.is_set():  # noqa: ASYNC110 (a multiprocessing event, not an asyncio one)
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"opened": opened, "failures": failures, "receipts": receipts}


def start_load(
    base: str, token: str, project_ids: list[str], total: int
) -> tuple[list[Any], Any, Any, tuple[int, int]]:
    """LOAD_PROCESSES processes holding `total` sockets; returns once all are open (or failed)."""
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Queue(), context.Event(), context.Queue()
    share = total // LOAD_PROCESSES
    workers = [
        context.Process(
            target=hold_sockets,
            args=(base, token, project_ids, share, i * share, ready, stop, results),
        )
        for i in range(LOAD_PROCESSES)
    ]
    for worker in workers:
        worker.start()
    counts = [ready.get(timeout=600) for _ in workers]
    opened = sum(count[0] for count in counts)
    return workers, stop, results, (opened, sum(count[1] for count in counts))


def finish_load(workers: list[Any], stop: Any, results: Any) -> list[dict[str, Any]]:
    stop.set()
    reports = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return reports


# The ingester: an open-loop schedule of RATE events/s, every batch labelled.


async def ingest(base: str, projects: list[tuple[str, str]], seconds: int) -> dict[str, Any]:
    interval = BATCH / RATE
    sent: dict[str, tuple[float, float]] = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def post(index: int) -> None:
            label = f"batch-{index}"
            _, key = projects[index % len(projects)]
            events = [
                {"event": "pageview", "distinct_id": label, "page_url": f"https://x.io/{i}"}
                for i in range(BATCH)
            ]
            started = time.time()
            response = await http.post(
                "/api/v1/events/ingest", json={"events": events}, headers={"X-API-Key": key}
            )
            if response.status_code == 202:
                sent[label] = (started, time.time())

        tasks = []
        start = time.monotonic()
        for index in range(int(seconds * RATE / BATCH)):
            await asyncio.sleep(max(0.0, start + index * interval - time.monotonic()))
            tasks.append(asyncio.create_task(post(index)))
        await asyncio.gather(*tasks)
    return {"sent": sent}


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


def bench_latency(directory: Path, seconds: int, clients: int) -> dict[str, Any]:
    asyncio.run(reset())
    subprocess.run([PULSEBOARD, "migrate"], env=environment(), check=True, capture_output=True)
    with (
        process([PULSEBOARD, "worker", "--name", "bench"], directory, "worker"),
        server(directory, workers=2) as (base, _),
    ):
        token, projects = accounts(base)
        workers, stop, results, (opened, failures) = start_load(
            base, token, [p for p, _ in projects], clients
        )
        ingested = asyncio.run(ingest(base, projects, seconds))["sent"]
        time.sleep(2)  # the last batches' way to the clients
        reports = finish_load(workers, stop, results)
    latencies = []
    early = 0
    expected = 0
    for label in ingested:
        index = int(label.removeprefix("batch-"))
        expected += sum(1 for j in range(clients) if j % PROJECTS == index % PROJECTS)
    for report in reports:
        for label, received in report["receipts"]:
            if label in ingested:
                delay = received - ingested[label][1]
                early += delay < 0  # stored and sent before the client read its 202
                latencies.append(max(0.0, delay) * 1000)
    round_trips = [(done - started) * 1000 for started, done in ingested.values()]
    return {
        "clients": opened,
        "connect_failures": failures,
        "projects": PROJECTS,
        "load_processes": LOAD_PROCESSES,
        "events_per_s": RATE,
        "seconds": seconds,
        "batches_accepted": len(ingested),
        "receipts": len(latencies),
        "receipts_expected": expected,
        "receipts_before_202": early,
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "reference_ingest_round_trip_p50_ms": percentile(round_trips, 0.50),
        "reference_ingest_round_trip_p95_ms": percentile(round_trips, 0.95),
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def bench_idle(directory: Path, count: int) -> dict[str, Any]:
    asyncio.run(reset())
    subprocess.run([PULSEBOARD, "migrate"], env=environment(), check=True, capture_output=True)
    with server(directory, workers=1) as (base, pid):
        token, projects = accounts(base)
        # Warm: one socket per project, so the feeds and code paths exist before "before".
        warm, warm_stop, warm_results, _ = start_load(base, token, [p for p, _ in projects], 40)
        time.sleep(1)
        before = rss_kib(pid)
        started = time.monotonic()
        workers, stop, results, (opened, failures) = start_load(
            base, token, [p for p, _ in projects], count
        )
        connect_seconds = time.monotonic() - started
        time.sleep(3)
        after = rss_kib(pid)
        finish_load(workers, stop, results)
        finish_load(warm, warm_stop, warm_results)
    return {
        "connections": opened,
        "connect_failures": failures,
        "connect_seconds": connect_seconds,
        "rss_before_mib": before / 1024,
        "rss_after_mib": after / 1024,
        "kib_per_connection": (after - before) / max(opened, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="length of the ingest run")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--only", choices=["latency", "idle"], action="append")
    args = parser.parse_args()
    raise_fd_limit()
    phases = args.only or ["latency", "idle"]
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with tempfile.TemporaryDirectory(prefix="pulseboard-bench-live-") as tmp:
        if "latency" in phases:
            results["latency"] = bench_latency(Path(tmp), args.seconds, args.clients)
        if "idle" in phases:
            results["idle"] = bench_idle(Path(tmp), args.idle)

    rows = []
    if "latency" in results:
        lat = results["latency"]
        rows += [
            (
                f"ingest 202 → client, {lat['clients']} clients, {RATE} events/s",
                f"{lat['p50_ms']:.0f} / {lat['p95_ms']:.0f} / {lat['p99_ms']:.0f} ms",
                "p95 ≤ 200",
                f"ingest round trip p50 {lat['reference_ingest_round_trip_p50_ms']:.0f} ms",
            ),
            (
                "  receipts / expected",
                f"{lat['receipts']:,} / {lat['receipts_expected']:,}",
                "all",
                f"{lat['connect_failures']} connect failures",
            ),
        ]
    if "idle" in results:
        idle = results["idle"]
        rows += [
            (
                "idle connections on one API process",
                f"{idle['connections']:,}",
                "≥ 10,000",
                f"{idle['connect_failures']} failures, {idle['connect_seconds']:.0f} s to open",
            ),
            (
                "  memory per connection",
                f"{idle['kib_per_connection']:.1f} KiB",
                "",
                f"RSS {idle['rss_before_mib']:.0f} → {idle['rss_after_mib']:.0f} MiB",
            ),
        ]
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'measured':>22}  {'target':>10}  reference (same run)")
    for what, measured, target, reference in rows:
        print(f"{what:<{width}}  {measured:>22}  {target:>10}  {reference}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
