import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from pulseboard.models import Role


def _stripped_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


class OrganizationCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)

    _name = field_validator("name")(_stripped_name)


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
