"""No input makes a 500: every route of the OpenAPI document, each of its query parameters and
JSON body fields given hostile values one at a time, answers below 500.

A guard for routes to come as much as for those here; a fuzz of about 70,000 requests found the
classes these values stand for (NUL characters, times past a datetime's range, numbers past 64
bits or a double, text that headers cannot carry). Ingest, imports and GraphQL have tests of
their own, and DELETE is left out (it would take the project away from the rest).
"""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
from fastapi import FastAPI

from tests.factories import Actor, ingest, pageview

HOSTILE_TEXT = [
    "",
    " ",
    "x" * 3000,
    "😀",
    "a\\u0000b",
    "-1",
    "18446744073709551616",
    "1e999",
    "NaN",
    "null",
    "[",
    '[{"key": "plan", "op": "gt", "value": 1e999}]',
    '[{"key": "a\\"b", "op": "eq", "value": 18446744073709551616}]',
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2026-02-30T00:00:00Z",
]
HOSTILE_JSON: list[Any] = [
    None,
    2**64,
    -1,
    1e308,
    "",
    "x" * 3000,
    "0001-01-01T00:00:00+01:00",
    [],
    {},
    [[[[[[]]]]]],
    True,
]
SKIPPED = ("/api/v1/events/ingest", "/api/v1/metrics", "/api/graphql", "/imports", "/auth/")


def _operations(app: FastAPI) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in app.openapi()["paths"].items():
        if any(part in path for part in SKIPPED):
            continue
        for method, operation in operations.items():
            if method in ("get", "post", "patch"):
                yield method.upper(), path, operation


def _body_fields(app: FastAPI, operation: dict[str, Any]) -> list[str] | None:
    """The top-level fields of a JSON body, or None when the operation takes none."""
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        return None
    if "$ref" in schema:
        schema = app.openapi()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return sorted(schema.get("properties", {}))


async def test_no_route_answers_a_hostile_value_with_a_500(
    app: FastAPI, client: httpx.AsyncClient, owner: Actor, project: dict[str, Any]
) -> None:
    assert (await ingest(client, project["write_key"], [pageview(), pageview("/a")])).is_success
    sources = await client.get(f"/api/v1/projects/{project['id']}/sources/", headers=owner.headers)
    ids = {
        "project_id": project["id"],
        "organization_id": str(owner.personal_organization_id),
        "source_id": sources.json()[0]["id"],
        "user_id": str(owner.id),
        "distinct_id": "someone",
    }
    failures: list[str] = []
    tried = 0
    for method, template, operation in _operations(app):
        path = template
        for name in [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]:
            path = path.replace(f"{{{name}}}", ids.get(name, str(uuid.uuid4())))
        query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        fields = _body_fields(app, operation)
        requests: list[dict[str, Any]] = []
        for name in query:
            # With the project's id where the route needs one, so that the value reaches the code.
            base = {"project_id": project["id"]} if "project_id" in query else {}
            requests += [{"params": {**base, name: value}} for value in HOSTILE_TEXT]
        if fields is not None:
            requests += [{"json": {field: value}} for field in fields for value in HOSTILE_JSON]
            requests += [{"json": value} for value in HOSTILE_JSON]
        for request in requests:
            tried += 1
            response = await client.request(method, path, headers=owner.headers, **request)
            if response.status_code >= 500:
                failures.append(f"{method} {path} {request}: {response.status_code}")
    assert tried > 1000
    assert not failures, "\n".join(failures[:20])
