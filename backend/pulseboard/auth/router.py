from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm

from pulseboard.auth import service
from pulseboard.auth.schemas import RefreshRequest, TokenPair, UserCreate, UserRead
from pulseboard.core.deps import AuthContextDep, CurrentUser

router = APIRouter(prefix="/auth", tags=["auth"])
users_router = APIRouter(prefix="/users", tags=["users"])


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserRead)
async def register(data: UserCreate, ctx: AuthContextDep) -> UserRead:
    user = await service.create_user(ctx, data)
    return UserRead.model_validate(user)


@router.post("/token", response_model=TokenPair)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], ctx: AuthContextDep
) -> TokenPair:
    """OAuth2 password flow: the email goes in `username`."""
    user = await service.authenticate(ctx, form.username, form.password)
    return await service.issue_tokens(ctx, user)


@router.post("/refresh", response_model=TokenPair)
async def refresh(data: RefreshRequest, ctx: AuthContextDep) -> TokenPair:
    """Trade a refresh token for a new pair; the old one stops working."""
    return await service.refresh(ctx, data.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(data: RefreshRequest, ctx: AuthContextDep) -> None:
    """End the login session this refresh token belongs to, with its access tokens."""
    await service.logout(ctx, data.refresh_token)


@users_router.get("/me", response_model=UserRead)
async def read_me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)
