import uuid
from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from pulseboard.core.security import AccessClaims, create_access_token, utcnow
from tests.conftest import SECRET
from tests.factories import PASSWORD, create_actor, login, unique_email


async def count_users(app: FastAPI) -> int:
    from pulseboard.auth.repository import UserRepository

    async with app.state.pulseboard.sessions() as session:
        return await UserRepository(session).count()


async def test_a_name_of_the_longest_length_gets_its_workspace(client: httpx.AsyncClient) -> None:
    # The personal workspace is named "<name>'s workspace", and held to the column's 200.
    email, name = unique_email(), "n" * 200
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "name": name}
    )
    assert response.status_code == 201, response.text
    tokens = await login(client, email)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    (workspace,) = (await client.get("/api/v1/organizations/", headers=headers)).json()
    assert workspace["name"] == "n" * 188 + "'s workspace"


async def test_register_login_and_read_me(client: httpx.AsyncClient) -> None:
    email = unique_email()
    response = await client.post(
        "/api/v1/auth/register", json={"email": email.upper(), "password": PASSWORD, "name": "Ada"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == email
    assert "password" not in str(body)

    tokens = await login(client, email)
    assert tokens["token_type"] == "bearer"
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == body["id"]
    assert me.json()["name"] == "Ada"


async def test_duplicate_email_is_409_and_stores_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    actor = await create_actor(client)
    before = await count_users(app)
    response = await client.post(
        "/api/v1/auth/register", json={"email": actor.email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"
    assert await count_users(app) == before


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1", "at least 10 characters"),
        ("aaaaaaaaaaaa", "at least 4 different characters"),
        ("password123", "too common"),
        (" padded password ", "whitespace"),
    ],
)
async def test_weak_password_is_422_with_the_reason(
    client: httpx.AsyncClient, app: FastAPI, password: str, reason: str
) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": unique_email(), "password": password}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "weak_password"
    assert reason in response.json()["detail"]
    assert await count_users(app) == 0


async def test_password_containing_the_email_name_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "margaret@example.com", "password": "margaret-2026!"},
    )
    assert response.status_code == 422
    assert "email" in response.json()["detail"]


async def test_wrong_password_and_unknown_email_get_the_same_401(
    client: httpx.AsyncClient,
) -> None:
    actor = await create_actor(client)
    wrong = await client.post(
        "/api/v1/auth/token", data={"username": actor.email, "password": "not the password"}
    )
    unknown = await client.post(
        "/api/v1/auth/token", data={"username": unique_email(), "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "detail": "Incorrect email or password",
            "code": "invalid_credentials",
        }
    )


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        ("/api/v1/auth/register", {"json": {"email": "not-an-email", "password": PASSWORD}}),
        ("/api/v1/auth/register", {"json": {"password": PASSWORD}}),
        (
            "/api/v1/auth/register",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
        ),
        ("/api/v1/auth/register", {"json": ["a", "list"]}),
        ("/api/v1/auth/register", {"json": {"email": "a@example.com", "password": "x" * 300}}),
        ("/api/v1/auth/token", {"data": {"username": "a@example.com"}}),
        ("/api/v1/auth/refresh", {"json": {}}),
        ("/api/v1/auth/refresh", {"json": {"refresh_token": ""}}),
        (
            "/api/v1/auth/logout",
            {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
        ),
    ],
)
async def test_malformed_bodies_are_422(
    client: httpx.AsyncClient, app: FastAPI, path: str, kwargs: dict[str, object]
) -> None:
    response = await client.post(path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert await count_users(app) == 0


async def test_refresh_rotates_and_the_old_token_is_refused(client: httpx.AsyncClient) -> None:
    actor = await create_actor(client)
    first = await client.post("/api/v1/auth/refresh", json={"refresh_token": actor.refresh_token})
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != actor.refresh_token
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {rotated['access_token']}"}
    )
    assert me.status_code == 200

    replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": actor.refresh_token})
    assert replay.status_code == 401
    assert replay.json()["code"] == "invalid_token"


async def test_a_replayed_refresh_token_ends_the_whole_session(client: httpx.AsyncClient) -> None:
    actor = await create_actor(client)
    rotated = (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": actor.refresh_token})
    ).json()
    await client.post("/api/v1/auth/refresh", json={"refresh_token": actor.refresh_token})

    # The thief's replay revoked the family: the legitimate, newer tokens stop working too.
    again = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
    )
    assert again.status_code == 401
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {rotated['access_token']}"}
    )
    assert me.status_code == 401


async def test_logout_revokes_refresh_and_access_tokens(client: httpx.AsyncClient) -> None:
    actor = await create_actor(client)
    other_session = await login(client, actor.email)

    response = await client.post("/api/v1/auth/logout", json={"refresh_token": actor.refresh_token})
    assert response.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=actor.headers)).status_code == 401
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": actor.refresh_token})
    assert refresh.status_code == 401
    # Another login session of the same user is untouched.
    other = {"Authorization": f"Bearer {other_session['access_token']}"}
    assert (await client.get("/api/v1/users/me", headers=other)).status_code == 200


async def test_unknown_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/auth/refresh", "/api/v1/auth/logout"):
        response = await client.post(path, json={"refresh_token": "nonsense"})
        assert response.status_code == 401


def _token(claims: AccessClaims, **changes: object) -> str:
    now = utcnow()
    payload = {
        "iss": "pulseboard",
        "typ": "access",
        "sub": str(claims.user_id),
        "sid": str(claims.session_id),
        "iat": now,
        "exp": now + timedelta(minutes=5),
        **changes,
    }
    key = str(payload.pop("key", SECRET))
    return jwt.encode(payload, key, algorithm=str(payload.pop("alg", "HS256")))


async def test_expired_forged_and_malformed_access_tokens_are_401(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    actor = await create_actor(client)
    session_id = uuid.UUID(
        jwt.decode(actor.access_token, options={"verify_signature": False})["sid"]
    )
    claims = AccessClaims(actor.id, session_id)
    assert (await client.get("/api/v1/users/me", headers=actor.headers)).status_code == 200

    past = utcnow() - timedelta(hours=2)
    bad_tokens = {
        "expired": _token(claims, iat=past, exp=past + timedelta(minutes=15)),
        "forged": _token(claims, key="another-secret-of-a-sufficient-length-000"),
        "wrong type": _token(claims, typ="refresh"),
        "unknown session": _token(AccessClaims(actor.id, uuid.uuid4())),
        "unknown user": _token(AccessClaims(uuid.uuid4(), session_id)),
        "not a jwt": "abc.def.ghi",
        "no sub": jwt.encode({"exp": utcnow() + timedelta(minutes=5)}, SECRET, algorithm="HS256"),
        "alg none": jwt.encode(
            {"sub": str(actor.id), "sid": str(session_id), "typ": "access"}, None, algorithm="none"
        ),
    }
    for label, token in bad_tokens.items():
        response = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, label
        assert response.headers["www-authenticate"] == "Bearer"

    missing = await client.get("/api/v1/users/me")
    assert missing.status_code == 401
    assert missing.json()["code"] == "not_authenticated"
    settings = app.state.pulseboard.settings
    good = create_access_token(settings, claims, utcnow())
    assert (
        await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {good}"})
    ).status_code == 200


async def test_a_write_key_cannot_read_anything(client: httpx.AsyncClient) -> None:
    actor = await create_actor(client)
    project = (
        await client.post("/api/v1/projects/", json={"name": "Site"}, headers=actor.headers)
    ).json()
    key_headers = {
        "Authorization": f"Bearer {project['write_key']}",
        "X-API-Key": project["write_key"],
    }
    for path in ("/api/v1/users/me", "/api/v1/projects/", f"/api/v1/projects/{project['id']}"):
        assert (await client.get(path, headers=key_headers)).status_code == 401
