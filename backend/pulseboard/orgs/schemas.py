import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from pulseboard.core.schemas import Name
from pulseboard.models import Role


class OrganizationCreate(BaseModel):
    name: Name


class OrganizationUpdate(OrganizationCreate):
    pass


class OrganizationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    is_personal: bool
    created_at: datetime
    role: Role = Field(description="The caller's role in this organization.")


class MemberCreate(BaseModel):
    email: EmailStr
    role: Role = Role.VIEWER


class MemberUpdate(BaseModel):
    role: Role


class MemberRead(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    joined_at: datetime
