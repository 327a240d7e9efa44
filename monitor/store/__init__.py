"""Persistence: mentions, scores, cursors, incidents and the notification outbox."""

from monitor.store.database import create_store_engine, migrate, transaction

__all__ = ["create_store_engine", "migrate", "transaction"]
