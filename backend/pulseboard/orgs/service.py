"""Organizations and their members, under the role matrix of `orgs.permissions`."""

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pulseboard.auth.repository import UserRepository
from pulseboard.core.errors import Conflict, Forbidden, NotFound
from pulseboard.core.schemas import NAME_LENGTH
from pulseboard.core.security import utcnow
from pulseboard.models import Membership, Organization, Role, User
from pulseboard.orgs.permissions import Action, allows
from pulseboard.orgs.repository import MembershipRepository, OrganizationRepository
from pulseboard.orgs.schemas import MemberCreate, MemberRead, OrganizationRead
from pulseboard.projects.repository import ProjectRepository


@dataclass(frozen=True, slots=True)
class Access:
    """A user's standing in one organization, checked against an action."""

    user: User
    organization_id: uuid.UUID
    role: Role


class LastOwner(Conflict):
    code = "last_owner"
    detail = "An organization must keep at least one owner"


class AlreadyMember(Conflict):
    code = "already_member"
    detail = "This user is already a member of the organization"


class PersonalOrganization(Conflict):
    code = "personal_organization"
    detail = "A personal organization cannot be deleted"


class UserNotFound(NotFound):
    code = "user_not_found"
    detail = "No user has this email; they must register first"


async def authorize(
    session: AsyncSession, user: User, organization_id: uuid.UUID, action: Action
) -> Access:
    """The one permission check: a stranger gets 404, a member without the role 403."""
    role = await MembershipRepository(session).get_role(organization_id, user.id)
    if role is None:
        raise NotFound("Organization not found")
    check_role(role, action)
    return Access(user=user, organization_id=organization_id, role=role)


def check_role(role: Role, action: Action) -> None:
    if not allows(role, action):
        raise Forbidden(f"Your role ({role}) does not allow this")


async def create_personal_organization(session: AsyncSession, user: User) -> Organization:
    suffix = "'s workspace"
    # A name of 200 characters is a valid user's name; its workspace's name is held to 200 too.
    label = (user.name or user.email.split("@")[0])[: NAME_LENGTH - len(suffix)]
    return await _create(session, user, label + suffix, is_personal=True)


async def create_organization(session: AsyncSession, user: User, name: str) -> OrganizationRead:
    organization = await _create(session, user, name, is_personal=False)
    return _read(organization, Role.OWNER)


async def _create(
    session: AsyncSession, user: User, name: str, *, is_personal: bool
) -> Organization:
    organization = await OrganizationRepository(session).add(
        Organization(name=name, is_personal=is_personal)
    )
    await MembershipRepository(session).add(
        Membership(organization_id=organization.id, user_id=user.id, role=Role.OWNER)
    )
    return organization


async def list_organizations(session: AsyncSession, user: User) -> list[OrganizationRead]:
    rows = await OrganizationRepository(session).list_for_user(user.id)
    return [_read(organization, role) for organization, role in rows]


async def get_organization(session: AsyncSession, access: Access) -> OrganizationRead:
    organization = await _load(session, access)
    return _read(organization, access.role)


async def rename_organization(session: AsyncSession, access: Access, name: str) -> OrganizationRead:
    organization = await _load(session, access)
    organization.name = name
    await session.flush()
    return _read(organization, access.role)


async def delete_organization(session: AsyncSession, access: Access) -> None:
    organization = await _load(session, access)
    if organization.is_personal:
        raise PersonalOrganization()
    await ProjectRepository(session).delete_organization_data(organization.id)
    await OrganizationRepository(session).delete(organization)


async def list_members(session: AsyncSession, access: Access) -> list[MemberRead]:
    rows = await MembershipRepository(session).list_members(access.organization_id)
    return [_member(membership, user) for membership, user in rows]


async def add_member(session: AsyncSession, access: Access, data: MemberCreate) -> MemberRead:
    user = await UserRepository(session).get_by_email(data.email)
    if user is None:
        raise UserNotFound()
    _check_can_grant(access, data.role)
    memberships = MembershipRepository(session)
    if await memberships.get_membership(access.organization_id, user.id) is not None:
        raise AlreadyMember()
    membership = await memberships.add(
        Membership(organization_id=access.organization_id, user_id=user.id, role=data.role)
    )
    return _member(membership, user)


async def change_role(
    session: AsyncSession, access: Access, user_id: uuid.UUID, role: Role
) -> MemberRead:
    memberships = MembershipRepository(session)
    membership = await memberships.get_membership(access.organization_id, user_id)
    user = await UserRepository(session).get(user_id)
    if membership is None or user is None:
        raise NotFound("Member not found")
    _check_can_grant(access, role)
    _check_can_touch(access, membership)
    if membership.role is Role.OWNER and role is not Role.OWNER:
        await _keep_an_owner(session, access)
    membership.role = role
    await session.flush()
    return _member(membership, user)


async def remove_member(session: AsyncSession, access: Access, user_id: uuid.UUID) -> None:
    memberships = MembershipRepository(session)
    membership = await memberships.get_membership(access.organization_id, user_id)
    if membership is None:
        raise NotFound("Member not found")
    leaving = user_id == access.user.id
    if not leaving:
        check_role(access.role, Action.MANAGE_MEMBERS)
        _check_can_touch(access, membership)
    if membership.role is Role.OWNER:
        await _keep_an_owner(session, access)
    await memberships.delete(membership)


def _check_can_grant(access: Access, role: Role) -> None:
    if role is Role.OWNER and not allows(access.role, Action.MANAGE_ORGANIZATION):
        raise Forbidden("Only an owner can grant the owner role")


def _check_can_touch(access: Access, membership: Membership) -> None:
    if membership.role is Role.OWNER and not allows(access.role, Action.MANAGE_ORGANIZATION):
        raise Forbidden("Only an owner can change or remove an owner")


async def _keep_an_owner(session: AsyncSession, access: Access) -> None:
    # Write to the organization before counting: its row lock makes concurrent owner changes take
    # turns, so that two owners cannot each demote or remove the other and leave none.
    organization = await _load(session, access)
    organization.updated_at = utcnow()
    await session.flush()
    if await MembershipRepository(session).count_owners(access.organization_id) <= 1:
        raise LastOwner()


async def _load(session: AsyncSession, access: Access) -> Organization:
    organization = await OrganizationRepository(session).get(access.organization_id)
    if organization is None:
        raise NotFound("Organization not found")
    return organization


def _read(organization: Organization, role: Role) -> OrganizationRead:
    return OrganizationRead(
        id=organization.id,
        name=organization.name,
        is_personal=organization.is_personal,
        created_at=organization.created_at,
        role=role,
    )


def _member(membership: Membership, user: User) -> MemberRead:
    return MemberRead(
        user_id=user.id,
        email=user.email,
        name=user.name,
        role=membership.role,
        joined_at=membership.created_at,
    )
