"""A loopback stand-in for a ClickHouse server's HTTP interface, executing SQL in chdb.

What it stands for: the ClickHouse server production reaches through `CLICKHOUSE_URL` with
clickhouse-connect (HTTP, port 8123). No ClickHouse server can be installed on these machines,
so only the transport is emulated here: every statement is parsed, bound (`{name:Type}`
placeholders from `param_<name>` values, parsed in the Escaped text format as a server does)
and executed by the real ClickHouse engine that chdb embeds, in one process that owns one
`chdb.connect(path)` connection. Run as a script it is the server; imported, it offers the
test-side controller `ClickHouseEmulator`, which spawns the script under any interpreter that
has chdb (`CLICKHOUSE_EMULATOR_PYTHON` picks it, e.g. an old chdb bundling ClickHouse 24.8).

Supported (the part of the HTTP interface clickhouse-connect uses): `GET /ping`; the query in
the `query` URL parameter, in the body, or in `application/x-www-form-urlencoded` and
`multipart/form-data` fields, with the body appended as data when `query` is in the URL
(chunked and `Content-Encoding: gzip`/`deflate` bodies too); `param_<name>` bindings; every
other URL parameter naming a setting applies to that request only (an unknown one fails with
115 UNKNOWN_SETTING); `SET` statements are undone after each request unless it carries a
`session_id`, whose later requests get them again; `database` / `X-ClickHouse-Database`,
`default_format` / `X-ClickHouse-Format` / a trailing `FORMAT` clause; authentication by
`X-ClickHouse-User`/`X-ClickHouse-Key`, basic auth or `user`/`password` parameters (one user);
inserts in any input format including binary Native (the data goes to the engine through
`FROM INFILE`); the `X-ClickHouse-*` response headers (`Summary` carries what chdb reports:
read rows/bytes and elapsed time, zeros elsewhere); gzip/deflate responses when the request
says `enable_http_compression=1` and `Accept-Encoding` allows them; the URI and form-field
size limits (`http_max_uri_size`, `http_max_field_value_size`, answered with 400).

Errors are answered like a server's: header `X-ClickHouse-Exception-Code: N` and body
`Code: N. DB::Exception: <message> (NAME) (version V)`, with ClickHouse's own status mapping
(src/Server/HTTP/exceptionCodeToHTTPStatus.cpp): 401 REQUIRED_PASSWORD; 403 UNKNOWN_USER,
WRONG_PASSWORD, AUTHENTICATION_FAILED (516), SET_NON_GRANTED_ROLE, ACCESS_DENIED; 400 the
parse and bad-argument class (SYNTAX_ERROR 62, BAD_ARGUMENTS 36, CANNOT_PARSE_*, TYPE_MISMATCH,
ILLEGAL_COLUMN, INCORRECT_DATA, ...); 404 the unknown-thing class (UNKNOWN_TABLE 60,
UNKNOWN_DATABASE 81, UNKNOWN_IDENTIFIER 47, UNKNOWN_FUNCTION 46, UNKNOWN_SETTING 115, ...);
408 TIMEOUT_EXCEEDED (159); 413 QUERY_IS_TOO_LARGE; 501 NOT_IMPLEMENTED; 503 SOCKET_TIMEOUT,
CANNOT_OPEN_FILE, CANNOT_SCHEDULE_TASK; 500 everything else (TOO_MANY_PARTS 252,
MEMORY_LIMIT_EXCEEDED 241, ...). Codes are matched by name (`errorCodeToName`), so the
mapping holds on every engine version.

Faults for tests (`POST /__emulator/faults`): answer the next N requests with a status and a
ClickHouse-style body, sleep before answering, die (`os._exit`) on the next INSERT before or
after executing it, or refuse the next inserts with an exception code. `GET /__emulator/stats`
counts requests.

What it cannot show: real concurrency (one engine connection, statements run one at a time
under a lock, so no parallel queries, no `query_id` conflicts, no cancellation when a client
hangs up), replication, clusters and distributed tables, users/roles/quotas beyond one
password, a server's merges and background cleanup timing, lz4/zstd/br and ClickHouse's
native `compress=1` framing (requests asking only for those get identity responses), streamed
responses (the whole result is buffered, as with `wait_end_of_query=1`, so an error never
arrives after a 200), progress headers, external data tables, session temporary tables,
`readonly` for GET requests, and the exact HTTP status of every error the HTTP layer itself
raises (URI and form-field limits answer 400). `param_` values persist in the engine between
requests (a query naming a parameter its request did not send may still bind). chdb's own
defaults that differ from a server's (`async_insert`, `date_time_input_format`, ...) are reset
to the server defaults at start. On old chdb (ClickHouse 24.8), whose `default` database lives
in memory, `default` is an Ordinary database on disk instead of a server's Atomic one (so
`EXCHANGE TABLES` and UUID paths differ there).

Run it: `python testing/clickhouse_server.py --path DIR --port N [--user U --password P]`
(stdlib and chdb only at module level, so any interpreter with chdb will do).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import uuid
import zlib
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

DEFAULT_MAX_URI_SIZE = 1024 * 1024  # http_max_uri_size
DEFAULT_MAX_FIELD_VALUE_SIZE = 128 * 1024  # http_max_field_value_size

# chdb's defaults that differ from a ClickHouse server's, put back to the server's at start.
SERVER_DEFAULTS = (
    ("async_insert", "0"),
    ("date_time_input_format", "basic"),
    ("implicit_select", "0"),
    # Drops complete at once: chdb has no background thread to remove a dropped table later.
    ("database_atomic_wait_for_drop_and_detach_synchronously", "1"),
)

# URL parameters a server's HTTP handler consumes itself: never settings.
TRANSPORT_PARAMS = {
    "query",
    "database",
    "default_format",
    "query_id",
    "session_id",
    "session_timeout",
    "session_check",
    "user",
    "password",
    "quota_key",
    "compress",
    "decompress",
    "client_protocol_version",
    "buffer_size",
    "wait_end_of_query",
    "role",
    "stacktrace",
}

STATUS_BY_NAME = {
    "REQUIRED_PASSWORD": 401,
    **dict.fromkeys(
        (
            "UNKNOWN_USER",
            "WRONG_PASSWORD",
            "AUTHENTICATION_FAILED",
            "SET_NON_GRANTED_ROLE",
            "ACCESS_DENIED",
        ),
        403,
    ),
    **dict.fromkeys(
        (
            "BAD_ARGUMENTS",
            "CANNOT_COMPILE_REGEXP",
            "CANNOT_PARSE_TEXT",
            "CANNOT_PARSE_ESCAPE_SEQUENCE",
            "CANNOT_PARSE_QUOTED_STRING",
            "CANNOT_PARSE_DATE",
            "CANNOT_PARSE_DATETIME",
            "CANNOT_PARSE_NUMBER",
            "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
            "CANNOT_PARSE_IPV4",
            "CANNOT_PARSE_IPV6",
            "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
            "CANNOT_PARSE_UUID",
            "DUPLICATE_COLUMN",
            "ILLEGAL_COLUMN",
            "UNKNOWN_ELEMENT_IN_AST",
            "UNKNOWN_TYPE_OF_AST_NODE",
            "THERE_IS_NO_COLUMN",
            "TOO_DEEP_AST",
            "TOO_BIG_AST",
            "UNEXPECTED_AST_STRUCTURE",
            "SYNTAX_ERROR",
            "INCORRECT_DATA",
            "TYPE_MISMATCH",
            "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
        ),
        400,
    ),
    **dict.fromkeys(
        (
            "UNKNOWN_TABLE",
            "UNKNOWN_FUNCTION",
            "UNKNOWN_IDENTIFIER",
            "UNKNOWN_TYPE",
            "UNKNOWN_STORAGE",
            "UNKNOWN_DATABASE",
            "UNKNOWN_SETTING",
            "UNKNOWN_DIRECTION_OF_SORTING",
            "UNKNOWN_AGGREGATE_FUNCTION",
            "UNKNOWN_FORMAT",
            "UNKNOWN_DATABASE_ENGINE",
            "UNKNOWN_TYPE_OF_QUERY",
            "UNKNOWN_ROLE",
        ),
        404,
    ),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "CANNOT_SCHEDULE_TASK": 503,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}

CONTENT_TYPES = (
    ("JSON", "application/json; charset=UTF-8"),
    ("TabSeparated", "text/tab-separated-values; charset=UTF-8"),
    ("TSV", "text/tab-separated-values; charset=UTF-8"),
    ("CSV", "text/csv; charset=UTF-8; header=absent"),
    ("Native", "application/octet-stream"),
    ("RowBinary", "application/octet-stream"),
    ("Arrow", "application/octet-stream"),
    ("Parquet", "application/octet-stream"),
)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"Code: (\d+)\. (?:DB::Exception: )?(.*)", re.S)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.I)
_INSERT = re.compile(rb"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*INSERT\b", re.I | re.S)
_INSERT_FORMAT = re.compile(rb"\bFORMAT\s+([A-Za-z0-9_]+)[ \t]*(?:\r?\n)?", re.I)


class EngineError(Exception):
    """A ClickHouse exception: its code and its message (which ends in `(NAME)`)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def sql_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


_ORDINARY_MARKER = "emulator-ordinary-default"
_DEFAULT_DB_FILES = (
    ("metadata/default.sql", "default.sql"),
    ("metadata/default", "metadata"),
    ("data/default", "data"),
)


def _set_aside_default_database(path: str) -> str | None:
    """Move the Ordinary `default` database made on an old engine out of chdb's way before it
    starts (it would collide with the in-memory `default` chdb creates); returns where."""
    if not os.path.exists(os.path.join(path, _ORDINARY_MARKER)):
        return None
    kept = os.path.join(path, "emulator-default")
    os.makedirs(kept, exist_ok=True)
    for src, dst in _DEFAULT_DB_FILES:
        if os.path.exists(os.path.join(path, src)):
            os.replace(os.path.join(path, src), os.path.join(kept, dst))
    return kept


class Engine:
    """The process's one chdb connection; every call holds the lock."""

    def __init__(self, path: str):
        import chdb

        self.lock = threading.Lock()
        kept = _set_aside_default_database(path)
        self.conn = chdb.connect(path)
        self.scratch = tempfile.mkdtemp(prefix="chemu-")
        with self.lock:
            self._persistent_default_database(path, kept)
            known = {row[0] for row in self._rows("SELECT name FROM system.settings")}
            for name, value in SERVER_DEFAULTS:
                if name in known:
                    self.run(f"SET {name} = {sql_quote(value)}")
            self.version, self.timezone = self._rows("SELECT version(), timezone()")[0]
            self.baseline = self._changed()
        self.names: dict[int, str] = {}
        self.sessions: dict[str, dict[str, str]] = {}

    def _persistent_default_database(self, path: str, kept: str | None) -> None:
        """Old chdb (24.8) serves `default` from memory: its tables' metadata is never saved,
        so they vanish with the process. A server's `default` is on disk; an Ordinary database
        (metadata/default/*.sql, data/default/) stands in for it there."""
        engine = self._rows("SELECT engine FROM system.databases WHERE name = 'default'")
        if engine and engine[0][0] not in ("Overlay", "Memory"):
            return
        self.run("DROP DATABASE IF EXISTS default")
        if kept:
            for src, dst in _DEFAULT_DB_FILES:
                if os.path.exists(os.path.join(kept, dst)):
                    os.replace(os.path.join(kept, dst), os.path.join(path, src))
            os.rmdir(kept)
            self.run("ATTACH DATABASE default")
        else:
            self.run("SET allow_deprecated_database_ordinary = 1")
            self.run("CREATE DATABASE default ENGINE = Ordinary")
            self.run("SET allow_deprecated_database_ordinary = DEFAULT")
        with open(os.path.join(path, _ORDINARY_MARKER), "w") as fh:
            fh.write("default is an Ordinary database made by testing/clickhouse_server.py\n")

    def run(self, sql: str, fmt: str = "TabSeparated"):
        try:
            return self.conn.query(sql, fmt)
        except Exception as exc:
            # chdb 4 keeps the output a failed query had produced and prepends it to the
            # next query's result: a throwaway query takes it.
            with contextlib.suppress(Exception):
                self.conn.query("SELECT 1", "TabSeparated")
            text = str(exc)
            match = _CODE.search(text)
            if match is None:
                raise EngineError(1002, f"{text} (UNKNOWN_EXCEPTION)") from exc
            raise EngineError(int(match.group(1)), match.group(2).strip()) from exc

    def _rows(self, sql: str) -> list[list[str]]:
        out = self.run(sql).bytes().decode()
        return [line.split("\t") for line in out.splitlines()]

    def _changed(self) -> dict[str, str]:
        rows = self._rows(
            "SELECT name, value FROM system.settings WHERE changed SETTINGS limit = 0, "
            "offset = 0, max_result_rows = 0, max_rows_to_read = 0, max_bytes_to_read = 0"
        )
        return {name: value for name, value in rows if name != "database"}

    def error_name(self, code: int) -> str:
        if code not in self.names:
            with self.lock:
                self.names[code] = self._rows(f"SELECT errorCodeToName({int(code)})")[0][0]
        return self.names[code] or "UNKNOWN_EXCEPTION"

    def restore(self, session_id: str | None, request_settings: set[str]) -> None:
        """Undo every setting the request changed; a session keeps its SET statements."""
        now = self._changed()
        if session_id:
            kept = {
                name: value
                for name, value in now.items()
                if name not in request_settings and self.baseline.get(name) != value
            }
            self.sessions[session_id] = kept
        for name in set(now) | set(self.baseline):
            if now.get(name) == self.baseline.get(name):
                continue
            if name in self.baseline:
                self.run(f"SET {name} = {sql_quote(self.baseline[name])}")
            else:
                self.run(f"SET {name} = DEFAULT")

    def execute(self, request: Request) -> tuple[bytes, str, dict]:
        """Run one request's statement; returns (body, format, summary)."""
        with self.lock:
            try:
                self.run(f"USE `{request.database.replace('`', '``')}`")
                for name, value in self.sessions.get(request.session_id or "", {}).items():
                    self.run(f"SET {name} = {sql_quote(value)}")
                for name, value in request.settings.items():
                    if not _IDENT.match(name):
                        raise EngineError(115, f"Unknown setting '{name}'. (UNKNOWN_SETTING)")
                    self.run(f"SET {name} = {sql_quote(value)}")
                for name, value in request.params.items():
                    if not _IDENT.match(name):
                        raise EngineError(36, f"Bad parameter name '{name}'. (BAD_ARGUMENTS)")
                    self.run(f"SET param_{name} = {sql_quote(value)}")
                return self._statement(request)
            finally:
                self.restore(request.session_id, set(request.settings))

    def _statement(self, request: Request) -> tuple[bytes, str, dict]:
        sql, fmt, data = request.sql, request.fmt, None
        if _INSERT.match(sql):
            match = _INSERT_FORMAT.search(sql)
            if match and match.group(1).lower() != b"values":
                data = sql[match.end() :]
                head = sql[: match.start()].decode()
                fmt_name = match.group(1).decode()
        if data is not None:
            fd, path = tempfile.mkstemp(dir=self.scratch)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                result = self.run(f"{head} FROM INFILE {sql_quote(path)} FORMAT {fmt_name}")
            finally:
                os.unlink(path)
        else:
            text = sql.decode()
            trailing = _TRAILING_FORMAT.search(text)
            if trailing:
                fmt = trailing.group(1)
            result = self.run(text, fmt)
        body = result.bytes() if result is not None else b""

        def stat(name):
            with_value = getattr(result, name, None)
            try:
                return int(with_value()) if callable(with_value) else 0
            except Exception:
                return 0

        elapsed = getattr(result, "elapsed", None)
        summary = {
            "read_rows": stat("rows_read"),
            "read_bytes": stat("bytes_read"),
            "written_rows": 0,
            "written_bytes": 0,
            "total_rows_to_read": stat("rows_read"),
            "result_rows": 0,
            "result_bytes": len(body),
            "elapsed_ns": int(float(elapsed()) * 1e9) if callable(elapsed) else 0,
        }
        return body, fmt, summary


class Request:
    def __init__(self):
        self.sql = b""
        self.fmt = "TabSeparated"
        self.database = "default"
        self.session_id: str | None = None
        self.settings: dict[str, str] = {}
        self.params: dict[str, str] = {}
        self.query_id = ""
        self.is_insert = False
        self.compress_response = False
        self.user: str | None = None
        self.password: str | None = None


class HttpError(Exception):
    def __init__(self, status: int, code: int | None, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self, **config):
        self.fail_count = int(config.get("fail_count", 0))
        self.fail_status = int(config.get("fail_status", 503))
        self.fail_code = config.get("fail_code")
        self.fail_message = config.get("fail_message", "Service temporarily unavailable")
        self.delay = float(config.get("delay", 0))
        self.delay_count = config.get("delay_count")  # None: every request
        self.die_on_insert = config.get("die_on_insert")  # "before" | "after" | None
        self.insert_error_code = config.get("insert_error_code")
        self.insert_error_count = int(config.get("insert_error_count", 1))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorServer

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)

    # --- plumbing -----------------------------------------------------------------------
    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_error(self, status: int, code: int | None, message: str, query_id="") -> None:
        engine = self.server.engine
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Server-Display-Name": self.server.display_name,
        }
        if query_id:
            headers["X-ClickHouse-Query-Id"] = query_id
        if code is None:
            body = message
        else:
            if not re.search(r"\([A-Z_0-9]+\)\s*$", message):
                message = f"{message} ({engine.error_name(code)})"
            body = f"Code: {code}. DB::Exception: {message} (version {engine.version})"
            headers["X-ClickHouse-Exception-Code"] = str(code)
        self._send(status, (body + "\n").encode(), headers)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(chunks)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding not in ("", "identity"):
            raise HttpError(
                501, 48, f"Content-Encoding {encoding} is not supported by the emulator"
            )
        return body

    # --- entry points -------------------------------------------------------------------
    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        server = self.server
        path = urlsplit(self.path).path
        try:
            if len(self.path) > server.max_uri_size:
                self._read_body()
                self.close_connection = True
                raise HttpError(400, None, "Bad Request: URI too long")
            if path in ("/ping", "/ping/"):
                self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
                return
            if path.startswith("/__emulator/"):
                self._control(method, path)
                return
            if path not in ("/", ""):
                raise HttpError(404, None, f"There is no handle {path}")
            self._query(method)
        except HttpError as exc:
            self._send_error(exc.status, exc.code, exc.message)

    def _control(self, method: str, path: str) -> None:
        server = self.server
        if path == "/__emulator/faults" and method == "POST":
            config = json.loads(self._read_body() or b"{}")
            with server.faults.lock:
                server.faults.reset(**config)
            self._send(200, b"{}", {"Content-Type": "application/json"})
        elif path == "/__emulator/stats":
            with server.stats_lock:
                body = json.dumps(server.stats).encode()
            self._send(200, body, {"Content-Type": "application/json"})
        elif path == "/__emulator/info":
            engine = server.engine
            info = {"version": engine.version, "timezone": engine.timezone, "pid": os.getpid()}
            self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"})
        else:
            raise HttpError(404, None, f"There is no handle {path}")

    def _count(self, key: str) -> None:
        with self.server.stats_lock:
            self.server.stats[key] = self.server.stats.get(key, 0) + 1

    def _query(self, method: str) -> None:
        server, faults = self.server, self.server.faults
        self._count("requests")
        body = self._read_body()
        query_id = ""
        with faults.lock:
            fail = faults.fail_count > 0
            if fail:
                faults.fail_count -= 1
            delay = faults.delay if faults.delay_count is None or faults.delay_count > 0 else 0
            if delay and faults.delay_count is not None:
                faults.delay_count -= 1
        if delay:
            time.sleep(delay)
        if fail:
            self._count("faulted")
            self._send_error(faults.fail_status, faults.fail_code, faults.fail_message)
            return
        try:
            request = self._parse(method, body)
            query_id = request.query_id
            self._authenticate(request)
            if request.is_insert:
                self._count("inserts")
                with faults.lock:
                    die = faults.die_on_insert
                    faults.die_on_insert = None
                    error_code = faults.insert_error_code
                    if error_code is not None:
                        faults.insert_error_count -= 1
                        if faults.insert_error_count <= 0:
                            faults.insert_error_code = None
                if die == "before":
                    os._exit(137)
                if error_code is not None:
                    name = server.engine.error_name(int(error_code))
                    raise EngineError(int(error_code), f"Injected by the emulator. ({name})")
            else:
                self._count("queries")
            data, fmt, summary = server.engine.execute(request)
            if request.is_insert and die == "after":
                os._exit(137)
        except EngineError as exc:
            self._count("errors")
            status = STATUS_BY_NAME.get(server.engine.error_name(exc.code), 500)
            self._send_error(status, exc.code, exc.message, query_id)
            return
        headers = {
            "Content-Type": next(
                (ctype for prefix, ctype in CONTENT_TYPES if fmt.startswith(prefix)),
                "text/plain; charset=UTF-8",
            ),
            "X-ClickHouse-Server-Display-Name": server.display_name,
            "X-ClickHouse-Query-Id": request.query_id,
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Timezone": server.engine.timezone,
            "X-ClickHouse-Summary": json.dumps({k: str(v) for k, v in summary.items()}),
        }
        if request.compress_response and data:
            accept = self.headers.get("Accept-Encoding", "")
            if "gzip" in accept:
                data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
            elif "deflate" in accept:
                data, headers["Content-Encoding"] = zlib.compress(data), "deflate"
        self._send(200, data, headers)

    def _parse(self, method: str, body: bytes) -> Request:
        fields: list[tuple[str, bytes]] = [
            (k, v.encode()) for k, v in parse_qsl(urlsplit(self.path).query, keep_blank_values=True)
        ]
        ctype = self.headers.get("Content-Type", "")
        body_is_form = False
        if method == "POST" and ctype.startswith("multipart/form-data"):
            message = BytesParser().parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
            )
            for part in message.get_payload():
                name = part.get_param("name", header="content-disposition")
                if part.get_param("filename", header="content-disposition"):
                    raise EngineError(
                        48, "External data is not supported by the emulator. (NOT_IMPLEMENTED)"
                    )
                value = part.get_payload(decode=True) or b""
                fields.append((name, value))
                self._check_field(value)
            body_is_form = True
        elif method == "POST" and ctype.startswith("application/x-www-form-urlencoded"):
            for k, v in parse_qsl(body.decode(), keep_blank_values=True):
                self._check_field(v.encode())
                fields.append((k, v.encode()))
            body_is_form = True
        request = Request()
        query = b""
        user = password = None
        for name, raw in fields:
            value = raw.decode("utf-8", "surrogateescape")
            if name == "query":
                query = raw
            elif name.startswith("param_"):
                request.params[name[len("param_") :]] = value
            elif name == "database":
                request.database = value
            elif name == "default_format":
                request.fmt = value
            elif name == "query_id":
                request.query_id = value
            elif name == "session_id":
                request.session_id = value or None
            elif name == "user":
                user = value
            elif name == "password":
                password = value
            elif name == "compress" and value not in ("", "0"):
                raise EngineError(
                    48, "ClickHouse native response compression is not emulated. (NOT_IMPLEMENTED)"
                )
            elif name in TRANSPORT_PARAMS:
                pass
            else:
                request.settings[name] = value
        if "X-ClickHouse-Database" in self.headers:
            request.database = self.headers["X-ClickHouse-Database"]
        if "X-ClickHouse-Format" in self.headers and "default_format" not in dict(fields):
            request.fmt = self.headers["X-ClickHouse-Format"]
        if not body_is_form and body:
            query = query + b"\n" + body if query else body
        if not query.strip():
            raise EngineError(62, "Empty query. (SYNTAX_ERROR)")
        request.sql = query
        request.is_insert = bool(_INSERT.match(query))
        request.query_id = request.query_id or str(uuid.uuid4())
        request.compress_response = request.settings.get("enable_http_compression") == "1"
        request.user, request.password = user, password
        return request

    def _check_field(self, value: bytes) -> None:
        if len(value) > self.server.max_field_value_size:
            raise HttpError(400, None, "Bad Request: Field value too long")

    def _authenticate(self, request: Request) -> None:
        server = self.server
        user, password = request.user, request.password
        if "X-ClickHouse-User" in self.headers or "X-ClickHouse-Key" in self.headers:
            user = self.headers.get("X-ClickHouse-User", "default")
            password = self.headers.get("X-ClickHouse-Key", "")
        auth = self.headers.get("Authorization", "")
        if user is None and auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                user = ""
        user = "default" if user is None else user
        password = password or ""
        if user != server.user or password != server.password:
            raise EngineError(
                516,
                f"{user}: Authentication failed: password is incorrect, or there is no user "
                "with such name. (AUTHENTICATION_FAILED)",
            )


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, engine: Engine, *, user, password, max_uri_size,
                 max_field_value_size, verbose=False):  # fmt: skip
        super().__init__(address, Handler)
        self.engine, self.user, self.password = engine, user, password
        self.max_uri_size, self.max_field_value_size = max_uri_size, max_field_value_size
        self.verbose = verbose
        self.display_name = socket.gethostname()
        self.faults = Faults()
        self.stats: dict[str, int] = {}
        self.stats_lock = threading.Lock()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True, help="chdb data directory")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--user", default="default")
    parser.add_argument(
        "--password",
        default=os.environ.get("CLICKHOUSE_EMULATOR_PASSWORD", ""),
        help="default: $CLICKHOUSE_EMULATOR_PASSWORD",
    )
    parser.add_argument("--max-uri-size", type=int, default=DEFAULT_MAX_URI_SIZE)
    parser.add_argument("--max-field-value-size", type=int, default=DEFAULT_MAX_FIELD_VALUE_SIZE)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    os.makedirs(args.path, exist_ok=True)
    engine = Engine(args.path)
    server = EmulatorServer(
        ("127.0.0.1", args.port),
        engine,
        user=args.user,
        password=args.password,
        max_uri_size=args.max_uri_size,
        max_field_value_size=args.max_field_value_size,
        verbose=args.verbose,
    )
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# --- the test-side controller ----------------------------------------------------------------


class ClickHouseEmulator:
    """Runs this module as a server subprocess and controls it (see the module docstring).

    `python`: the interpreter (default `$CLICKHOUSE_EMULATOR_PYTHON`, else `sys.executable`);
    `port=0` picks a free loopback port, kept across `restart()`.
    """

    def __init__(
        self,
        path,
        *,
        python: str | None = None,
        port: int = 0,
        user: str = "default",
        password: str = "",
        max_uri_size: int = DEFAULT_MAX_URI_SIZE,
        max_field_value_size: int = DEFAULT_MAX_FIELD_VALUE_SIZE,
        start_timeout: float = 60.0,
    ):
        self.path = os.fspath(path)
        self.python = python or os.environ.get("CLICKHOUSE_EMULATOR_PYTHON") or sys.executable
        self.port = port
        self.user, self.password = user, password
        self.max_uri_size, self.max_field_value_size = max_uri_size, max_field_value_size
        self.start_timeout = start_timeout
        self.process = None
        self.engine_version = ""
        self.log_path = ""

    # lifecycle
    def __enter__(self) -> ClickHouseEmulator:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> ClickHouseEmulator:
        import subprocess

        if self.port == 0:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                self.port = sock.getsockname()[1]
        fd, self.log_path = tempfile.mkstemp(prefix="clickhouse-emulator-", suffix=".log")
        env = {**os.environ, "CLICKHOUSE_EMULATOR_PASSWORD": self.password}
        argv = [
            self.python,
            os.path.abspath(__file__),
            f"--path={self.path}",
            f"--port={self.port}",
            f"--user={self.user}",
            f"--max-uri-size={self.max_uri_size}",
            f"--max-field-value-size={self.max_field_value_size}",
        ]
        with os.fdopen(fd, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the ClickHouse emulator exited at start:\n{self.log()}")
            try:
                if self._http("GET", "/ping", timeout=1) == b"Ok.\n":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the ClickHouse emulator did not start:\n{self.log()}")
            time.sleep(0.05)
        self.engine_version = self.info()["version"]
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except Exception:
                process.kill()
                process.wait(10)

    def kill(self) -> None:
        """SIGKILL: the server dies as a crashed one would, without any cleanup."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> ClickHouseEmulator:
        """A new process on the same data directory and port."""
        self.stop()
        return self.start()

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to end (after a `die_on_insert` fault); its exit status."""
        return self.process.wait(timeout)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def url(self) -> str:
        from urllib.parse import quote

        auth = quote(self.user, safe="") + ":" + quote(self.password, safe="")
        return f"http://{auth}@127.0.0.1:{self.port}/default"

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    # control endpoint
    def _http(self, method: str, path: str, body: bytes | None = None, timeout: float = 10):
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"{method} {path}: {response.status} {data!r}")
            return data
        finally:
            conn.close()

    def info(self) -> dict:
        return json.loads(self._http("GET", "/__emulator/info"))

    def faults(
        self,
        *,
        fail_count: int = 0,
        fail_status: int = 503,
        fail_code: int | None = None,
        fail_message: str = "Service temporarily unavailable",
        delay: float = 0.0,
        delay_count: int | None = None,
        die_on_insert: str | None = None,
        insert_error_code: int | None = None,
        insert_error_count: int = 1,
    ) -> None:
        """Replace the fault set (no arguments: clear every fault).

        fail_count/fail_status/fail_code: answer the next N requests with that status (and
        that exception code, if given); delay: sleep that long before answering (the next
        `delay_count` requests, or every one); die_on_insert: "before" or "after" executing
        the next INSERT the process exits without answering; insert_error_code: answer the
        next `insert_error_count` inserts with that ClickHouse exception, executing nothing.
        """
        if die_on_insert not in (None, "before", "after"):
            raise ValueError("die_on_insert is 'before', 'after' or None")
        config = {
            "fail_count": fail_count,
            "fail_status": fail_status,
            "fail_code": fail_code,
            "fail_message": fail_message,
            "delay": delay,
            "delay_count": delay_count,
            "die_on_insert": die_on_insert,
            "insert_error_code": insert_error_code,
            "insert_error_count": insert_error_count,
        }
        self._http("POST", "/__emulator/faults", json.dumps(config).encode())

    def stats(self) -> dict:
        """Request counts: requests, queries, inserts, errors, faulted."""
        return json.loads(self._http("GET", "/__emulator/stats"))


if __name__ == "__main__":
    main()
