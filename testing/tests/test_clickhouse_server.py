"""The ClickHouse HTTP emulator against a real clickhouse-connect client, on both engines:
the project's chdb and the oldest supported server version's (chdb 3.0.1 = ClickHouse 24.8).
"""

import gzip
import http.client
import json
import os
import sys
import time
from datetime import date, datetime
from urllib.parse import urlencode

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from testing.clickhouse_server import ClickHouseEmulator
from testing.engines import OLDEST_ENGINE_PYTHON, oldest_engine_missing

PASSWORD = "pw 'sec\\ret"

ENGINES = [
    pytest.param(os.environ.get("CLICKHOUSE_EMULATOR_PYTHON") or sys.executable, id="current"),
    pytest.param(
        OLDEST_ENGINE_PYTHON,
        id="oldest",
        marks=pytest.mark.skipif(bool(oldest_engine_missing()), reason=oldest_engine_missing()),
    ),
]


@pytest.fixture(scope="module", params=ENGINES)
def emulator(request, tmp_path_factory):
    with ClickHouseEmulator(
        tmp_path_factory.mktemp("chdb"), python=request.param, password=PASSWORD
    ) as emu:
        yield emu


@pytest.fixture
def emu(emulator):
    if not emulator.alive:
        emulator.restart()
    emulator.faults()
    yield emulator
    if emulator.alive:
        emulator.faults()


def connect(emu, **kwargs):
    options = {"username": "default", "password": PASSWORD, "compress": False}
    return clickhouse_connect.get_client(host="127.0.0.1", port=emu.port, **{**options, **kwargs})


@pytest.fixture
def client(emu):
    client = connect(emu)
    yield client
    client.close()


def raw(emu, method, path, body=None, headers=None):
    """One plain HTTP request: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    try:
        conn.request(
            method, path, body=body, headers={"X-ClickHouse-Key": PASSWORD, **(headers or {})}
        )
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def fresh_table(client, name):
    client.command(f"DROP TABLE IF EXISTS {name}")
    client.command(f"CREATE TABLE {name} (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
    return name


def test_start_up_reports_the_engine_version(emu, client):
    assert client.server_version == emu.engine_version
    assert client.server_version.split(".")[0].isdigit()
    assert emu.url == f"http://default:pw%20%27sec%5Cret@127.0.0.1:{emu.port}/default"
    status, _headers, body = raw(emu, "GET", "/ping")
    assert (status, body) == (200, b"Ok.\n")


def test_parameters_of_every_type_are_bound_by_the_engine(client):
    text = "back\\slash\ttab 'quote\" é ✓ \\N"
    params = {
        "s": text,
        "ts": datetime(2024, 1, 2, 3, 4, 5, 678000),
        "d": date(2024, 2, 29),
        "arr": ["a", "b'c", "d\\e", "f\tg"],
        "n": 2**64 - 1,
        "missing": None,
    }
    row = client.query(
        "SELECT {s:String} AS s, {ts:DateTime64(3)} AS ts, {d:Date} AS d, "
        "{arr:Array(String)} AS arr, {n:UInt64} AS n, {missing:Nullable(String)} AS missing",
        parameters=params,
    ).first_row
    assert row == (text, params["ts"], params["d"], params["arr"], 2**64 - 1, None)


def test_param_values_are_parsed_in_the_escaped_format_like_a_server(emu):
    # A server parses param_ values as Escaped text: `\\t` is a backslash and a t, `\t` a tab.
    query = urlencode(
        {
            "query": "SELECT {a:String} AS a, {b:String} AS b FORMAT JSONEachRow",
            "param_a": "x\\\\ty'é",
            "param_b": "x\\ty",
        }
    )
    status, headers, body = raw(emu, "POST", f"/?{query}")
    assert status == 200, body
    assert json.loads(body) == {"a": "x\\ty'é", "b": "x\ty"}
    assert headers["X-ClickHouse-Format"] == "JSONEachRow"


def test_raw_query_json_each_row_and_command_ddl(client):
    table = fresh_table(client, "ddl")
    assert client.command(f"EXISTS TABLE {table}") == 1
    client.command(f"INSERT INTO {table} VALUES (1, 'one'), (2, 'two')")
    out = client.raw_query(f"SELECT * FROM {table} ORDER BY id", fmt="JSONEachRow")
    assert [json.loads(line) for line in out.splitlines()] == [
        {"id": 1, "s": "one"},
        {"id": 2, "s": "two"},
    ]


def test_raw_insert_json_each_row_and_native_insert(client):
    table = fresh_table(client, "ins")
    summary = client.raw_insert(
        table, insert_block=b'{"id": 1, "s": "a\\tb"}\n{"id": 2, "s": "c"}\n', fmt="JSONEachRow"
    )
    assert summary.query_id()
    client.insert(table, [[3, "\x00binary\xff".encode("latin-1").decode("latin-1")]], ["id", "s"])
    assert client.command(f"SELECT count() FROM {table}") == 3
    assert client.query(f"SELECT s FROM {table} WHERE id = 1").first_row == ("a\tb",)


def test_query_in_the_url_and_data_in_the_body(emu, client):
    table = fresh_table(client, "body")
    query = urlencode({"query": f"INSERT INTO {table} FORMAT JSONEachRow"})
    status, _h, body = raw(emu, "POST", f"/?{query}", body=b'{"id": 7, "s": "x"}\n')
    assert status == 200, body
    form = urlencode({"query": f"SELECT s FROM {table} WHERE id = {{id:UInt8}}", "param_id": 7})
    status, _h, body = raw(
        emu,
        "POST",
        "/",
        body=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (status, body) == (200, b"x\n")


def test_gzip_request_and_response(emu):
    status, headers, body = raw(
        emu,
        "POST",
        "/?enable_http_compression=1",
        body=gzip.compress(b"SELECT 42"),
        headers={"Content-Encoding": "gzip", "Accept-Encoding": "gzip"},
    )
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == b"42\n"
    status, headers, body = raw(
        emu, "POST", "/", body=b"SELECT 42", headers={"Accept-Encoding": "gzip"}
    )
    assert (status, headers["Content-Encoding"], body) == (200, None, b"42\n")


def test_database_and_format_from_headers(emu, client):
    client.command("CREATE DATABASE IF NOT EXISTS other")
    status, headers, body = raw(
        emu,
        "POST",
        "/",
        body=b"SELECT currentDatabase() AS db",
        headers={"X-ClickHouse-Database": "other", "X-ClickHouse-Format": "JSONEachRow"},
    )
    assert (status, body) == (200, b'{"db":"other"}\n')
    assert headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert json.loads(headers["X-ClickHouse-Summary"])["result_bytes"] == str(len(body))
    other = connect(emu, database="other")
    assert other.command("SELECT currentDatabase()") == "other"
    assert client.command("SELECT currentDatabase()") == "default"


def test_errors_carry_the_code_and_a_server_status(emu, client):
    with pytest.raises(DatabaseError) as info:
        client.query("SELECT * FROM no_such_table")
    assert info.value.code == 60
    assert "UNKNOWN_TABLE" in str(info.value)
    cases = [
        (b"SELECT * FROM no_such_table", 404, 60),
        (b"SELEC 1", 400, 62),
        (b"SELECT 1 FROM no_such_db.t", 404, 81),
        (b"SELECT throwIf(1)", 500, 395),
    ]
    for sql, status, code in cases:
        got, headers, body = raw(emu, "POST", "/", body=sql)
        assert (got, headers["X-ClickHouse-Exception-Code"]) == (status, str(code)), body
        assert body.startswith(f"Code: {code}. DB::Exception: ".encode())
        assert body.endswith(f"(version {emu.engine_version})\n".encode())
    got, headers, _body = raw(emu, "POST", "/?no_such_setting=1", body=b"SELECT 1")
    assert (got, headers["X-ClickHouse-Exception-Code"]) == (404, "115")


def test_settings_apply_to_one_request_only(emu, client):
    setting = "SELECT getSetting('max_execution_time')"
    assert client.query(setting, settings={"max_execution_time": 17}).first_row[0] == 17
    assert client.query(setting).first_row[0] == 0
    # A SET statement lasts for its session (clickhouse-connect sends a session_id), as on a
    # server, and is never seen by another session.
    client.command("SET max_threads = 3")
    assert client.command("SELECT getSetting('max_threads')") == 3
    other = connect(emu)
    assert other.command("SELECT getSetting('max_threads')") != 3
    status, _h, body = raw(emu, "POST", "/", body=b"SELECT toUInt8(getSetting('async_insert'))")
    assert (status, body) == (200, b"0\n")  # a server's default, not chdb's


def test_a_slow_query_times_out_with_159(client):
    started = time.monotonic()
    with pytest.raises(DatabaseError) as info:
        client.query(
            "SELECT sleepEachRow(0.25) FROM numbers(20) SETTINGS max_block_size = 1",
            settings={"max_execution_time": 1},
        )
    assert info.value.code == 159
    assert time.monotonic() - started < 4


def test_wrong_password_fails_authentication(emu):
    with pytest.raises(DatabaseError) as info:
        connect(emu, password="wrong")
    assert info.value.code == 516
    status, headers, _body = raw(
        emu, "POST", "/", body=b"SELECT 1", headers={"X-ClickHouse-Key": "no"}
    )
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (403, "516")


def test_unavailable_then_success(emu, client):
    emu.faults(fail_count=1, fail_status=503)
    assert client.query("SELECT 1").first_row == (1,)  # a read is retried on 503
    assert emu.stats()["faulted"] == 1
    emu.faults(fail_count=1, fail_status=503, fail_code=202)
    with pytest.raises(DatabaseError) as info:
        client.command("CREATE TABLE IF NOT EXISTS x (a UInt8) ENGINE = Memory")
    assert info.value.code == 202


def test_delay(emu, client):
    emu.faults(delay=0.6, delay_count=1)
    started = time.monotonic()
    client.command("SELECT 1")
    assert time.monotonic() - started >= 0.6
    started = time.monotonic()
    client.command("SELECT 1")
    assert time.monotonic() - started < 0.6


@pytest.mark.parametrize(("moment", "kept"), [("before", 1), ("after", 2)])
def test_dying_in_an_insert_keeps_what_was_written(emu, client, moment, kept):
    table = fresh_table(client, f"die_{moment}")
    client.insert(table, [[1, "a"]], ["id", "s"])
    emu.faults(die_on_insert=moment)
    with pytest.raises((OperationalError, DatabaseError)):
        client.insert(table, [[2, "b"]], ["id", "s"])
    assert emu.wait_exit() != 0
    emu.restart()
    assert connect(emu).command(f"SELECT count() FROM {table}") == kept


def test_kill_and_restart_keep_the_port_and_the_data(emu, client):
    table = fresh_table(client, "killed")
    client.insert(table, [[1, "a"]], ["id", "s"])
    port = emu.port
    emu.kill()
    assert not emu.alive
    emu.restart()
    assert emu.port == port
    assert connect(emu).command(f"SELECT count() FROM {table}") == 1


@pytest.mark.parametrize(
    ("code", "name"), [(252, "TOO_MANY_PARTS"), (241, "MEMORY_LIMIT_EXCEEDED")]
)
def test_insert_refused_with_an_exception_code(emu, client, code, name):
    table = fresh_table(client, f"refused_{code}")
    emu.faults(insert_error_code=code)
    with pytest.raises(DatabaseError) as info:
        client.insert(table, [[1, "a"]], ["id", "s"])
    assert (info.value.code, info.value.name) == (code, name)
    client.insert(table, [[1, "a"]], ["id", "s"])
    assert client.command(f"SELECT count() FROM {table}") == 1


def test_big_parameters_go_in_the_body_within_the_limits(emulator, tmp_path):
    limits = {"max_uri_size": 4096, "max_field_value_size": 16 * 1024}
    with ClickHouseEmulator(tmp_path, python=emulator.python, password=PASSWORD, **limits) as small:
        client = connect(small)
        values = {f"p{i}": chr(ord("a") + i) * 12_000 for i in range(5)}  # 60 KB in all
        sql = "SELECT " + ", ".join(f"length({{{name}:String}})" for name in values)
        assert client.query(sql, parameters=values).first_row == (12_000,) * 5
        with pytest.raises(DatabaseError) as info:
            client.query("SELECT length({p:String})", parameters={"p": "x" * 20_000})
        assert "400" in str(info.value)
        status, _h, _body = raw(small, "GET", "/?query=" + "1" * 5000)
        assert status == 400
