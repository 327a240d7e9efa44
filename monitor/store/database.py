"""Engine creation and schema migration.

Every process runs ``migrate()`` at start: Alembic is the only way the schema
changes, on SQLite and PostgreSQL alike, so a deployed store and a test store
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError

from monitor.redact import redact

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


class StoreUnavailable(RuntimeError):
    """The store cannot be opened (a missing folder, a refused connection, no such database).

    Its message is one line for the operator, with no password in it; nothing has
    been created or migrated when it is raised.
    """


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the poller write while the pipeline reads; foreign keys are off by default in SQLite.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _keep_first_line_of_driver_errors(context: ExceptionContext) -> None:
    """Drop the DETAIL/HINT/CONTEXT lines of a database error before anyone logs it.

    PostgreSQL explains a violated constraint with the row itself ("Failing
    row contains (..., <post text>, ...)", "Key (source_id)=(...)"): personal
    data that would otherwise travel into the logs with the exception. The
    primary message (which constraint, which column) is kept; the structured
    fields stay available on ``exc.orig.diag`` for code that needs them.
    """
    orig = context.original_exception
    message = str(orig)
    first_line = message.split("\n", 1)[0]
    if first_line == message:
        return
    orig.args = (first_line,)
    # SQLAlchemy has already copied the driver's text into its own exception.
    wrapped = context.sqlalchemy_exception
    if wrapped is not None and wrapped.args and isinstance(wrapped.args[0], str):
        wrapped.args = (wrapped.args[0].replace(message, first_line), *wrapped.args[1:])


def store_url_problem(url: str) -> str | None:
    """Why ``url`` cannot open a store, in one line, before anything is opened; None when it can.

    The one judgement of MONITOR_DB_URL: the settings (so ``monitor check``) and the engine
    (so every command) both ask here, so ``check`` passes exactly the URLs ``run`` can open.
    """
    from sqlalchemy.exc import NoSuchModuleError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return (f"MONITOR_DB_URL is not a database URL ('{redact(url, limit=120)}'); write it like "
                "sqlite:///monitor.db or postgresql+psycopg://user@host/monitor")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).parent
            if not folder.is_dir():
                # A typo in the path must not quietly start an empty store somewhere else.
                return redact(f"the folder of the SQLite store {database} does not exist: "
                              f"create {folder} or correct MONITOR_DB_URL")
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        return (f"MONITOR_DB_URL names an unknown kind of database ('{parsed.drivername}'); use sqlite:/// or "
                "postgresql+psycopg://")
    try:
        dialect.import_dbapi()
    except ImportError:
        if parsed.get_backend_name() == "postgresql":
            hint = "" if parsed.get_driver_name() == "psycopg" else (
                f"; and write the URL as postgresql+psycopg:// (it names the {parsed.get_driver_name()} driver)")
            return "PostgreSQL needs its driver: install it with pip install '.[postgres]'" + hint
        return f"the database driver for '{parsed.drivername}' is not installed"
    return None


def create_store_engine(url: str) -> Engine:
    """An engine with the settings the worker relies on (WAL and FKs on SQLite).

    Database errors must not carry personal data into logs: ``hide_parameters``
    keeps SQLAlchemy from quoting the statement's parameters (post texts,
    handles), and ``_keep_first_line_of_driver_errors`` drops the driver's
    row dump.
    """
    problem = store_url_problem(url)
    if problem is not None:
        raise StoreUnavailable(problem)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    event.listen(engine, "handle_error", _keep_first_line_of_driver_errors)
    return engine


def check_connection(engine: Engine) -> None:
    """Connect once, before anything is migrated or started; ``StoreUnavailable`` in one line if it fails."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = cause[-1] if cause else type(exc).__name__  # psycopg puts the server's FATAL line last
        shown = engine.url.render_as_string(hide_password=True)
        raise StoreUnavailable(redact(f"cannot open the store {shown}: {reason}", limit=400)) from None


def alembic_config(url: str) -> Config:
    from alembic.config import Config  # imported when a store is migrated: `monitor check` starts faster

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# pg_advisory_xact_lock key: any constant shared by every worker ("monitor1" as an integer).
MIGRATION_LOCK_KEY = 0x6D6F6E69746F7231


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent), one process at a time.

    Several workers starting together on a fresh database would otherwise all
    create the same tables (``alembic_version already exists`` on SQLite, a
    ``pg_type`` unique violation on PostgreSQL). PostgreSQL: a transaction-level
    advisory lock, taken before Alembic reads the current revision, so the
    second process waits, then finds the schema at head and does nothing; it is
    released by the commit (or by the server if the process dies). SQLite: an
    exclusive file lock beside the database file, released by the OS the same way.
    """
    with _sqlite_migration_lock(engine), engine.connect() as conn, _transactional_ddl(conn), conn.begin():
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        else:
            conn.exec_driver_sql("BEGIN")  # the real transaction: every CREATE TABLE inside it
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        from alembic import command

        command.upgrade(cfg, "head")


@contextmanager
def _transactional_ddl(conn: Connection) -> Iterator[None]:
    """On SQLite, the migration's DDL in one transaction: pysqlite's own transaction handling off meanwhile.

    pysqlite (before Python 3.12's ``autocommit``) opens a transaction only before
    INSERT/UPDATE/DELETE, never before DDL: each CREATE TABLE of a migration committed
    by itself, so a worker killed during its very first start left tables without an
    ``alembic_version`` row, and the store never opened again ("table mentions already
    exists"). SQLAlchemy's documented pysqlite recipe: ``isolation_level = None`` on the
    driver connection and an explicit ``BEGIN`` (``migrate`` emits it); the commit or
    rollback at the end then ends that transaction. Only for the migration: the rest of
    the worker keeps pysqlite's behaviour, whose write transactions start at their first
    write and so wait for the write lock (``busy_timeout``) instead of failing at once.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    driver: Any = conn.connection.dbapi_connection
    saved = driver.isolation_level
    driver.isolation_level = None
    try:
        yield
    finally:
        driver.isolation_level = saved


@contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """``<db>.migrate.lock`` held with ``flock`` while migrating a SQLite file (nothing elsewhere)."""
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: no flock; a single worker is the SQLite policy anyway
        yield
        return
    with Path(f"{database}.migrate.lock").open("a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def open_for_savepoints(conn: Connection) -> None:
    """Make sure the database transaction has begun before a SAVEPOINT is taken in it.

    pysqlite opens its transaction lazily, at the first INSERT/UPDATE/DELETE: a
    SAVEPOINT issued before that starts a transaction of its own, and releasing it
    *commits*, so the rows under it would survive a rollback of the enclosing
    transaction. A no-op UPDATE opens the real one first. Nothing to do elsewhere.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("UPDATE cursors SET source = source WHERE 0")


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One unit of work: everything inside commits together or not at all."""
    with engine.begin() as conn:
        yield conn
