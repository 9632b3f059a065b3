"""`tower init`: create or upgrade the database."""

from __future__ import annotations

import click

from tower import migrate
from tower.cli.context import AppContext
from tower.cli.output import console


@click.command("init")
@click.pass_obj
def init_database(app: AppContext) -> None:
    """Create or upgrade the database named by DATABASE_URL to the latest migration."""
    before = migrate.current_revision(app.engine)
    migrate.upgrade(app.settings.database_url)
    after = migrate.current_revision(app.engine)
    where = app.engine.url.render_as_string(hide_password=True)
    if before == after:
        console.print(f"{where} is up to date (migration {after})", markup=False, highlight=False)
    else:
        console.print(
            f"{where} upgraded from {before or 'empty'} to {after}", markup=False, highlight=False
        )
