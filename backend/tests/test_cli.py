"""The `pulseboard` command as a user runs it: a real server process over real HTTP."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    database_url = "" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    port = _free_port()
    process = subprocess.Popen(
        [PULSEBOARD, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=_environment(tmp_path, database_url),
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
