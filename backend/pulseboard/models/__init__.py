"""SQLAlchemy models, one file per entity; importing this package registers them all."""

from pulseboard.models.base import Base
from pulseboard.models.membership import Membership, Role
from pulseboard.models.organization import Organization
from pulseboard.models.project import Project
from pulseboard.models.refresh_token import RefreshToken
from pulseboard.models.user import User

__all__ = ["Base", "Membership", "Organization", "Project", "RefreshToken", "Role", "User"]
