"""The role matrix: which organization role may take which action."""

from enum import StrEnum

from pulseboard.models import Role


class Action(StrEnum):
    READ = "read"
    EDIT_CONTENT = "edit_content"  # dashboards, widgets, alerts
    MANAGE_PROJECTS = "manage_projects"  # projects and their write keys
    MANAGE_MEMBERS = "manage_members"
    MANAGE_ORGANIZATION = "manage_organization"  # rename, delete, grant ownership


MINIMUM_ROLE: dict[Action, Role] = {
    Action.READ: Role.VIEWER,
    Action.EDIT_CONTENT: Role.EDITOR,
    Action.MANAGE_PROJECTS: Role.ADMIN,
    Action.MANAGE_MEMBERS: Role.ADMIN,
    Action.MANAGE_ORGANIZATION: Role.OWNER,
}


def allows(role: Role, action: Action) -> bool:
    return role.at_least(MINIMUM_ROLE[action])
