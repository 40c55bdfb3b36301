"""Posting GraphQL documents as a client would, and reading answers in the REST API's shape."""

import re
from datetime import datetime
from typing import Any

import httpx

from pulseboard.graphql.inputs import Interval, SeriesMetric
from tests.factories import Actor

PATH = "/api/graphql"


async def post(
    client: httpx.AsyncClient, actor: Actor | None, query: str, **variables: Any
) -> dict[str, Any]:
    """The response body; GraphQL answers 200 whether or not the operation had errors."""
    headers = actor.headers if actor else {}
    response = await client.post(
        PATH, json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def data(
    client: httpx.AsyncClient, actor: Actor | None, query: str, **variables: Any
) -> dict[str, Any]:
    body = await post(client, actor, query, **variables)
    assert "errors" not in body, body["errors"]
    found: dict[str, Any] = body["data"]
    return found


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _value(value: Any, key: str | None) -> Any:
    if (
        isinstance(value, str)
        and key
        and (key in ("timestamp", "from", "to") or key.endswith("_at"))
    ):
        return datetime.fromisoformat(value)
    if isinstance(value, str) and key == "interval" and value.isupper():
        return Interval[value].value
    if isinstance(value, str) and key == "metric" and value.isupper():
        return SeriesMetric[value].value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def as_rest(value: Any, key: str | None = None) -> Any:
    """An answer of either API with snake_case keys, enums by value, and typed times and numbers."""
    if isinstance(value, dict):
        return {_snake(k): as_rest(v, _snake(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [as_rest(item, key) for item in value]
    return _value(value, key)
