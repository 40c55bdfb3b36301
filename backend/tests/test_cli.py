"""The `pulseboard` command as a user runs it: a real server process over real HTTP."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET
from tests.factories import PASSWORD, unique_email

PULSEBOARD = str(Path(sys.executable).with_name("pulseboard"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _environment(tmp_path: Path, database_url: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    env.update(PULSEBOARD_DATA_DIR=str(tmp_path / "data"), PULSEBOARD_ENVIRONMENT="test")
    if database_url:
        env.update(PULSEBOARD_DATABASE_URL=database_url, PULSEBOARD_SECRET_KEY=SECRET)
    return env


@contextmanager
def _serving(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [PULSEBOARD, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"pulseboard serve exited with {process.returncode}:\n{output}")
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("pulseboard serve did not become healthy in 30 s")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    database_url = "" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    with _serving(tmp_path, _environment(tmp_path, database_url)) as base:
        yield base


def test_serve_then_register_login_create_project_and_rotate_its_key(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as http:
        email = unique_email("cli")
        assert (
            http.post(
                "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
            ).status_code
            == 201
        )
        tokens = http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
        assert tokens.status_code == 200
        headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        project = http.post("/api/v1/projects/", json={"name": "Site"}, headers=headers)
        assert project.status_code == 201
        rotated = http.post(f"/api/v1/projects/{project.json()['id']}/rotate-key", headers=headers)
        assert rotated.status_code == 200
        assert rotated.json()["write_key"] != project.json()["write_key"]


def test_embedded_serve_migrates_a_fresh_data_dir_and_keeps_its_secret(tmp_path: Path) -> None:
    env = _environment(tmp_path)
    run = subprocess.run(
        [
            PULSEBOARD,
            "create-user",
            "--email",
            "root@example.com",
            "--password",
            PASSWORD,
            "--admin",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "as administrator" in run.stdout
    assert (tmp_path / "data" / "pulseboard.db").exists()
    secret = (tmp_path / "data" / "secret_key").read_text()

    again = subprocess.run(
        [PULSEBOARD, "create-user", "--email", "root@example.com", "--password", PASSWORD],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr
    weak = subprocess.run(
        [PULSEBOARD, "create-user", "--email", "x@example.com", "--password", "short"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert weak.returncode == 1
    assert "at least 10 characters" in weak.stderr
    assert (tmp_path / "data" / "secret_key").read_text() == secret


def test_migrate_command(tmp_path: Path) -> None:
    run = subprocess.run(
        [PULSEBOARD, "migrate"],
        cwd=tmp_path,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "migrated to head" in run.stdout


def test_embedded_mode_refuses_several_workers(tmp_path: Path) -> None:
    run = subprocess.run(
        [PULSEBOARD, "serve", "--workers", "2"],
        cwd=tmp_path,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "one process" in run.stdout


def _register(http: httpx.Client) -> dict[str, str]:
    email = unique_email("cli")
    http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    tokens = http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {tokens.json()['access_token']}"}


def test_production_mode_serve_and_worker_over_redis(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    """`serve` puts batches on the Redis stream; a separate `pulseboard worker` stores them."""
    stream_db = redis_url.rsplit("/", 1)[0] + "/13"
    env = {**_environment(tmp_path, postgres_url), "PULSEBOARD_REDIS_URL": stream_db}
    subprocess.run(["redis-cli", "-u", stream_db, "flushdb"], check=False, capture_output=True)
    worker = subprocess.Popen(
        [PULSEBOARD, "worker", "--name", "test-worker"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with _serving(tmp_path, env) as base, httpx.Client(base_url=base, timeout=10) as http:
            headers = _register(http)
            project = http.post("/api/v1/projects/", json={"name": "Site"}, headers=headers).json()
            events = [{"event": "pageview", "distinct_id": f"u{i}"} for i in range(30)]
            for _ in range(2):
                accepted = http.post(
                    "/api/v1/events/ingest",
                    json={"events": events},
                    headers={"X-API-Key": project["write_key"]},
                )
                assert accepted.status_code == 202
            sources_url = f"/api/v1/projects/{project['id']}/sources/"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                source = http.get(sources_url, headers=headers).json()[0]
                if source["events_count"] >= 60:
                    break
                time.sleep(0.2)
            assert source["events_count"] == 60
            assert source["last_event_at"] is not None
    finally:
        worker.terminate()
        assert worker.wait(timeout=15) == 0
        subprocess.run(["redis-cli", "-u", stream_db, "flushdb"], check=False, capture_output=True)


def test_worker_needs_redis(tmp_path: Path) -> None:
    run = subprocess.run(
        [PULSEBOARD, "worker"],
        cwd=tmp_path,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "inside `pulseboard serve`" in run.stdout
