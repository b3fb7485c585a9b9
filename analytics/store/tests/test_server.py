"""The ClickHouse server store: its URL forms, and parity with the embedded store (the same SQL
gives the same rows and Python types, parameters mean the same, errors are classified alike).

The server is the loopback emulator of ClickHouse's HTTP interface (testing/): clickhouse-connect
really speaks HTTP to it, and every statement runs in the real engine in the emulator's own
process. What the emulator cannot show (replication, real concurrency, lz4) is not tested here.
"""

import datetime as dt
import os
import shutil
import threading

import pytest
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from analytics.store.base import QueryTimeout, StoreError, StoreUnavailable, bind_params
from analytics.store.embedded import EmbeddedStore
from analytics.store.server import ServerAddress, ServerStore
from testing.clickhouse_server import ClickHouseEmulator

TABLE = """
CREATE TABLE IF NOT EXISTS parity (
    id UInt32, name String, at DateTime64(3, 'UTC'), day Date, price Float64,
    tags Array(String), note Nullable(String), big UInt64, flag Bool, ratio Float64
) ENGINE = MergeTree ORDER BY id
"""
ROWS = [
    {
        "id": 1,
        "name": "a\\tb 'quoted' é",
        "at": "2026-03-01 10:11:12.345",
        "day": "2026-03-01",
        "price": 9.5,
        "tags": ["x", "y\\z"],
        "note": None,
        "big": 18446744073709551615,
        "flag": True,
        "ratio": 0.1,
    },
    {
        "id": 2,
        "name": "line\nbreak",
        "at": "2026-03-02 00:00:00",
        "day": "2026-03-02",
        "price": -1.25,
        "tags": [],
        "note": "n",
        "big": 0,
        "flag": False,
        "ratio": float("nan"),
    },
]
QUERIES = [
    ("SELECT * FROM parity ORDER BY id", {}),
    ("SELECT id FROM parity WHERE name = {name:String}", {"name": "a\\tb 'quoted' é"}),
    ("SELECT id FROM parity WHERE at >= {at:DateTime64(3)}", {"at": dt.datetime(2026, 3, 1, 10, 11, 12, 345000, tzinfo=dt.UTC)}),
    ("SELECT id FROM parity WHERE day IN {days:Array(Date)}", {"days": [dt.date(2026, 3, 2)]}),
    ("SELECT id FROM parity WHERE hasAny(tags, {tags:Array(String)})", {"tags": ["y\\z"]}),
    ("SELECT toStartOfMonth(at) AS m, sum(price) AS s, avg(ratio) AS r FROM parity GROUP BY m", {}),
    ("SELECT {n:Nullable(String)} AS n, {u:UInt64} AS u, {f:Float64} AS f", {"n": None, "u": 7, "f": 0.5}),
    ("SELECT now64(3) > {t:DateTime64(3)} AS later", {"t": dt.datetime(2020, 1, 1)}),
]  # fmt: skip


@pytest.fixture(scope="module")
def stores():
    """The same table on an emulated server and on an embedded store of its own."""
    server_path = settings.VAR_DIR / "parity-server"
    embedded_path = settings.VAR_DIR / "parity-embedded"
    for path in (server_path, embedded_path):
        shutil.rmtree(path, ignore_errors=True)
    with ClickHouseEmulator(server_path) as emulator:
        server, embedded = ServerStore(emulator.url), EmbeddedStore(str(embedded_path))
        for db in (server, embedded):
            db.command(TABLE)
            db.insert("parity", ROWS)
        yield server, embedded, emulator
        embedded.release()
    for path in (server_path, embedded_path):
        shutil.rmtree(path, ignore_errors=True)


def _same(a, b) -> bool:
    return a == b or (a != a and b != b)  # NaN decodes to the same nothing on both


@pytest.mark.parametrize(("sql", "params"), QUERIES, ids=range(len(QUERIES)))
def test_the_same_sql_gives_the_same_rows_and_types(stores, sql, params):
    server, embedded, _ = stores
    got, expected = server.query(sql, params), embedded.query(sql, params)
    assert len(got) == len(expected) > 0
    for row_server, row_embedded in zip(got, expected, strict=True):
        assert row_server.keys() == row_embedded.keys()
        for key in row_server:
            assert type(row_server[key]) is type(row_embedded[key]), key
            assert _same(row_server[key], row_embedded[key]), key


def test_dataframes_are_the_same(stores):
    server, embedded, _ = stores
    import pandas as pd

    sql = (
        "SELECT id, name, at, day, price, big, toDateTime(at) AS second, toUInt16(id) AS small "
        "FROM parity ORDER BY id"
    )
    got, expected = server.query_df(sql), embedded.query_df(sql)
    pd.testing.assert_frame_equal(got, expected)
    assert str(got["at"].dtype) == "datetime64[ns]" and str(got["day"].dtype) == "datetime64[s]"
    assert str(got["second"].dtype) == "datetime64[ns]" and str(got["small"].dtype) == "uint16"
    assert got["day"].tolist() == [pd.Timestamp("2026-03-01"), pd.Timestamp("2026-03-02")]


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(st.characters(exclude_categories=["Cs"]), max_size=40))
def test_a_string_parameter_means_the_same_on_both(stores, text):
    """Backslashes, tabs, quotes and NULs reach the engine as they were: a filter gives one
    answer (the embedded store used to read `a\\tb` as a tab where a server did not)."""
    server, embedded, _ = stores
    sql = "SELECT {s:String} AS s, length({s:String}) AS n"
    assert (
        server.query(sql, {"s": text})
        == embedded.query(sql, {"s": text})
        == [{"s": text, "n": len(text.encode())}]
    )


def test_time_parameters_keep_milliseconds_and_mean_utc(stores):
    server, _, _ = stores
    at = dt.datetime(2026, 3, 1, 11, 11, 12, 345000, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert bind_params({"at": at}) == {"at": "2026-03-01 10:11:12.345"}
    rows = server.query("SELECT id FROM parity WHERE at = {at:DateTime64(3)}", {"at": at})
    assert rows == [{"id": 1}]


def test_errors_are_classified_alike(stores):
    server, embedded, emulator = stores
    for db in (server, embedded):
        with pytest.raises(StoreError) as refused:
            db.query("SELECT * FROM no_such_table")
        assert refused.value.code == 60 and not isinstance(refused.value, StoreUnavailable)
        with pytest.raises(StoreError) as bad_row:
            db.insert_json_each_row("parity", b'{"id": 3}\n{"id": "not a number"}')
        assert bad_row.value.row == 2 and "not a number" in bad_row.value.line
    with pytest.raises(QueryTimeout):
        server.query("SELECT sleepEachRow(0.5) FROM numbers(6)", timeout=1)
    emulator.faults(fail_count=1, fail_status=500, fail_code=252)
    with pytest.raises(StoreUnavailable) as overloaded:
        server.command("SELECT 1")
    assert overloaded.value.code == 252
    emulator.faults()


def test_an_unreachable_server_is_unavailable():
    with pytest.raises(StoreUnavailable):
        ServerStore("http://default:@127.0.0.1:9/default?connect_timeout=1").query("SELECT 1")


def test_threads_share_one_pool_and_a_fork_gets_its_own(stores):
    server, _, _ = stores
    results, errors = [], []

    def work():
        try:
            results.append(server.query("SELECT count() AS n FROM parity")[0]["n"])
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and results == [2] * 8
    parent_client = server._client()
    pid = os.fork()
    if pid == 0:  # the child must not reuse the parent's connections
        code = 0 if server._client() is not parent_client and server.query("SELECT 1 AS x") else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert server._client() is parent_client


def test_read_after_write_settings_on_a_replicated_server(stores, settings):
    server, _, _ = stores
    settings.CLICKHOUSE_REPLICATED = True
    assert server._settings(None, consistent=True)["select_sequential_consistency"] == 1
    assert server._insert_settings()["insert_quorum"] == "auto"
    assert server.query("SELECT count() AS n FROM parity", consistent=True) == [{"n": 2}]
    settings.CLICKHOUSE_REPLICATED = False
    assert "select_sequential_consistency" not in server._settings(None, consistent=True)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://u:p%40ss@ch:8123/analytics", ("ch", 8123, "u", "p@ss", "analytics", False)),
        ("https://u:p@abc.clickhouse.cloud/db", ("abc.clickhouse.cloud", 8443, "u", "p", "db", True)),
        ("clickhouse://u:p@ch/db", ("ch", 8123, "u", "p", "db", False)),
        ("clickhouse+https://ch/db", ("ch", 8443, "default", "", "db", True)),
        ("clickhouse://ch:9440/db?secure=1", ("ch", 9440, "default", "", "db", True)),
        ("http://ch", ("ch", 8123, "default", "", "default", False)),
    ],
)  # fmt: skip
def test_url_forms(url, expected):
    address = ServerAddress.parse(url)
    got = (address.host, address.port, address.username, address.password, address.database)
    assert (*got, address.secure) == expected


def test_url_options_become_client_options_or_settings():
    address = ServerAddress.parse(
        "http://ch/db?compress=gzip&connect_timeout=2&verify=0&max_threads=2"
    )
    assert (address.compress, address.connect_timeout, address.verify) == ("gzip", 2.0, False)
    assert address.settings == {"max_threads": "2"}
    with pytest.raises(ValueError, match="scheme"):
        ServerAddress.parse("mysql://ch/db")
    assert "secret" not in repr(ServerStore("http://u:secret@ch/db"))
