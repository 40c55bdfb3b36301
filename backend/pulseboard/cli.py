"""The `pulseboard` command: serve, migrate, create-user."""

import asyncio
from typing import Annotated

import typer
import uvicorn

from pulseboard.auth import service as auth_service
from pulseboard.auth.schemas import UserCreate
from pulseboard.core import migrations
from pulseboard.core.db import create_engine, create_sessionmaker, session_scope
from pulseboard.core.errors import PulseboardError
from pulseboard.core.security import Passwords, make_password_hasher
from pulseboard.core.settings import Settings

app = typer.Typer(help="Pulseboard: self-hosted real-time analytics.", no_args_is_help=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API processes.")] = 1,
) -> None:
    """Serve the API (and, in embedded mode, migrate the SQLite database first)."""
    settings = Settings()
    if settings.is_sqlite:
        if workers > 1:
            typer.echo("SQLite storage runs in one process; use PostgreSQL and Redis to scale.")
            raise typer.Exit(2)
        migrations.upgrade(settings)
    mode = "embedded (SQLite, in-process)" if settings.is_embedded else "production"
    typer.echo(f"Pulseboard on http://{host}:{port} — {mode} mode; API docs at /api/docs")
    uvicorn.run(
        "pulseboard.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
    )


@app.command()
def migrate(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Bring the database schema up to date."""
    migrations.upgrade(Settings(), revision)
    typer.echo(f"Database migrated to {revision}.")


@app.command("create-user")
def create_user(
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    name: Annotated[str, typer.Option()] = "",
    admin: Annotated[bool, typer.Option("--admin", help="Make an instance administrator.")] = False,
) -> None:
    """Create a user with a personal organization."""
    settings = Settings()
    if settings.is_sqlite:
        migrations.upgrade(settings)
    try:
        data = UserCreate(email=email, password=password, name=name)
        user_id = asyncio.run(_create_user(settings, data, admin))
    except PulseboardError as exc:
        typer.echo(f"Error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    except ValueError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Created user {email} ({user_id}){' as administrator' if admin else ''}.")


async def _create_user(settings: Settings, data: UserCreate, admin: bool) -> str:
    engine = create_engine(settings)
    try:
        passwords = Passwords(make_password_hasher(settings))
        async with session_scope(create_sessionmaker(engine)) as session:
            ctx = auth_service.AuthContext(session, settings, passwords)
            user = await auth_service.create_user(ctx, data, is_admin=admin)
        return str(user.id)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    app()
