"""SQLAlchemy models, one file per entity; importing this package registers them all."""

from pulseboard.models.base import Base
from pulseboard.models.daily_salt import DailySalt
from pulseboard.models.data_source import DataSource, SourceKind
from pulseboard.models.event import Event
from pulseboard.models.event_id import EventId
from pulseboard.models.import_job import ImportFormat, ImportJob, ImportStatus
from pulseboard.models.membership import Membership, Role
from pulseboard.models.metric_definition import MetricDefinition
from pulseboard.models.metric_point import MetricPoint
from pulseboard.models.organization import Organization
from pulseboard.models.project import Project
from pulseboard.models.refresh_token import RefreshToken
from pulseboard.models.rollup import EventRollup, MetricRollup
from pulseboard.models.rollup_backlog import RollupBacklog
from pulseboard.models.session import Session, SessionRollup
from pulseboard.models.user import User

__all__ = [
    "Base",
    "DailySalt",
    "DataSource",
    "Event",
    "EventId",
    "EventRollup",
    "ImportFormat",
    "ImportJob",
    "ImportStatus",
    "Membership",
    "MetricDefinition",
    "MetricPoint",
    "MetricRollup",
    "Organization",
    "Project",
    "RefreshToken",
    "Role",
    "RollupBacklog",
    "Session",
    "SessionRollup",
    "SourceKind",
    "User",
]
