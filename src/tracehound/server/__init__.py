"""The Tracehound server: Package Hunter's HTTP API and the v1 scan API, a job store in SQLite or
PostgreSQL, and workers (embedded, or Celery workers on other hosts). See docs/server.md."""

from tracehound.server.config import ServerConfig

__all__ = ["ServerConfig"]
