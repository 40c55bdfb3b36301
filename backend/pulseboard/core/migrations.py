"""Running Alembic from the application: `pulseboard migrate`, `serve` in embedded mode, tests."""

import re
from collections.abc import Mapping
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from alembic import command
from pulseboard.core.settings import Settings

BACKEND_DIR = Path(__file__).resolve().parents[2]
# Daily partitions (events_p20261122) are made by the worker, not by migrations.
PARTITION = re.compile(r"_p\d{8}$")


def include_name(name: str | None, type_: str, parent_names: Mapping[str, str | None]) -> bool:
    """Leave the daily partitions out when Alembic compares the database with the models."""
    table = name if type_ == "table" else parent_names.get("table_name")
    return not (table and PARTITION.search(table))


def alembic_config(settings: Settings) -> Config:
    config = _scripts()
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    return config


def _scripts() -> Config:
    config = Config(BACKEND_DIR / "alembic.ini")
    config.set_main_option("script_location", str(BACKEND_DIR / "alembic"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def head() -> str | None:
    """The revision the migrations lead to."""
    return ScriptDirectory.from_config(_scripts()).get_current_head()
