"""The application factory; the lifespan makes the engines and clients once per process."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from redis.asyncio import Redis

from pulseboard import __version__
from pulseboard.auth.router import router as auth_router
from pulseboard.auth.router import users_router
from pulseboard.core.db import create_engine, create_sessionmaker
from pulseboard.core.errors import install_error_handlers
from pulseboard.core.security import Passwords, make_password_hasher
from pulseboard.core.settings import Settings
from pulseboard.core.state import AppState
from pulseboard.health import router as health_router
from pulseboard.orgs.router import router as orgs_router
from pulseboard.projects.router import router as projects_router
from pulseboard.sources.router import router as sources_router


def operation_id(route: APIRoute) -> str:
    """Stable operation ids (`projects-create_project`) for the generated TypeScript client."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        try:
            if redis is not None:
                await redis.ping()
            app.state.pulseboard = AppState(
                settings=settings,
                engine=engine,
                sessions=create_sessionmaker(engine),
                passwords=Passwords(make_password_hasher(settings)),
                redis=redis,
            )
            yield
        finally:
            if redis is not None:
                await redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Pulseboard",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        generate_unique_id_function=operation_id,
    )
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )

    v1 = APIRouter(prefix="/api/v1")
    for router in (auth_router, users_router, orgs_router, projects_router, sources_router):
        v1.include_router(router)
    app.include_router(v1)
    app.include_router(health_router, prefix="/api")
    return app
