"""The roadmap spreadsheet's command-line tests: a database of a test's own, initialised."""

from __future__ import annotations

import pytest

from tests.support.cli import succeeded
from tests.support.roadmap import tower


@pytest.fixture
def cli_database(scratch_database_url: str) -> str:
    """A fresh database, created with `tower init`."""
    succeeded(tower(scratch_database_url, "init"))
    return scratch_database_url
