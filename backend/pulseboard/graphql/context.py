"""Per-request context: the app state, one database session, and the caller resolved once."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import strawberry
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from pulseboard.core.deps import StateDep, bearer, get_current_user
from pulseboard.core.state import AppState
from pulseboard.models import Project, User
from pulseboard.orgs.permissions import Action
from pulseboard.projects import service as projects_service


class Context(BaseContext):
    """What every resolver of one request shares."""

    def __init__(self, state: AppState, session: AsyncSession, token: str | None) -> None:
        super().__init__()
        self.state = state
        self._session = session
        self._token = token
        self._user: User | None = None
        self._projects: dict[uuid.UUID, Project] = {}
        # Sibling fields resolve concurrently, and one AsyncSession takes one query at a time.
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """The request's session, held by one resolver at a time."""
        async with self._lock:
            yield self._session

    async def user(self) -> User:
        """The caller, from the bearer token, checked like every REST request."""
        if self._user is None:
            async with self.db() as session:
                self._user = await get_current_user(self._token, session, self.state.settings)
        return self._user

    async def project(self, project_id: uuid.UUID) -> Project:
        """A project the caller may read; another organization's is NotFound, as in REST."""
        found = self._projects.get(project_id)
        if found is None:
            user = await self.user()
            async with self.db() as session:
                found = await projects_service.authorize_project(
                    session, user, project_id, Action.READ
                )
            self._projects[project_id] = found
        return found


async def get_context(
    state: StateDep, token: Annotated[str | None, Depends(bearer)]
) -> AsyncIterator[Context]:
    """A read-only session of the request's own, never committed: when one field fails,
    graphql-core cancels its siblings, and a query cancelled mid-flight leaves the transaction
    unusable (the REST session's commit then failed the whole request with a 500)."""
    await state.settle()
    async with state.sessions() as session:
        yield Context(state, session, token)


Info = strawberry.Info[Context, None]
