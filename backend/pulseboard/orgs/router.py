import uuid

from fastapi import APIRouter, status

from pulseboard.core.deps import (
    CurrentUser,
    MemberManager,
    OrganizationOwner,
    OrganizationReader,
    SessionDep,
    StateDep,
)
from pulseboard.ingest.keys import commit_then_forget
from pulseboard.orgs import service
from pulseboard.orgs.schemas import (
    MemberCreate,
    MemberRead,
    MemberUpdate,
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
)

router = APIRouter(prefix="/organizations", tags=["organizations"])


@router.get("/", response_model=list[OrganizationRead])
async def list_organizations(user: CurrentUser, session: SessionDep) -> list[OrganizationRead]:
    return await service.list_organizations(session, user)


@router.post("/", status_code=status.HTTP_201_CREATED, response_model=OrganizationRead)
async def create_organization(
    data: OrganizationCreate, user: CurrentUser, session: SessionDep
) -> OrganizationRead:
    return await service.create_organization(session, user, data.name)


@router.get("/{organization_id}", response_model=OrganizationRead)
async def get_organization(access: OrganizationReader, session: SessionDep) -> OrganizationRead:
    return await service.get_organization(session, access)


@router.patch("/{organization_id}", response_model=OrganizationRead)
async def update_organization(
    data: OrganizationUpdate, access: OrganizationOwner, session: SessionDep
) -> OrganizationRead:
    return await service.rename_organization(session, access, data.name)


@router.delete("/{organization_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_organization(
    access: OrganizationOwner, session: SessionDep, state: StateDep
) -> None:
    """Delete the organization with its projects, their data and their keys."""
    await service.delete_organization(session, access)
    await commit_then_forget(session, state.key_cache)


@router.get("/{organization_id}/members", response_model=list[MemberRead])
async def list_members(access: OrganizationReader, session: SessionDep) -> list[MemberRead]:
    return await service.list_members(session, access)


@router.post(
    "/{organization_id}/members", status_code=status.HTTP_201_CREATED, response_model=MemberRead
)
async def add_member(data: MemberCreate, access: MemberManager, session: SessionDep) -> MemberRead:
    """Add an existing user, found by email."""
    return await service.add_member(session, access, data)


@router.patch("/{organization_id}/members/{user_id}", response_model=MemberRead)
async def change_member_role(
    user_id: uuid.UUID, data: MemberUpdate, access: MemberManager, session: SessionDep
) -> MemberRead:
    return await service.change_role(session, access, user_id, data.role)


@router.delete("/{organization_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(
    user_id: uuid.UUID, access: OrganizationReader, session: SessionDep
) -> None:
    """Remove a member (admins), or leave the organization (anyone, for themselves)."""
    await service.remove_member(session, access, user_id)
