"""Refusals before anything runs: depth, aliases, tokens and cost; and bad input, never a 500."""

import json
from typing import Any

import httpx
import pytest

from pulseboard.graphql.limits import MAX_ALIASES, MAX_COST, MAX_DEPTH, MAX_EXPANDED, MAX_TOKENS
from tests.factories import Actor
from tests.graphql.client import data, error_codes, post

Project = dict[str, Any]
ANSWER = "overview { totalEvents { value } }"


async def refused(client: httpx.AsyncClient, actor: Actor, query: str, **variables: Any) -> Any:
    body = await post(client, actor, query, **variables)
    assert body.get("data") is None, body
    return body


async def test_a_query_deeper_than_the_limit_is_refused(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    # The schema has no cycles, so depth is counted on the document before the fields are known.
    nested = "a { " * MAX_DEPTH + "b" + " }" * MAX_DEPTH
    body = await refused(client, owner, f'{{ project(id: "{project["id"]}") {{ {nested} }} }}')
    messages = [e["message"] for e in body["errors"]]
    assert f"'anonymous' exceeds maximum operation depth of {MAX_DEPTH}" in messages
    assert set(error_codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}


async def test_too_many_aliases_are_refused(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    fields = " ".join(f"n{i}: name" for i in range(MAX_ALIASES + 1))
    body = await refused(client, owner, f'{{ project(id: "{project["id"]}") {{ {fields} }} }}')
    assert (
        body["errors"][0]["message"] == f"{MAX_ALIASES + 1} aliases found. Allowed: {MAX_ALIASES}"
    )
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    fewer = " ".join(f"n{i}: name" for i in range(MAX_ALIASES))
    found = await data(client, owner, f'{{ project(id: "{project["id"]}") {{ {fewer} }} }}')
    assert found["project"]["n0"] == "Shop"


async def test_a_huge_document_is_refused(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    fields = " ".join(["name"] * 2500)
    body = await refused(client, owner, f'{{ project(id: "{project["id"]}") {{ {fields} }} }}')
    assert body["errors"][0]["message"] == (
        f"Syntax Error: Document contains more than {MAX_TOKENS} tokens. Parsing aborted."
    )


async def test_too_costly_a_query_is_refused_with_its_cost(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    # Every project's answers, three each: 1 + 10 projects x 3 answers x 10.
    body = await refused(
        client,
        owner,
        f"{{ projects {{ {ANSWER} sessions {{ sessions }} topEvents {{ by }} }} }}",
    )
    [error] = body["errors"]
    assert error["extensions"] == {"code": "QUERY_TOO_COSTLY", "cost": 301, "limit": MAX_COST}
    # Fragments count where they are spread: 11 lookups of a project with two answers.
    spreads = " ".join(f'p{i}: project(id: "{project["id"]}") {{ ...Two }}' for i in range(10))
    fragment = f"fragment Two on Project {{ {ANSWER} sessions {{ sessions }} }}"
    body = await refused(client, owner, f"{{ {spreads} }} {fragment}")
    assert body["errors"][0]["extensions"]["cost"] == 210
    # Within the budget it runs.
    within = " ".join(f'p{i}: project(id: "{project["id"]}") {{ ...Two }}' for i in range(9))
    found = await data(client, owner, f"{{ {within} }} {fragment}")
    assert found["p8"]["sessions"]["sessions"] == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("interval: FORTNIGHT", "Value 'FORTNIGHT' does not exist in 'Interval' enum."),
        (
            'scope: {filters: [{key: "path", op: LIKE, value: "/"}]}',
            "Value 'LIKE' does not exist in 'FilterOp' enum.",
        ),
    ],
)
async def test_unknown_enum_values_are_refused_by_the_schema(
    client: httpx.AsyncClient, owner: Actor, project: Project, arguments: str, message: str
) -> None:
    query = f'{{ project(id: "{project["id"]}") {{ timeseries({arguments}) {{ interval }} }} }}'
    body = await refused(client, owner, query)
    assert body["errors"][0]["message"].startswith(message)
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            'scope: {filters: [{key: "browser", op: IN, value: "Firefox"}]}',
            "filters[0]: op IN takes `values`",
        ),
        (
            'scope: {filters: [{key: "amount", op: GT, value: "5", number: 5}]}',
            "filters[0]: op GT takes `number`",
        ),
        ('scope: {filters: [{key: "path", op: IS_SET, value: "/"}]}', "takes no operand"),
        ('scope: {filters: [{key: "", op: EQ, value: "/"}]}', "filters[0].key must be a"),
        ("limit: 0", "`limit` must be between 1 and 50"),
        ('breakdown: "browser", events: ["a", "b"]', "A breakdown takes at most one event"),
        ('scope: {range: TODAY, from: "2026-01-01T00:00:00Z"}', "Give either range or"),
        ('scope: {from: "2026-01-01T00:00:00"}', "`from` needs a timezone offset"),
        (
            'scope: {from: "2020-01-01T00:00:00Z", to: "2026-01-01T00:00:00Z"}, interval: MINUTE',
            "has more than 10,000 points",
        ),
    ],
)
async def test_bad_input_is_a_clear_error(
    client: httpx.AsyncClient,
    owner: Actor,
    project: Project,
    arguments: str,
    message: str,
) -> None:
    query = f'{{ project(id: "{project["id"]}") {{ timeseries({arguments}) {{ interval }} }} }}'
    body = await refused(client, owner, query)
    [error] = body["errors"]
    assert message in error["message"]
    assert error["extensions"] == {"code": "INVALID_QUERY"}
    assert error["path"] == ["project", "timeseries"]


async def test_a_bad_metric_query_is_a_clear_error(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    query = """
    query Q($id: UUID!, $input: MetricQueryInput!) {
      metricsQuery(projectId: $id, input: $input) { metricName }
    }
    """
    base = {"timeRange": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}}
    for variables, message in (
        ({**base, "metricName": ""}, "input.metricName: String should have at least 1 character"),
        ({**base, "metricName": "nothing.here"}, "Unknown metric 'nothing.here'"),
        (
            {**base, "metricName": "x", "groupBy": ["a", "b", "c", "d", "e", "f"]},
            "input.groupBy: List should have at most 5 items",
        ),
    ):
        body = await refused(client, owner, query, id=project["id"], input=variables)
        assert message in body["errors"][0]["message"], body
        assert error_codes(body) == ["INVALID_QUERY"]
    # A variable of the wrong type is the schema's refusal.
    body = await refused(client, owner, query, id="not-a-uuid", input={**base, "metricName": "x"})
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_a_malformed_request_is_a_4xx(client: httpx.AsyncClient, owner: Actor) -> None:
    response = await client.post(
        "/api/graphql",
        content=b"{not json",
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Unable to parse request body as JSON",
        "code": "malformed_body",
    }
    no_query = await client.post("/api/graphql", json={"variables": {}}, headers=owner.headers)
    assert no_query.status_code == 400
    assert no_query.json()["code"] == "malformed_body"
    syntax = await post(client, owner, "{ projects { id ")
    assert error_codes(syntax) == ["GRAPHQL_PARSE_FAILED"]


async def test_a_failing_field_beside_others_is_its_own_error(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    # graphql-core cancels the sibling fields of one that fails; a query cancelled mid-flight
    # once left the request's transaction unusable, and its commit answered 500.
    query = (
        f'{{ project(id: "{project["id"]}") '
        "{ a: sessions { source } b: topEvents(limit: -1) { source } c: overview { source } } }"
    )
    for _ in range(3):
        body = await post(client, owner, query)
        assert "INTERNAL_SERVER_ERROR" not in error_codes(body), body
        assert "INVALID_QUERY" in error_codes(body)


async def test_a_body_not_utf8_or_nested_past_the_recursion_limit_is_a_400(
    client: httpx.AsyncClient, owner: Actor
) -> None:
    deep = b'{"query": "{ projects { id } }", "variables": {"a": ' + b"[" * 100_000
    deep += b"]" * 100_000 + b"}}"
    for content in (b'{"query": "{ projects { id } \xff }"}', deep):
        response = await client.post(
            "/api/graphql",
            content=content,
            headers={**owner.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "malformed_body"


async def test_fragments_that_double_at_each_level_are_refused_before_they_are_walked(
    client: httpx.AsyncClient, owner: Actor
) -> None:
    # 2^40 spread paths: the depth and alias limiters would walk each one.
    levels = 40
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    query = f"{{ ...F0 }} {fragments} fragment F{levels} on Query {{ __typename }}"
    body = await refused(client, owner, query)
    assert body["errors"][0]["message"] == (
        f"The document holds more than {MAX_EXPANDED} selections once its fragments are spread"
    )
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_a_lone_surrogate_in_a_variable_is_a_clear_error(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    scope = {"filters": [{"key": "plan", "op": "EQ", "value": "\ud800"}]}
    for query, variables in (
        (
            "query($p: UUID!, $s: ScopeInput) "
            "{ project(id: $p) { overview(scope: $s) { source } } }",
            {"p": project["id"], "s": scope},
        ),
        (
            "query($p: UUID!, $by: String!) { project(id: $p) { breakdown(by: $by) { by } } }",
            {"p": project["id"], "by": "\ud800"},
        ),
    ):
        # Escaped, as JSON writes it: no UTF-8 spells a lone surrogate, and Python reads it.
        content = json.dumps({"query": query, "variables": variables}).encode()
        headers = {**owner.headers, "Content-Type": "application/json"}
        response = await client.post("/api/graphql", content=content, headers=headers)
        assert response.status_code == 200, response.text
        assert error_codes(response.json()) == ["INVALID_QUERY"], response.text
