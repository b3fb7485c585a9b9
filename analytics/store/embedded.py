"""Embedded ClickHouse (chdb) shared safely between the web, worker and beat processes.

chdb lets one process at a time open a data directory (and a process open one directory),
so a process opens it under an exclusive inter-process file lock. Opening and closing costs
70-220 ms as the store grows, so the connection lingers after use and the process's next
statements reuse it, until another process asks for the store (see `_Holder`). `session()`
holds the connection across several statements, which no other process can interleave.

chdb never removes the parts a merge replaced (ClickHouse's cleanup thread does not run in
its local mode; chdb-io/chdb#107). Left alone they pile up with every flush of the event
writer, and every open loads them all again: after 600 small inserts an open took 300 ms
and an insert of 100 rows a second. So each connection, before it closes, lists the parts
ClickHouse marked outdated; once closed, and still under the lock so no process has the
store open, it makes the parts that replaced them durable and deletes the outdated ones.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings

from analytics.store.base import (
    SESSION_SETTINGS,
    AnalyticsStore,
    StoreError,
    StoreUnavailable,
    bind_params,
    classify_error,
    decode_arrow,
    decode_rows,
    digest,
    table_identifier,
    time_limit,
)

LOCK_WAIT_SECONDS = 60.0
HANDOFF_POLL_SECONDS = 0.004
# The shared settings, plus: a dropped table's files otherwise wait for the server's delayed
# removal, which a short-lived embedded process never reaches: they would stay on disk.
_SESSION_SETTINGS = (
    *(f"SET {name} = {value!r}" for name, value in SESSION_SETTINGS.items()),
    "SET database_atomic_wait_for_drop_and_detach_synchronously = 1",
)
# The outdated parts and, for each, the active part of the same table and partition whose
# block range covers it (NULL when none does: a dropped partition or a truncated table).
_OUTDATED_PARTS_SQL = """
SELECT o.path AS path, any(a.path) AS cover
FROM (SELECT database, table, partition_id, min_block_number, max_block_number, level, path
      FROM system.parts WHERE _state = 'Outdated') AS o
LEFT JOIN (SELECT database, table, partition_id, min_block_number AS lo,
                  max_block_number AS hi, level AS lv, path
           FROM system.parts WHERE active) AS a
  ON o.database = a.database AND o.table = a.table AND o.partition_id = a.partition_id
     AND a.lo <= o.min_block_number AND a.hi >= o.max_block_number AND a.lv >= o.level
GROUP BY o.path
SETTINGS join_use_nulls = 1
"""

logger = logging.getLogger(__name__)


def _fsync_tree(path: str) -> None:
    """Flush a part's files and directory entries to disk (ClickHouse does not after a merge)."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _Holder:
    """The process's one open chdb connection: chdb opens one data directory per process.

    A connection stays open after use (it lingers) for up to CLICKHOUSE_EMBEDDED_LINGER_SECONDS,
    holding the store's file lock, so the next statement of this process skips the open. Another
    process that wants the store holds a shared lock on `<store>.lock.waiting` while it waits;
    the watcher thread sees that within a few milliseconds and closes the idle connection, and
    a busy process closes it after its current statement, so it never starves the others.
    Forks close it first (a child must never inherit a live chdb or the lock), and so does
    interpreter exit.
    """

    def __init__(self):
        self.lock = threading.RLock()
        self.idle = threading.Condition(self.lock)
        self.path: str | None = None
        self.conn = None
        self.lock_file = None
        self.wait_file = None
        self.depth = 0  # statements and sessions in progress in this process
        self.last_used = 0.0
        self.watcher: threading.Thread | None = None
        self.exit_hook = False

    def acquire(self, store: EmbeddedStore):
        """Called with self.lock held: the open connection to `store`, opened if need be."""
        if self.conn is not None and self.path == store.path:
            return self.conn
        if self.conn is not None and self.depth:
            raise StoreError(
                f"{store.path} cannot open while {self.path} is in use in this process "
                "(chdb opens one data directory per process)"
            )
        self.close()
        import chdb

        if not self.exit_hook:  # registered after chdb's own, so it runs before chdb's
            atexit.register(self.close)
            self.exit_hook = True
        lock_file, wait_file = _lock_exclusive(store)
        try:
            conn = chdb.connect(store.path)
        except Exception as exc:
            _unlock(lock_file, wait_file)
            raise StoreUnavailable(f"cannot open the embedded store: {exc}") from exc
        self.path, self.conn, self.lock_file, self.wait_file = (
            store.path,
            conn,
            lock_file,
            wait_file,
        )
        try:
            for statement in _SESSION_SETTINGS:
                conn.query(statement)
        except Exception as exc:
            self.close()
            raise StoreUnavailable(f"cannot set up the embedded store: {exc}") from exc
        return conn

    def release(self) -> None:
        """Called with self.lock held, after a statement or session: close or let it linger."""
        self.last_used = time.monotonic()
        if self.depth:
            return
        if settings.CLICKHOUSE_EMBEDDED_LINGER_SECONDS <= 0 or self._others_waiting():
            self.close()
            return
        if self.watcher is None or not self.watcher.is_alive():
            self.watcher = threading.Thread(target=self._watch, name="chdb-linger", daemon=True)
            self.watcher.start()
        self.idle.notify_all()

    def close(self, path: str | None = None) -> None:
        """Close the open connection (only if it is to `path`, when given): list the outdated
        parts, close, delete them while the lock still keeps every other process out."""
        with self.lock:
            if self.conn is None or self.depth or (path is not None and path != self.path):
                return
            conn, root = self.conn, self.path
            self.conn = self.path = None
            try:
                outdated = _outdated_parts(conn, root)
                conn.close()
                _remove_parts(root, outdated)
            finally:
                _unlock(self.lock_file, self.wait_file)
                self.lock_file = self.wait_file = None

    def _others_waiting(self) -> bool:
        try:
            fcntl.flock(self.wait_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self.wait_file, fcntl.LOCK_UN)
        return False

    def _watch(self) -> None:
        me = threading.current_thread()
        while self.watcher is me:
            with self.lock:
                while self.conn is None or self.depth:
                    self.idle.wait()
                    if self.watcher is not me:
                        return
                linger = settings.CLICKHOUSE_EMBEDDED_LINGER_SECONDS
                if time.monotonic() - self.last_used > linger or self._others_waiting():
                    self.close()
                    continue
            time.sleep(HANDOFF_POLL_SECONDS)

    def before_fork(self) -> None:
        self.lock.acquire()
        try:
            self.close()
        except Exception:
            logger.exception("could not close the embedded store before fork")

    def after_fork_parent(self) -> None:
        self.lock.release()

    def after_fork_child(self) -> None:
        # A fork inside a session leaves the parent's connection and lock to the parent.
        self.__init__()


_HOLDER = _Holder()
os.register_at_fork(
    before=_HOLDER.before_fork,
    after_in_parent=_HOLDER.after_fork_parent,
    after_in_child=_HOLDER.after_fork_child,
)


def _lock_exclusive(store: EmbeddedStore):
    """Take the store's exclusive lock, telling the holder (if any) that someone waits."""
    lock_file = open(store.lock_path, "a")  # noqa: SIM115 - closed by _unlock
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass
    else:
        return lock_file, open(store.lock_path + ".waiting", "a")
    wait_file = open(store.lock_path + ".waiting", "a")  # noqa: SIM115
    try:
        fcntl.flock(wait_file, fcntl.LOCK_SH)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreUnavailable(
                        f"the embedded store at {store.path} stayed locked by another process"
                    ) from None
                time.sleep(HANDOFF_POLL_SECONDS / 2)
        fcntl.flock(wait_file, fcntl.LOCK_UN)
    except BaseException:
        lock_file.close()
        wait_file.close()
        raise
    return lock_file, wait_file


def _unlock(lock_file, wait_file) -> None:
    if lock_file is not None:
        fcntl.flock(lock_file, fcntl.LOCK_UN)
        lock_file.close()
    if wait_file is not None:
        wait_file.close()


def _outdated_parts(conn, root: str) -> list[tuple[str, str | None]]:
    try:
        text = conn.query(_OUTDATED_PARTS_SQL, "JSONEachRow").data()
        return [(row["path"], row["cover"]) for row in decode_rows(text)]
    except Exception:  # housekeeping must never fail the caller's statement (nor exit)
        logger.exception("could not list the outdated parts of %s", root)
        return []


def _remove_parts(root: str, outdated: list[tuple[str, str | None]]) -> None:
    """Runs with the store closed and locked: nothing reads these directories now."""
    root = root.rstrip("/") + "/"
    try:
        for cover in sorted({c for _, c in outdated if c and c.startswith(root)}):
            _fsync_tree(cover)
        for path, _ in outdated:
            if path.startswith(root) and os.path.isdir(path):
                shutil.rmtree(path)
    except OSError:
        logger.exception("could not remove the outdated parts of %s", root)


class EmbeddedStore(AnalyticsStore):
    def __init__(self, path: str):
        self.path = str(Path(path).resolve())
        Path(self.path).mkdir(parents=True, exist_ok=True)
        self.lock_path = self.path + ".lock"

    def __repr__(self) -> str:
        return f"EmbeddedStore({self.path!r})"

    @property
    def identity(self) -> str:
        return digest(self.path)

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        with _HOLDER.lock:
            conn = _HOLDER.acquire(self)
            _HOLDER.depth += 1
            try:
                yield conn
            finally:
                _HOLDER.depth -= 1
                _HOLDER.release()

    def release(self) -> None:
        """Close this store's lingering connection now (before its directory is removed)."""
        _HOLDER.close(self.path)

    @contextmanager
    def session(self) -> Iterator[EmbeddedStore]:
        with self._connection():
            yield self

    def _run(
        self, conn, sql: str, fmt: str, params: Mapping[str, Any] | None, timeout: float | None
    ):
        limit = time_limit(timeout)
        try:
            conn.query(f"SET max_execution_time = {float(limit)}")
            return conn.query(sql, fmt, params=bind_params(params) if params else None)
        except Exception as exc:
            raise classify_error(str(exc), timeout=limit) from exc

    def query(self, sql, params=None, *, timeout=None, consistent=False) -> list[dict]:
        # One process holds the store at a time: every read already sees every write.
        with self._connection() as conn:
            result = self._run(conn, sql, "JSONEachRow", params, timeout)
        return decode_rows(result.data() if hasattr(result, "data") else str(result))

    def query_df(self, sql, params=None, *, timeout=None):
        with self._connection() as conn:
            result = self._run(conn, sql, "Arrow", params, timeout)
        return decode_arrow(
            result.bytes(), describe=lambda: self.column_types(sql, params, timeout)
        )

    def command(self, sql, params=None, *, timeout=None) -> None:
        with self._connection() as conn:
            self._run(conn, sql, "CSV", params, timeout)

    def insert_json_each_row(self, table: str, payload: bytes) -> None:
        table_identifier(table)
        with self._connection() as conn:
            try:
                conn.query(f"INSERT INTO {table} FORMAT JSONEachRow\n" + payload.decode())
            except Exception as exc:
                raise classify_error(str(exc), payload=payload) from exc
