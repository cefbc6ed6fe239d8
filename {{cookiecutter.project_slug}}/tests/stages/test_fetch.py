"""fetch: remote files over a loopback HTTP server and fsspec's memory://, SQLite through
SQLAlchemy, stable snapshots, secrets kept out of params, and one-line errors."""

from __future__ import annotations

import datetime
import http.server
import sqlite3
import threading
from functools import partial

import fsspec
import fsspec.config
import pandas as pd
import pyarrow.parquet as pq
import pytest

from {{ cookiecutter.package_name }}.core.errors import ConfigError, DataError
from {{ cookiecutter.package_name }}.core.params import FetchParams
from {{ cookiecutter.package_name }}.stages import fetch

ROWS = pd.DataFrame(
    {
        "key": [3, 1, 2],
        "size": [1.5, None, 2.25],
        "kind": ["a", "b", None],
        "year": [2007, 2008, 2009],
    }
)


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server of tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *args: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def shop(tmp_path):
    """A SQLite database with an `orders` table; yields its sqlite:/// URL."""
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as connection:
        ROWS.to_sql("orders", connection, index=False)
    return f"sqlite:///{path}"


def test_http_csv_is_read_through_a_loopback_server(server):
    root, base = server
    ROWS.to_csv(root / "rows.csv", index=False)
    got = fetch.fetch("orders", source=FetchParams(url=f"{base}/rows.csv"), missing_values=[])
    pd.testing.assert_frame_equal(got, ROWS)


def test_http_parquet_and_a_missing_file(server):
    root, base = server
    ROWS.to_parquet(root / "rows.parquet", index=False)
    assert fetch.fetch("orders", source=FetchParams(url=f"{base}/rows.parquet"), missing_values=[])[
        "key"
    ].tolist() == [3, 1, 2]
    with pytest.raises(DataError, match=r"cannot fetch http://127\.0\.0\.1:\d+/gone\.csv: .*404"):
        fetch.fetch("orders", source=FetchParams(url=f"{base}/gone.csv"), missing_values=[])


def test_an_unreachable_host_is_one_line_naming_the_fix():
    with pytest.raises(DataError, match="Cannot connect to host.*check the URL, the net") as err:
        fetch.fetch(
            "orders", source=FetchParams(url="http://127.0.0.1:1/rows.csv"), missing_values=[]
        )
    assert "\n" not in str(err.value)


def test_object_store_stand_in_memory_url():
    """memory:// takes the same fsspec path as s3://, gs:// and azure://."""
    with fsspec.open("memory://bucket/rows.csv", "w") as handle:
        ROWS.to_csv(handle, index=False)
    pd.testing.assert_frame_equal(
        fetch.fetch(
            "orders", source=FetchParams(url="memory://bucket/rows.csv"), missing_values=[]
        ),
        ROWS,
    )


def test_a_cloud_url_without_its_package_names_the_install():
    pytest.importorskip("fsspec")
    try:
        import s3fs  # noqa: F401

        pytest.skip("s3fs is installed here")
    except ImportError:
        pass
    with pytest.raises(DataError, match="pip install s3fs"):
        fetch.fetch("orders", source=FetchParams(url="s3://bucket/rows.csv"), missing_values=[])


def test_an_ssh_source_checks_the_server_against_known_hosts(tmp_path, monkeypatch):
    """sshfs would trust any server key: without ~/.ssh/known_hosts nothing is read."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(fsspec.config, "conf", {})
    with pytest.raises(ConfigError, match=r"known_hosts does not exist: .*`ssh -p 2222 files`"):
        fetch.fetch(
            "orders",
            source=FetchParams(url="ssh://me@files:2222/exports/rows.csv"),
            missing_values=[],
        )
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh/known_hosts").write_text("")
    assert fetch.storage_options("sftp://files/rows.csv") == {
        "known_hosts": str(tmp_path / ".ssh/known_hosts")
    }
    # A known_hosts file named in fsspec's configuration (FSSPEC_SSH) is left to it.
    monkeypatch.setattr(fsspec.config, "conf", {"ssh": {"known_hosts": "/etc/ssh/known"}})
    assert fetch.storage_options("ssh://files/rows.csv") == {}
    assert fetch.storage_options("sftp://files/rows.csv") == {}


def test_file_url_needs_a_known_format():
    with pytest.raises(ConfigError, match=r"must end in \.csv or \.parquet"):
        fetch.fetch(
            "orders", source=FetchParams(url="memory://bucket/rows.json"), missing_values=[]
        )


def test_sqlite_table_and_query(shop):
    table = fetch.fetch("orders", source=FetchParams(url=shop, table="orders"), missing_values=[])
    assert sorted(table["key"]) == [1, 2, 3]
    query = fetch.fetch(
        "orders",
        source=FetchParams(url=shop, query="SELECT key, kind FROM orders WHERE key > 1"),
        missing_values=[],
    )
    assert list(query.columns) == ["key", "kind"]
    assert sorted(query["key"]) == [2, 3]


def test_database_rows_come_in_the_same_order_whatever_order_the_database_uses(shop):
    forward = fetch.fetch(
        "orders",
        source=FetchParams(url=shop, query="SELECT * FROM orders ORDER BY key"),
        missing_values=[],
    )
    backward = fetch.fetch(
        "orders",
        source=FetchParams(url=shop, query="SELECT * FROM orders ORDER BY key DESC"),
        missing_values=[],
    )
    pd.testing.assert_frame_equal(forward, backward)
    assert fetch.content_sha256(forward) == fetch.content_sha256(backward)


def test_a_query_gives_dates_as_a_table_does():
    # read_sql_query leaves a DATE column as Python dates; read_sql_table as datetime64.
    frame = pd.DataFrame(
        {"on": [datetime.date(2024, 1, 2), None], "kind": ["a", None], "n": [1.0, None]}
    )
    got = fetch.dates_as_datetimes(frame)
    assert str(got["on"].dtype) == "datetime64[s]"
    assert got["on"].iloc[0] == pd.Timestamp("2024-01-02") and pd.isna(got["on"].iloc[1])
    assert got["kind"].tolist()[0] == "a" and got["n"].dtype == "float64"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"table": "customers"}, r"table 'customers' is not in .* \(tables: orders\): set"),
        ({"query": "SELECT nope FROM orders"}, "query on .* failed: no such column: nope: fix"),
        ({"query": "SELEC 1"}, "query on .* failed: .*syntax error.*: fix the data.fetch query"),
    ],
)
def test_bad_tables_and_queries_are_one_line(shop, source, message):
    with pytest.raises(DataError, match=message) as err:
        fetch.fetch("orders", source=FetchParams(url=shop, **source), missing_values=[])
    assert "\n" not in str(err.value)


def test_a_missing_sqlite_file_is_not_silently_created(tmp_path):
    url = f"sqlite:///{tmp_path / 'nope.db'}"
    with pytest.raises(DataError, match="database file .*nope.db does not exist"):
        fetch.fetch("orders", source=FetchParams(url=url, table="orders"), missing_values=[])
    assert not (tmp_path / "nope.db").exists()


def test_a_missing_driver_names_the_package():
    try:
        import psycopg  # noqa: F401

        pytest.skip("psycopg is installed here")
    except ImportError:
        pass
    with pytest.raises(DataError, match="needs a database driver.*psycopg"):
        fetch.fetch(
            "orders",
            source=FetchParams(url="postgresql+psycopg://me@127.0.0.1:1/shop", table="t"),
            missing_values=[],
        )


def test_secrets_come_from_the_environment_and_never_show(monkeypatch):
    monkeypatch.setenv("SHOP_PASSWORD", "s3cret")
    url = "postgresql+psycopg://me:$SHOP_PASSWORD@db.example.com/shop"
    # pragma: allowlist nextline secret (the made-up password, once expanded)
    assert fetch.expand_secrets(url) == "postgresql+psycopg://me:s3cret@db.example.com/shop"
    assert (
        fetch.shown(fetch.expand_secrets(url)) == "postgresql+psycopg://me:***@db.example.com/shop"
    )
    monkeypatch.delenv("SHOP_PASSWORD")
    with pytest.raises(ConfigError, match="SHOP_PASSWORD .* is not set: export SHOP_PASSWORD"):
        fetch.expand_secrets(url)


def test_a_password_from_the_environment_may_hold_any_character(monkeypatch):
    # pragma: allowlist nextline secret (a made-up password that a raw URL would break on)
    monkeypatch.setenv("SHOP_PASSWORD", "p@ss/w%rd:#?")
    monkeypatch.setenv("SHOP_HOST", "db.example.com")
    url = fetch.database_url("shop", "postgresql+psycopg://me:$SHOP_PASSWORD@$SHOP_HOST/shop")
    assert (url.username, url.password, url.host) == ("me", "p@ss/w%rd:#?", "db.example.com")
    assert (
        url.render_as_string(hide_password=True)
        == "postgresql+psycopg://me:***@db.example.com/shop"
    )


def dvc_config(folder, local: str = "", committed: str = "") -> None:
    (folder / ".dvc").mkdir()
    (folder / ".dvc/config.local").write_text(local)
    (folder / ".dvc/config").write_text(committed)


def test_credentials_come_from_dvc_config_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # pragma: allowlist nextline secret (made up)
    dvc_config(tmp_path, local="['db \"shop\"']\n    username = analyst\n    password = a@b/c%d\n")
    url = fetch.database_url("shop", "postgresql+psycopg://db.example.com/shop")
    assert (url.username, url.password) == ("analyst", "a@b/c%d")
    # Another source's entry is not this one's.
    assert fetch.database_url("other", "postgresql+psycopg://db.example.com/x").password is None
    # A password in the url too: which one is meant? Refused rather than guessed.
    monkeypatch.setenv("SHOP_PASSWORD", "x")
    with pytest.raises(ConfigError, match="password in its url and in DVC's db.shop: keep one"):
        fetch.database_url("shop", "postgresql+psycopg://me:$SHOP_PASSWORD@db.example.com/shop")


def test_a_password_in_the_committed_dvc_config_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # pragma: allowlist nextline secret (made up)
    dvc_config(tmp_path, committed="['db \"shop\"']\n    password = oops\n")
    with pytest.raises(ConfigError, match=r"committed .dvc/config holds db.shop.password: remove"):
        fetch.database_url("shop", "postgresql+psycopg://db.example.com/shop")


def test_main_writes_a_byte_stable_snapshot_with_its_content_hash(
    shop, tmp_path, monkeypatch, params_raw
):
    import yaml

    orders = {"orders": {"url": shop, "table": "orders"}}
    raw = {**params_raw, "data": {**params_raw["data"], "source": "data/fetched", "fetch": orders}}
    work = tmp_path / "project"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.chdir(work)
    fetch.main()
    snapshot = work / "data" / "fetched" / "orders.parquet"
    first = snapshot.read_bytes()
    fetch.main(["orders"])
    assert snapshot.read_bytes() == first, "an unchanged source must give identical bytes"
    stored = pq.read_schema(snapshot).metadata
    assert fetch.content_sha256(pd.read_parquet(snapshot)).encode() in stored[b"PANDAS_ATTRS"]

    with sqlite3.connect(shop.removeprefix("sqlite:///")) as connection:
        connection.execute("UPDATE orders SET size = 9.0 WHERE key = 1")
    fetch.main()
    assert snapshot.read_bytes() != first
    with pytest.raises(ConfigError, match="no data.fetch entry named 'other' .*entries: orders"):
        fetch.main(["other"])
