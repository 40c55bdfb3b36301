from pathlib import Path

import pytest
from pydantic import ValidationError

from pulseboard.core.settings import Environment, Settings


def test_defaults_are_the_embedded_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "sqlite+aiosqlite:///data/pulseboard.db"
    assert settings.is_embedded
    assert settings.redis_url is None


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    second = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    assert len(first.secret_key) >= 32
    assert first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("secret", ["", "changeme", "secret", "too-short-but-not-a-placeholder"])
def test_production_refuses_a_missing_or_placeholder_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="PULSEBOARD_SECRET_KEY"):
        Settings(environment=Environment.PRODUCTION, secret_key=secret, _env_file=None)  # type: ignore[call-arg]


def test_production_accepts_a_real_secret_and_generates_nothing(tmp_path: Path) -> None:
    settings = Settings(
        environment=Environment.PRODUCTION,
        secret_key="k" * 8 + "a-long-random-production-secret",
        data_dir=tmp_path,
        _env_file=None,  # type: ignore[call-arg]
    )
    assert settings.environment is Environment.PRODUCTION
    assert not (tmp_path / "secret_key").exists()


def test_environment_variables_and_url_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSEBOARD_DATABASE_URL", "postgres://pb@db/pulseboard")
    monkeypatch.setenv("PULSEBOARD_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("PULSEBOARD_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("PULSEBOARD_SECRET_KEY", "s" * 40)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "postgresql+asyncpg://pb@db/pulseboard"
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert not settings.is_sqlite
    assert not settings.is_embedded
