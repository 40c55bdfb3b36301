"""Pieces that several domains' request schemas share."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field


def _not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


# A display name: trimmed, 1 to NAME_LENGTH characters, not only spaces (the name columns'
# String(200)).
NAME_LENGTH = 200
Name = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH), AfterValidator(_not_blank)]


def apply_update(target: object, changes: BaseModel) -> None:
    """Copy onto `target` the fields a PATCH body set (a null leaves the field as it is)."""
    for field, value in changes.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(target, field, value)
