"""What the benchmarks share: where things are, the bench users' password and secret key, a fresh
database per run, and a freshly registered user."""

import uuid
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
PULSEBOARD = str(ROOT / "backend" / ".venv" / "bin" / "pulseboard")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET = "bench-secret-key-that-is-long-enough-0123456789"
PASSWORD = "correct horse battery staple"


def postgres_url(database: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{database}"


async def recreate_database(name: str) -> None:
    """Drop the benchmark's database (whoever is connected) and make it again, empty."""
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()


def register_user(http: httpx.Client) -> str:
    """A new user registered and logged in on a running server: its access token."""
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    response = http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    token: str = response.json()["access_token"]
    return token
