"""The SQL backend's tables and their in-place migrations.

``MIGRATIONS[dialect][i]`` takes a namespace from schema version ``i`` to
``i + 1``. :func:`migrate` runs the missing steps while holding a
database-wide lock (``pg_advisory_xact_lock`` on PostgreSQL, ``GET_LOCK`` on
MySQL/MariaDB), so two processes opening an empty database at once migrate
it exactly once and both end up working.

Key columns are bounded and compare exactly: ``varchar(256) COLLATE "C"`` on
PostgreSQL and ``VARBINARY(1024)`` holding UTF-8 on MySQL/MariaDB (a binary
string has no case folding, no accent folding and no PAD SPACE, so ``A``,
``a``, ``x`` and ``x `` are four keys). The anonymous user is stored as
``''``, which no real user id can be. Times are microseconds since the Unix
epoch, so they round-trip exactly whatever the server's time zone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sessionstore.errors import StoreError

__all__ = ["SCHEMA_VERSION", "TableNames", "drop_tables", "migrate", "read_version"]


@dataclass(frozen=True, slots=True)
class TableNames:
    """The names of one namespace's tables: ``<table_prefix><table>``."""

    prefix: str

    @property
    def sessions(self) -> str:
        """Sessions: sequence counters, counts, times, expiry."""
        return f"{self.prefix}sessions"

    @property
    def entries(self) -> str:
        """Question/answer entries keyed by (user, session, seq)."""
        return f"{self.prefix}entries"

    @property
    def graph(self) -> str:
        """One graph context per session."""
        return f"{self.prefix}graph_contexts"

    @property
    def traces(self) -> str:
        """Agent trace steps keyed by (user, session, seq)."""
        return f"{self.prefix}trace_steps"

    @property
    def version(self) -> str:
        """The schema version of this namespace."""
        return f"{self.prefix}schema_version"

    @property
    def children(self) -> tuple[str, str, str]:
        """The tables whose rows belong to a session row."""
        return (self.entries, self.graph, self.traces)


_PG_KEY = 'varchar(256) COLLATE "C" NOT NULL'
_PG_V1 = """
CREATE TABLE {t.sessions} (
    user_key    {key},
    session_key {key},
    created_at  bigint  NOT NULL,
    updated_at  bigint  NOT NULL,
    expires_at  bigint,
    next_seq    bigint  NOT NULL,
    qa_count    bigint  NOT NULL,
    trace_seq   bigint  NOT NULL,
    trace_count bigint  NOT NULL,
    has_graph   boolean NOT NULL,
    CONSTRAINT {t.prefix}sessions_pk PRIMARY KEY (user_key, session_key)
);
CREATE INDEX {t.prefix}sessions_recent ON {t.sessions} (user_key, updated_at DESC, session_key);
CREATE INDEX {t.prefix}sessions_expiry ON {t.sessions} (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE {t.entries} (
    user_key       {key},
    session_key    {key},
    seq            bigint      NOT NULL,
    entry_id       varchar(36) NOT NULL,
    created_at     bigint      NOT NULL,
    question       text        NOT NULL,
    answer         text        NOT NULL,
    context        text,
    feedback_text  text,
    feedback_score smallint,
    used_graph_element_ids text,
    memify_metadata text,
    metadata       text,
    CONSTRAINT {t.prefix}entries_pk PRIMARY KEY (user_key, session_key, seq),
    CONSTRAINT {t.prefix}entries_id UNIQUE (user_key, session_key, entry_id),
    CONSTRAINT {t.prefix}entries_session FOREIGN KEY (user_key, session_key)
        REFERENCES {t.sessions} (user_key, session_key) ON DELETE CASCADE
);
CREATE TABLE {t.graph} (
    user_key    {key},
    session_key {key},
    context     text NOT NULL,
    CONSTRAINT {t.prefix}graph_pk PRIMARY KEY (user_key, session_key),
    CONSTRAINT {t.prefix}graph_session FOREIGN KEY (user_key, session_key)
        REFERENCES {t.sessions} (user_key, session_key) ON DELETE CASCADE
);
CREATE TABLE {t.traces} (
    user_key    {key},
    session_key {key},
    seq         bigint NOT NULL,
    step        text   NOT NULL,
    CONSTRAINT {t.prefix}traces_pk PRIMARY KEY (user_key, session_key, seq),
    CONSTRAINT {t.prefix}traces_session FOREIGN KEY (user_key, session_key)
        REFERENCES {t.sessions} (user_key, session_key) ON DELETE CASCADE
)
"""

_MY_KEY = "VARBINARY(1024) NOT NULL"
_MY_TABLE = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC"
_MY_V1 = """
CREATE TABLE IF NOT EXISTS {t.sessions} (
    user_key    {key},
    session_key {key},
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    expires_at  BIGINT,
    next_seq    BIGINT  NOT NULL,
    qa_count    BIGINT  NOT NULL,
    trace_seq   BIGINT  NOT NULL,
    trace_count BIGINT  NOT NULL,
    has_graph   BOOLEAN NOT NULL,
    PRIMARY KEY (user_key, session_key),
    KEY {t.prefix}sessions_recent (user_key, updated_at DESC, session_key),
    KEY {t.prefix}sessions_expiry (expires_at)
) {table};
CREATE TABLE IF NOT EXISTS {t.entries} (
    user_key       {key},
    session_key    {key},
    seq            BIGINT   NOT NULL,
    entry_id       CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at     BIGINT   NOT NULL,
    question       LONGTEXT NOT NULL,
    answer         LONGTEXT NOT NULL,
    context        LONGTEXT,
    feedback_text  LONGTEXT,
    feedback_score SMALLINT,
    used_graph_element_ids LONGTEXT,
    memify_metadata LONGTEXT,
    metadata       LONGTEXT,
    PRIMARY KEY (user_key, session_key, seq),
    UNIQUE KEY {t.prefix}entries_id (user_key, session_key, entry_id),
    CONSTRAINT {t.prefix}entries_session FOREIGN KEY (user_key, session_key)
        REFERENCES {t.sessions} (user_key, session_key) ON DELETE CASCADE
) {table};
CREATE TABLE IF NOT EXISTS {t.graph} (
    user_key    {key},
    session_key {key},
    context     LONGTEXT NOT NULL,
    PRIMARY KEY (user_key, session_key),
    CONSTRAINT {t.prefix}graph_session FOREIGN KEY (user_key, session_key)
        REFERENCES {t.sessions} (user_key, session_key) ON DELETE CASCADE
) {table};
CREATE TABLE IF NOT EXISTS {t.traces} (
    user_key    {key},
    session_key {key},
    seq         BIGINT   NOT NULL,
    step        LONGTEXT NOT NULL,
    PRIMARY KEY (user_key, session_key, seq),
    CONSTRAINT {t.prefix}traces_session FOREIGN KEY (user_key, session_key)
        REFERENCES {t.sessions} (user_key, session_key) ON DELETE CASCADE
) {table}
"""

MIGRATIONS: dict[str, list[str]] = {
    "postgresql": [_PG_V1.replace("{key}", _PG_KEY)],
    "mysql": [_MY_V1.replace("{key}", _MY_KEY).replace("{table}", _MY_TABLE)],
}
SCHEMA_VERSION = 1


def _statements(step: str, tables: TableNames) -> list[str]:
    return [s.strip() for s in step.format(t=tables).split(";") if s.strip()]


def _lock_id(tables: TableNames) -> int:
    digest = hashlib.sha256(f"sessionstore:{tables.prefix}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def read_version(conn: AsyncConnection, tables: TableNames) -> int:
    """Return the namespace's schema version; 0 when it has no tables yet."""
    if conn.dialect.name == "postgresql":
        exists = await conn.scalar(
            text("SELECT to_regclass(:name) IS NOT NULL"), {"name": tables.version}
        )
    else:
        exists = await conn.scalar(
            text(
                "SELECT COUNT(*) FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = :name"
            ),
            {"name": tables.version},
        )
    if not exists:
        return 0
    version = await conn.scalar(text(f"SELECT version FROM {tables.version} WHERE id = 1"))
    return int(version or 0)


def check_not_newer(version: int, where: str) -> None:
    """Refuse a database migrated by a newer sessionstore.

    Raises:
        StoreError: ``version`` is above :data:`SCHEMA_VERSION`.
    """
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where} is at schema version {version}, newer than this sessionstore "
            f"understands (version {SCHEMA_VERSION}); upgrade sessionstore to use it"
        )


async def _apply(conn: AsyncConnection, tables: TableNames, where: str) -> None:
    """Run the missing migration steps; the caller holds the migration lock."""
    await conn.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {tables.version} "
            "(id INT PRIMARY KEY, version INT NOT NULL)"
        )
    )
    version = await read_version(conn, tables)
    check_not_newer(version, where)
    family = "postgresql" if conn.dialect.name == "postgresql" else "mysql"  # or "mariadb"
    for step in MIGRATIONS[family][version:]:
        for statement in _statements(step, tables):
            await conn.execute(text(statement))
        version += 1
        await conn.execute(text(f"DELETE FROM {tables.version}"))
        await conn.execute(
            text(f"INSERT INTO {tables.version} (id, version) VALUES (1, :v)"), {"v": version}
        )


async def migrate(engine: AsyncEngine, tables: TableNames, where: str, lock_timeout: float) -> None:
    """Bring the namespace to :data:`SCHEMA_VERSION`, once, under a lock.

    Raises:
        StoreError: the database is newer than this code, or the lock was
            not granted within ``lock_timeout`` seconds.
    """
    if engine.dialect.name == "postgresql":
        # DDL is transactional on PostgreSQL: the steps land together or not at all.
        transactional = engine.execution_options(isolation_level="READ COMMITTED")
        async with transactional.begin() as conn:
            await conn.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout * 1000)}"))
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _lock_id(tables)})
            await _apply(conn, tables, where)
        return
    name = f"sessionstore:{hashlib.sha256(tables.prefix.encode()).hexdigest()[:40]}"
    async with engine.connect() as conn:
        got = await conn.scalar(
            text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": lock_timeout}
        )
        if got != 1:
            raise StoreError(f"{where}: another process holds the migration lock; try again")
        try:
            await _apply(conn, tables, where)
            await conn.commit()
        finally:
            await conn.scalar(text("SELECT RELEASE_LOCK(:name)"), {"name": name})


async def drop_tables(engine: AsyncEngine, tables: TableNames) -> None:
    """Drop every table of the namespace (children first); missing ones are fine."""
    async with engine.begin() as conn:
        for name in (*tables.children, tables.sessions, tables.version):
            await conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
