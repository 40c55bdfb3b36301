"""Request dependencies as `Annotated` aliases, so that route signatures read like prose."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from pulseboard.auth.repository import UserRepository
from pulseboard.auth.service import AuthContext
from pulseboard.core.db import session_scope
from pulseboard.core.errors import InvalidToken, NotAuthenticated
from pulseboard.core.security import decode_access_token, utcnow
from pulseboard.core.settings import Settings
from pulseboard.core.state import AppState
from pulseboard.models import Project, User
from pulseboard.orgs import service as orgs_service
from pulseboard.orgs.permissions import Action
from pulseboard.projects import service as projects_service


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.pulseboard
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    await state.settle()
    async with session_scope(state.sessions) as session:
        yield session


# Scope "function": the commit happens before the response leaves, so a 2xx means it is stored.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_auth_context(session: SessionDep, state: StateDep) -> AuthContext:
    return AuthContext(session=session, settings=state.settings, passwords=state.passwords)


AuthContextDep = Annotated[AuthContext, Depends(get_auth_context)]

bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_current_user(
    token: Annotated[str | None, Depends(bearer)], session: SessionDep, settings: SettingsDep
) -> User:
    if not token:
        raise NotAuthenticated()
    claims = decode_access_token(settings, token)
    user = await UserRepository(session).get_active_in_session(
        claims.user_id, claims.session_id, utcnow()
    )
    if user is None:
        raise InvalidToken()
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def organization_access(
    action: Action,
) -> Callable[[uuid.UUID, User, AsyncSession], Awaitable[orgs_service.Access]]:
    async def dependency(
        organization_id: uuid.UUID, user: CurrentUser, session: SessionDep
    ) -> orgs_service.Access:
        return await orgs_service.authorize(session, user, organization_id, action)

    return dependency


def project_access(
    action: Action,
) -> Callable[[uuid.UUID, User, AsyncSession], Awaitable[Project]]:
    async def dependency(project_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Project:
        return await projects_service.authorize_project(session, user, project_id, action)

    return dependency


OrganizationReader = Annotated[orgs_service.Access, Depends(organization_access(Action.READ))]
MemberManager = Annotated[orgs_service.Access, Depends(organization_access(Action.MANAGE_MEMBERS))]
OrganizationOwner = Annotated[
    orgs_service.Access, Depends(organization_access(Action.MANAGE_ORGANIZATION))
]
ProjectReader = Annotated[Project, Depends(project_access(Action.READ))]
ProjectEditor = Annotated[Project, Depends(project_access(Action.EDIT_CONTENT))]
ProjectAdmin = Annotated[Project, Depends(project_access(Action.MANAGE_PROJECTS))]
