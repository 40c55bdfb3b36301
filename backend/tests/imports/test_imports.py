"""File imports in both storage modes: rows streamed in, stored and rolled up as ingest stores
them, bad rows reported by line, the job's progress readable while it runs."""

import asyncio
import gzip
import random
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from pulseboard.imports.parsing import LineSplitter, read_rows
from pulseboard.models import DataSource, Event, ImportFormat
from tests.factories import (
    Actor,
    add_member,
    create_actor,
    create_organization,
    create_project,
    read_session,
)
from tests.ingest.conftest import count_rows, rollup_count

HEADER = "event,distinct_id,session_id,timestamp,page_url,referrer,uuid,plan\n"


@pytest.fixture
async def source(client: httpx.AsyncClient, owner: Actor, project: dict[str, Any]) -> str:
    return await create_source(client, owner, project, "import")


async def create_source(
    client: httpx.AsyncClient, actor: Actor, project: dict[str, Any], kind: str
) -> str:
    response = await client.post(
        f"/api/v1/projects/{project['id']}/sources/",
        json={"name": f"Backfill ({kind})", "kind": kind},
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    source_id: str = response.json()["id"]
    return source_id


def imports_url(project: dict[str, Any], source_id: str) -> str:
    return f"/api/v1/projects/{project['id']}/sources/{source_id}/imports"


async def upload(
    client: httpx.AsyncClient,
    actor: Actor,
    project: dict[str, Any],
    source_id: str,
    content: bytes | AsyncIterator[bytes],
    content_type: str = "text/csv",
    **headers: str,
) -> httpx.Response:
    return await client.post(
        imports_url(project, source_id),
        content=content,
        headers={**actor.headers, "Content-Type": content_type, **headers},
    )


def ago(**delta: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(**delta)


def csv_rows(count: int, when: datetime, *, with_uuids: bool = False) -> str:
    lines = [
        f"pageview,user-{i % 7},s-{i % 3},{(when + timedelta(minutes=i)).isoformat()},"
        f"https://shop.example.com/p/{i % 4},https://www.google.com/,"
        f"{uuid.uuid5(uuid.NAMESPACE_URL, str(i)) if with_uuids else ''},pro\n"
        for i in range(count)
    ]
    return HEADER + "".join(lines)


async def stored_events(app: FastAPI) -> list[Event]:
    async with read_session(app) as session:
        return list((await session.execute(select(Event).order_by(Event.timestamp))).scalars())


async def test_a_csv_import_is_stored_rolled_up_and_counted(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any], source: str
) -> None:
    response = await upload(client, owner, project, source, csv_rows(30, ago(hours=5)).encode())

    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "done"
    assert (job["rows_total"], job["rows_accepted"], job["rows_rejected"]) == (30, 30, 0)
    assert job["errors"] == []
    assert job["format"] == "csv"
    assert job["finished_at"] is not None
    assert await count_rows(app) == 30
    for granularity in (60, 3600, 86400):
        assert await rollup_count(app, granularity) == 30
    assert await rollup_count(app, dimension="path", value="/p/0") == 8
    first = (await stored_events(app))[0]
    assert first.properties == {"plan": "pro"}
    assert (first.distinct_id, first.session_id, first.path) == ("user-0", "s-0", "/p/0")
    assert first.referrer_domain == "google.com"
    assert str(first.source_id) == source

    listed = await client.get(imports_url(project, source), headers=owner.headers)
    assert [j["id"] for j in listed.json()] == [job["id"]]
    one = await client.get(f"{imports_url(project, source)}/{job['id']}", headers=owner.headers)
    assert one.json() == job
    async with read_session(app) as session:
        counted = await session.get(DataSource, uuid.UUID(source))
    assert counted is not None
    assert counted.events_count == 30


async def test_an_ndjson_import_takes_old_timestamps(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any], source: str
) -> None:
    old = ago(days=200)
    lines = [
        {
            "event": "signup",
            "distinct_id": f"user-{i}",
            "timestamp": (old + timedelta(hours=i)).isoformat(),
            "properties": {"plan": "pro", "seats": i},
        }
        for i in range(12)
    ]
    body = b"\n".join(orjson.dumps(line) for line in lines) + b"\n\n"

    response = await upload(client, owner, project, source, body, "application/x-ndjson")

    assert response.status_code == 201, response.text
    assert (response.json()["rows_accepted"], response.json()["format"]) == (12, "ndjson")
    events = await stored_events(app)
    assert [e.timestamp for e in events] == [old + timedelta(hours=i) for i in range(12)]
    assert events[3].properties == {"plan": "pro", "seats": 3}
    assert await rollup_count(app, 86400, event="signup") == 12
    assert await rollup_count(app, 3600, event="signup") == 12


async def test_bad_rows_are_skipped_and_reported_by_line(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any], source: str
) -> None:
    good = ago(days=1).isoformat()
    body = "".join(
        [
            HEADER,  # line 1
            f"pageview,u1,s1,{good},https://a.example.com/,,,\n",  # 2: good
            f",u1,s1,{good},https://a.example.com/,,,\n",  # 3: no event name
            "pageview,u1,s1,last tuesday,,,,\n",  # 4
            f"pageview,u1,s1,{ago(days=4000).isoformat()},,,,\n",  # 5: over ten years old
            f"pageview,u1,s1,{ago(hours=-3).isoformat()},,,,\n",  # 6: three hours ahead
            f"pageview,u1,s1,{good},,,not-a-uuid,\n",  # 7
            "\n",  # 8: blank, skipped
            f"pageview,u1,s1,{good},,,,,surplus\n",  # 9
            f"{'x' * 201},u1,s1,{good},,,,\n",  # 10
            "pageview,u1,s1,,,,,\n",  # 11: no timestamp
            f'pageview,u2,s1,{good},,,,"multi\nline"\n',  # 12-13: good, one row on two lines
            f"pageview,u3,s1,{good},,,,",  # 14: good, no final newline
        ]
    ).encode()

    response = await upload(client, owner, project, source, body)

    assert response.status_code == 201, response.text
    job = response.json()
    assert (job["rows_total"], job["rows_accepted"], job["rows_rejected"]) == (11, 3, 8)
    reasons = {error["row"]: error["reason"] for error in job["errors"]}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 9, 10, 11]
    assert reasons[3].startswith("event:")
    assert "datetime" in reasons[4]
    assert "older than 3653 days" in reasons[5]
    assert "60 minutes ahead" in reasons[6]
    assert reasons[7].startswith("uuid:")
    assert reasons[9] == "has 9 fields; the header has 8"
    assert "201 characters" in reasons[10]
    assert reasons[11] == "timestamp: is required in an import"
    assert await count_rows(app) == 3
    stored = {e.distinct_id: e.properties for e in await stored_events(app)}
    assert stored == {"u1": {}, "u2": {"plan": "multi\nline"}, "u3": {}}

    ndjson = b'{"event": "a", "timestamp": "%s"}\n{"event": \n[1, 2]\n' % good.encode()
    second = await upload(client, owner, project, source, ndjson, "application/x-ndjson")
    assert second.status_code == 201
    errors = second.json()["errors"]
    assert [e["row"] for e in errors] == [2, 3]
    assert errors[0]["reason"].startswith("is not valid JSON")
    assert errors[1]["reason"] == "is not a JSON object"


async def test_only_the_first_hundred_errors_are_kept(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any], source: str
) -> None:
    body = HEADER + "pageview,u1,s1,never,,,,\n" * 250
    response = await upload(client, owner, project, source, body.encode())
    job = response.json()
    assert (job["rows_total"], job["rows_rejected"], len(job["errors"])) == (250, 250, 100)
    assert job["errors"][-1]["row"] == 101


async def test_a_reimport_with_uuids_adds_nothing(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any], source: str
) -> None:
    body = csv_rows(40, ago(days=30), with_uuids=True).encode()
    for _ in range(2):
        response = await upload(client, owner, project, source, body)
        assert response.status_code == 201
        assert response.json()["rows_accepted"] == 40

    assert await count_rows(app) == 40
    assert await rollup_count(app) == 40
    assert await rollup_count(app, 60) == 40
    async with read_session(app) as session:
        counted = await session.get(DataSource, uuid.UUID(source))
    assert counted is not None
    assert counted.events_count == 40


async def test_a_gzipped_upload(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any], source: str
) -> None:
    text = csv_rows(25, ago(days=3)).encode()
    # Two gzip members, as `cat a.gz b.gz` makes: the second part holds rows 16 to 25.
    cut = text.index(b"\n", text.index(b"pageview,user-0,s-0,", 2000)) + 1
    body = gzip.compress(text[:cut]) + gzip.compress(text[cut:])

    response = await upload(client, owner, project, source, body, **{"Content-Encoding": "gzip"})

    assert response.status_code == 201, response.text
    assert response.json()["rows_accepted"] == 25
    assert await count_rows(app) == 25

    broken = await upload(
        client, owner, project, source, gzip.compress(text)[:-20], **{"Content-Encoding": "gzip"}
    )
    assert broken.status_code == 400
    assert broken.json()["code"] == "malformed_body"
    assert broken.json()["import"]["status"] == "failed"
    assert await count_rows(app) == 25 + broken.json()["import"]["rows_accepted"]


async def test_refusals(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any], source: str
) -> None:
    body = csv_rows(3, ago(days=1)).encode()
    server = await create_source(client, owner, project, "server")
    wrong_kind = await upload(client, owner, project, server, body)
    assert wrong_kind.status_code == 409
    assert wrong_kind.json()["code"] == "not_an_import_source"

    organization = await create_organization(client, owner, "Team")
    team_project = await create_project(client, owner, organization)
    team_source = await create_source(client, owner, team_project, "import")
    viewer = await create_actor(client, "viewer")
    await add_member(client, organization, owner, viewer, "viewer")
    as_viewer = await upload(client, viewer, team_project, team_source, body)
    assert as_viewer.status_code == 403
    listed = await client.get(imports_url(team_project, team_source), headers=viewer.headers)
    assert listed.status_code == 200
    assert listed.json() == []
    stranger = await create_actor(client, "stranger")
    assert (await upload(client, stranger, project, source, body)).status_code == 404

    json_body = await upload(client, owner, project, source, b"{}", "application/json")
    assert json_body.status_code == 415
    brotli = await upload(client, owner, project, source, body, **{"Content-Encoding": "br"})
    assert brotli.status_code == 415
    latin1 = await upload(client, owner, project, source, "event\ncafé\n".encode("latin-1"))
    assert latin1.status_code == 400
    assert "UTF-8" in latin1.json()["detail"]
    no_event = await upload(client, owner, project, source, b"name,timestamp\nx,y\n")
    assert no_event.status_code == 422
    assert no_event.json()["code"] == "invalid_file"
    assert await count_rows(app) == 0


async def test_a_file_over_the_cap_is_refused_and_stores_only_what_it_reports(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any], source: str
) -> None:
    app.state.pulseboard.settings.ingest_max_import_bytes = 300_000
    body = csv_rows(3000, ago(days=10)).encode()  # about 470 KB
    assert len(body) > 300_000

    declared = await upload(client, owner, project, source, body)
    assert declared.status_code == 413
    assert declared.json()["code"] == "payload_too_large"
    assert "import" not in declared.json()  # refused from Content-Length, before any row

    streamed = await upload(client, owner, project, source, chunked(body, 64 * 1024))
    assert streamed.status_code == 413
    job = streamed.json()["import"]
    assert job["status"] == "failed"
    assert "over the limit of 300000 bytes" in job["failure"]
    assert 1000 <= job["rows_accepted"] < 3000
    assert await count_rows(app) == job["rows_accepted"]
    listed = await client.get(imports_url(project, source), headers=owner.headers)
    assert [j["status"] for j in listed.json()] == ["failed"]

    # A small gzip that inflates past the cap is stopped there, not inflated whole.
    bomb = gzip.compress(HEADER.encode() + b"0" * 50_000_000)
    inflated = await upload(client, owner, project, source, bomb, **{"Content-Encoding": "gzip"})
    assert inflated.status_code == 413
    assert inflated.json()["import"]["rows_total"] == 0


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_progress_is_readable_while_the_import_runs(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any], source: str
) -> None:
    half_sent, resume = asyncio.Event(), asyncio.Event()
    text = csv_rows(5000, ago(days=5)).encode()  # a row a minute
    middle = text.index(b"\n", len(text) // 2) + 1

    async def body() -> AsyncIterator[bytes]:
        yield text[:middle]
        half_sent.set()
        await resume.wait()
        yield text[middle:]

    posting = asyncio.create_task(upload(client, owner, project, source, body()))
    await asyncio.wait_for(half_sent.wait(), 10)
    running: dict[str, Any] = {}
    for _ in range(100):  # the rows before the pause are published in chunks of 1000
        jobs = (await client.get(imports_url(project, source), headers=owner.headers)).json()
        if jobs and jobs[0]["rows_accepted"] >= 2000:
            running = jobs[0]
            break
        await asyncio.sleep(0.05)
    resume.set()
    response = await posting

    assert running["status"] == "running"
    assert running["finished_at"] is None
    assert running["rows_accepted"] % 1000 == 0
    assert await count_rows(app) == 5000
    assert response.json()["rows_accepted"] == 5000


async def parsed_in_chunks(text: str) -> list[tuple[int, dict[str, Any] | None]]:
    """The rows of a CSV file as (line, values), the same whatever size its network chunks are."""
    data = text.encode()
    every: list[list[tuple[int, dict[str, Any] | None]]] = []
    for size in (1, 2, 3, 7, len(data)):
        every.append(
            [
                (row.line, row.values)
                async for rows in read_rows(
                    chunked(data, size), ImportFormat.CSV, gzipped=False, limit=1000
                )
                for row in rows
            ]
        )
    assert all(parsed == every[-1] for parsed in every), every
    return every[-1]


async def test_rows_that_span_network_chunks_parse_whole() -> None:
    text = '\ufeffevent,note\r\nview,"caf\u00e9\r\ntwo, ""quoted"""\r\n\r\nclick,plain\r\n'
    assert await parsed_in_chunks(text) == [
        (2, {"event": "view", "properties": {"note": 'caf\u00e9\r\ntwo, "quoted"'}}),
        (5, {"event": "click", "properties": {"note": "plain"}}),
    ]


async def test_bare_carriage_returns_end_csv_lines_even_across_chunks() -> None:
    # As Excel for Mac saves a sheet: "\r" alone ends a line; "\r\n" is still one line end.
    text = 'event,note\rview,"a\rb"\r\rclick,plain\r\nsignup,last'
    assert await parsed_in_chunks(text) == [
        (2, {"event": "view", "properties": {"note": "a\rb"}}),
        (5, {"event": "click", "properties": {"note": "plain"}}),
        (6, {"event": "signup", "properties": {"note": "last"}}),
    ]


def test_csv_lines_end_at_lf_crlf_or_a_bare_cr_wherever_the_chunks_are_cut() -> None:
    def expected(text: str) -> list[str]:
        lines, line = [], ""
        for at, char in enumerate(text):
            line += char
            if char == "\n" or (char == "\r" and text[at + 1 : at + 2] != "\n"):
                lines.append(line)
                line = ""
        return [*lines, line] if line else lines

    rng = random.Random(8)
    for _ in range(2000):
        pieces = ["a", ",", '"', "\r", "\n", "\r\n"]
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(40)))
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randrange(5))))
        splitter, lines, start = LineSplitter(bare_cr=True), [], 0
        for cut in [*cuts, len(text)]:
            lines += splitter.feed(text[start:cut])
            start = cut
        assert lines + splitter.finish() == expected(text), (text, cuts)


async def test_a_field_past_the_csv_modules_limit_is_one_bad_row(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any], source: str
) -> None:
    # csv stops at 131,072 characters a field and read on from inside the field: its lines
    # became rows of their own, and a quote in it opened a field that swallowed those after.
    good = ago(days=1).isoformat()
    long_note = "\n".join(["x" * 999, 'a "quote'] * 150)  # about 151 KB over 300 lines
    body = "".join(
        [
            HEADER,
            f"pageview,u1,s1,{good},,,,\n",
            f'pageview,u2,s1,{good},,,,"{long_note.replace(chr(34), chr(34) * 2)}"\n',
            f"pageview,u3,s1,{good},,,,\n",
        ]
    ).encode()

    response = await upload(client, owner, project, source, chunked(body, 64 * 1024))

    assert response.status_code == 201, response.text
    job = response.json()
    assert (job["rows_total"], job["rows_accepted"], job["rows_rejected"]) == (3, 2, 1)
    assert [error["row"] for error in job["errors"]] == [3]
    assert "properties" in job["errors"][0]["reason"]
    assert sorted(e.distinct_id for e in await stored_events(app)) == ["u1", "u3"]


async def test_media_type_parameters(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any], source: str
) -> None:
    body = csv_rows(2, ago(days=1)).encode()
    for content_type in (
        "text/csv; header=present",
        'text/csv; charset="UTF-8"; header=present',
        "text/csv;header=present;charset=utf-8",
    ):
        accepted = await upload(client, owner, project, source, body, content_type)
        assert accepted.status_code == 201, (content_type, accepted.text)
    absent = await upload(client, owner, project, source, body, "text/csv; header=absent")
    assert absent.status_code == 415
    assert "header row" in absent.json()["detail"]
    latin = await upload(
        client, owner, project, source, body, "text/csv; header=present; charset=latin-1"
    )
    assert latin.status_code == 415
    assert "latin-1" in latin.json()["detail"]
    assert await count_rows(app) == 6


async def test_a_large_file_imports_in_bounded_memory(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any], source: str
) -> None:
    # Rows of about 2 KB (a long property), so that the file passes 10 MB in few events.
    rows, start, size, padding = 5_000, ago(days=4), 0, "x" * 1900

    async def body() -> AsyncIterator[bytes]:
        # Made as it is sent, so that the test itself never holds the file either.
        nonlocal size
        buffer = bytearray(HEADER.encode())
        for i in range(rows):
            buffer += (
                f"pageview,user-{i % 997},session-{i % 301},"
                f"{(start + timedelta(seconds=i * 50)).isoformat()},"
                f"https://shop.example.com/products/item-{i % 500}?utm_source=newsletter,"
                f"https://www.google.com/search?q=item,{uuid.uuid4()},pro-{i % 5}-{padding}\n"
            ).encode()
            if len(buffer) >= 64 * 1024 or i == rows - 1:
                size += len(buffer)
                yield bytes(buffer)
                buffer.clear()

    # Python's own allocations, the in-process worker's included; reading the file whole would
    # add twice its size (bytes, then text) on top.
    tracemalloc.start()
    began = time.perf_counter()
    try:
        response = await upload(client, owner, project, source, body())
        elapsed = time.perf_counter() - began
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert response.status_code == 201, response.text
    assert response.json()["rows_accepted"] == rows
    assert await count_rows(app) == rows
    assert size > 10_000_000
    print(
        f"\n{rows} rows, {size / 1e6:.1f} MB in {elapsed:.1f} s under tracemalloc "
        f"({rows / elapsed:,.0f} rows/s); peak traced memory {peak / 1e6:.1f} MB"
    )
    assert peak < 30_000_000
