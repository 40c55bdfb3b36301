from fastapi import APIRouter, Response, status
from pydantic import BaseModel
from sqlalchemy import text

from pulseboard.core.deps import StateDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    database: str
    redis: str


@router.get("/health", response_model=Health)
async def health(state: StateDep, response: Response) -> Health:
    """200 once the app can serve: the database answers, and Redis when one is configured."""
    database = redis = "ok"
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        database = "unavailable"
    if state.redis is None:
        redis = "not configured"
    else:
        try:
            await state.redis.ping()
        except Exception:
            redis = "unavailable"
    healthy = "unavailable" not in (database, redis)
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(status="ok" if healthy else "unavailable", database=database, redis=redis)
