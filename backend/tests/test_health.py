from pathlib import Path

import httpx

from pulseboard.main import create_app
from tests.conftest import make_settings


async def test_health_reports_ok_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "not configured"}


async def test_health_pings_redis_when_configured(tmp_path: Path, redis_url: str) -> None:
    app = create_app(make_settings(tmp_path, redis_url=redis_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["redis"] == "ok"


async def test_openapi_has_stable_operation_ids(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/openapi.json")).json()
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"auth-login", "projects-create_project", "projects-rotate_key"} <= ids
    assert (await client.get("/api/docs")).status_code == 200


async def test_unknown_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
