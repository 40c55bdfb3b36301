import uuid
from collections.abc import Sequence

from sqlalchemy import func, select

from pulseboard.core.repository import Repository
from pulseboard.models import Membership, Organization, Role, User


class OrganizationRepository(Repository[Organization]):
    model = Organization

    async def list_for_user(self, user_id: uuid.UUID) -> Sequence[tuple[Organization, Role]]:
        statement = (
            select(Organization, Membership.role)
            .join(Membership, Membership.organization_id == Organization.id)
            .where(Membership.user_id == user_id)
            .order_by(Organization.is_personal.desc(), Organization.created_at, Organization.id)
        )
        return [(a, b) for a, b in await self.session.execute(statement)]

    async def get_personal(self, user_id: uuid.UUID) -> Organization | None:
        statement = (
            select(Organization)
            .join(Membership, Membership.organization_id == Organization.id)
            .where(
                Membership.user_id == user_id,
                Membership.role == Role.OWNER,
                Organization.is_personal.is_(True),
            )
            .order_by(Organization.created_at)
            .limit(1)
        )
        return await self.get_one_or_none(statement)


class MembershipRepository(Repository[Membership]):
    model = Membership

    async def get_role(self, organization_id: uuid.UUID, user_id: uuid.UUID) -> Role | None:
        statement = select(Membership.role).where(
            Membership.organization_id == organization_id, Membership.user_id == user_id
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_membership(
        self, organization_id: uuid.UUID, user_id: uuid.UUID
    ) -> Membership | None:
        return await self.session.get(Membership, (organization_id, user_id))

    async def list_members(self, organization_id: uuid.UUID) -> Sequence[tuple[Membership, User]]:
        statement = (
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.organization_id == organization_id)
            .order_by(Membership.created_at, User.email)
        )
        return [(a, b) for a, b in await self.session.execute(statement)]

    async def count_owners(self, organization_id: uuid.UUID) -> int:
        statement = select(func.count()).where(
            Membership.organization_id == organization_id, Membership.role == Role.OWNER
        )
        return (await self.session.scalar(statement)) or 0
