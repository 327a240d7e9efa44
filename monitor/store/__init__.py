"""Persistence: mentions, scores, cursors, incidents and the notification outbox."""

from monitor.store.database import StoreUnavailable, check_connection, create_store_engine, migrate, transaction

__all__ = ["StoreUnavailable", "check_connection", "create_store_engine", "migrate", "transaction"]
