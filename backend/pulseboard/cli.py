"""The `pulseboard` command: serve, worker, migrate, create-user."""

import asyncio
import os
import signal
import socket
from typing import Annotated

import typer
import uvicorn
from redis.asyncio import Redis

from pulseboard.auth import service as auth_service
from pulseboard.auth.schemas import UserCreate
from pulseboard.core import migrations
from pulseboard.core.cache import RedisCache
from pulseboard.core.db import create_engine, create_sessionmaker, session_scope
from pulseboard.core.errors import PulseboardError
from pulseboard.core.pubsub import RedisPubSub
from pulseboard.core.redis_bus import RedisStreamBus
from pulseboard.core.runtime import tune_gc
from pulseboard.core.security import Passwords, make_password_hasher
from pulseboard.core.settings import Settings
from pulseboard.pipeline.live import LivePublisher
from pulseboard.pipeline.maintenance import maintain
from pulseboard.pipeline.partitions import Partitions
from pulseboard.pipeline.versions import VersionBumper
from pulseboard.pipeline.worker import Worker

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
        # Live sockets fan one frame out to many clients: compressing it again for each costs
        # more CPU (and ~40 KiB of zlib state per socket) than the bandwidth it saves.
        ws_per_message_deflate=False,
        log_level="info",
    )


@app.command()
def worker(
    name: Annotated[str, typer.Option(help="Consumer name; unique per worker.")] = "",
    batch_size: Annotated[
        int | None,
        typer.Option(min=1, help="Request batches per read [default: settings]."),
    ] = None,
) -> None:
    """Store ingested batches from Redis into the database (production mode)."""
    settings = Settings()
    if settings.redis_url is None:
        typer.echo("Without PULSEBOARD_REDIS_URL the worker runs inside `pulseboard serve`.")
        raise typer.Exit(2)
    consumer = name or f"{socket.gethostname()}-{os.getpid()}"
    typer.echo(f"Pulseboard worker {consumer}")
    asyncio.run(_run_worker(settings, consumer, batch_size or settings.worker_batch_size))


async def _run_worker(settings: Settings, name: str, batch_size: int) -> None:
    engine = create_engine(settings)
    redis = Redis.from_url(settings.redis_url or "")
    bus = RedisStreamBus(redis)
    partitions = Partitions(engine)
    worker = Worker(
        bus,
        create_sessionmaker(engine),
        name=name,
        batch_size=batch_size,
        batch_events=settings.worker_batch_events,
        claim_idle_ms=settings.worker_claim_idle_ms,
        on_stored=(LivePublisher(RedisPubSub(redis)), VersionBumper(RedisCache(redis))),
        partitions=partitions,
    )
    tune_gc()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    try:
        await asyncio.gather(
            worker.run(), maintain(partitions, bus, worker.wait_stopping, settings)
        )
    finally:
        await redis.aclose()
        await engine.dispose()


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
