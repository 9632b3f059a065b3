"""`tower serve` over HTTP: gunicorn, the same server in development, in the benchmark and
in production (`Procfile`'s `web`).

Each worker process builds its own bot after the fork (database engine, warm index,
courier), so a CPU-bound request in one never holds up the others: Python runs one thread
at a time per process, and a two-core machine runs two workers. Workers keep their warm
indexes in step through the registry's version, as any two Tower processes do.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.app.base import BaseApplication

from bot.web import WsgiApp, create_wsgi, database_reachable
from tower.settings import Settings

THREADS_PER_WORKER = 8


class _Server(BaseApplication):  # type: ignore[misc]
    """gunicorn, configured here rather than from its command line."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> WsgiApp:
        from bot.runtime import build_bot  # in the worker, after the fork

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        bot = build_bot(self._settings)
        return create_wsgi(
            bot.app,
            database_reachable(bot.engine),
            bot.repeats(),
            warm=lambda: bot.warming.warm,
        )


def serve_http(settings: Settings, *, port: int, workers: int) -> None:
    """Serve `POST /slack/events` and `GET /healthz` on `port` until stopped."""
    options = {
        "bind": f"0.0.0.0:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": THREADS_PER_WORKER,
        "timeout": 120,
        "graceful_timeout": 10,
        "accesslog": None,
        "loglevel": "warning",
    }
    _Server(settings, options).run()
