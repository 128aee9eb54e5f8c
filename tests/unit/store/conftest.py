from __future__ import annotations

import pytest
from support.postgres import fresh_database, start_postgres


@pytest.fixture(scope="session")
def postgres_server():
    yield from start_postgres()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """The same test against each engine the store supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/drimbox.db"
    return fresh_database(request.getfixturevalue("postgres_server"))
