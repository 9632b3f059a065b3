"""Running the `tower` command in tests, on the retail example's policy."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from tests.support.files import RETAIL_POLICY
from tower.cli import main


def tower(url: str, *args: str, policy: Path = RETAIL_POLICY) -> Result:
    """`tower ARGS...` against the database at `url`, with the retail policy (or `policy`)."""
    env = {"DATABASE_URL": url, "TOWER_POLICY": str(policy)}
    return CliRunner().invoke(main, list(args), env=env)


def succeeded(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    assert result.exception is None
    return result


def failed(result: Result) -> Result:
    """A refusal: exit code 1 and a message for people, never a traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "error:" in result.output
    return result
