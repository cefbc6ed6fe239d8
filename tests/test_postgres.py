"""A baked project against a real PostgreSQL (Debian's, on a loopback port; tests/postgres.py):
the `fetch` stage snapshots a table of a few thousand penguins with ints, floats, text, a
date, a timestamp and NULLs, through `table:` and through `query:`. The snapshot equals the
table; an unchanged table leaves ingest and what follows cached; a changed row reruns ingest.
The password, one a URL must escape, comes from libpq's PGPASSWORD, from .dvc/config.local
and from a `$VAR` in the url, as docs/data-sources.md writes them (its config and commands
run here), and never reaches a tracked file or git's history; a wrong one stops fetch in
one line that names the fixes, with nothing written."""

from __future__ import annotations

import datetime
import os
import re
import shlex
import time
from contextlib import ExitStack
from urllib.parse import quote

import pandas as pd
import pytest
import yaml
from conftest import STAGES, bake, git, md5, package_of, ran, run
from postgres import Unavailable, serve

pytestmark = pytest.mark.slow

# The role fetch logs in as: read-only, with a password that breaks a URL written raw.
USER = "analyst"
# pragma: allowlist nextline secret (a throwaway password for a throwaway server)
PASSWORD = "an@lyst/p%ss:w#rd"
COPIES = 10  # of the 344 penguins: 3,440 rows
# The table, and the dtypes the snapshot promises: SQL NULLs make an INTEGER column float64
# (as empty cells do in a CSV); DATE is datetime64[ms] (Parquet has no unit of seconds) and
# TIMESTAMP datetime64[us], whether read as a table or through a query.
COLUMNS = {
    "row_id": ("INTEGER PRIMARY KEY", "int64"),
    "species": ("TEXT NOT NULL", "str"),
    "island": ("TEXT NOT NULL", "str"),
    "bill_length_mm": ("DOUBLE PRECISION", "float64"),
    "bill_depth_mm": ("DOUBLE PRECISION", "float64"),
    "flipper_length_mm": ("INTEGER", "float64"),
    "body_mass_g": ("INTEGER", "float64"),
    "sex": ("TEXT", "str"),
    "year": ("INTEGER NOT NULL", "int64"),
    "observed_on": ("DATE NOT NULL", "datetime64[ms]"),
    "logged_at": ("TIMESTAMP NOT NULL", "datetime64[us]"),
}
SOURCE = "orders"  # the data.fetch entry's name, as in docs/data-sources.md
STAGE = f"fetch@{SOURCE}"
SNAPSHOT = f"data/fetched/{SOURCE}.parquet"


def unavailable(reason: str) -> None:
    """Skip where PostgreSQL cannot run here; under CI (which installs it) that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs postgresql: see .ci/run)")
    pytest.skip(reason)


@pytest.fixture
def server():
    with ExitStack() as stack:
        started = time.monotonic()
        try:
            server = stack.enter_context(serve())
        except Unavailable as exc:
            unavailable(str(exc))
        print(f"PostgreSQL up in {time.monotonic() - started:.2f} s")
        yield server


def whole(value: float) -> int | None:
    return None if pd.isna(value) else int(value)


def penguin_rows(root) -> list[tuple]:
    """The shipped penguins COPIES times over, each copy's lengths nudged so rows differ."""
    files = [*sorted((root / "data/raw").glob("*.csv")), root / "data/extra/penguins_2009.csv"]
    base = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    rows = []
    for copy in range(COPIES):
        for n, p in enumerate(base.itertuples(index=False)):
            row_id = copy * len(base) + n + 1
            start = datetime.datetime(p.year, 1, 1)
            rows.append((
                row_id, p.species, p.island,
                None if pd.isna(p.bill_length_mm) else p.bill_length_mm + copy / 100,
                None if pd.isna(p.bill_depth_mm) else p.bill_depth_mm,
                whole(p.flipper_length_mm), whole(p.body_mass_g),
                None if pd.isna(p.sex) else p.sex, p.year,
                (start + datetime.timedelta(days=row_id * 7 % 365)).date(),
                start + datetime.timedelta(minutes=row_id * 97, microseconds=row_id),
            ))  # fmt: skip
    return rows


def expected(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    return frame.astype({name: dtype for name, (_, dtype) in COLUMNS.items()})


def load(server, rows: list[tuple]) -> None:
    """Database `shop` with table `penguins`, which USER may read and nothing else."""
    with server.connect() as connection:
        connection.autocommit = True
        connection.execute("CREATE DATABASE shop")
        connection.execute(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
    with server.connect(database="shop") as connection:
        spec = ", ".join(f"{name} {sql}" for name, (sql, _) in COLUMNS.items())
        connection.execute(f"CREATE TABLE penguins ({spec})")
        with connection.cursor().copy(f"COPY penguins ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        connection.execute(f"GRANT SELECT ON penguins TO {USER}")


def documented(root) -> tuple[dict, str, str]:
    """docs/data-sources.md's PostgreSQL section: its data.fetch entry, its `dvc config
    --local` commands and its URL with a password from the environment."""
    page = (root / "docs/data-sources.md").read_text()
    section = page.split("### PostgreSQL\n", 1)[1].split("\n## ", 1)[0]
    (config,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    (login,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    (from_env,) = re.findall(r"url: (postgresql\+psycopg://\w+:\$\w+@[^`]+)`", section)
    return yaml.safe_load(config)["fetch"][SOURCE], login, from_env


def here(text: str, port: int) -> str:
    """The docs' server and table, as this test's."""
    return text.replace("db.example.com:5432", f"127.0.0.1:{port}")


def use_source(root, package: str, entry: dict) -> None:
    """conf/data/shop.yaml with the data.fetch entry, made the default, then params.yaml
    composed and both committed, as the docs say."""
    data = {
        "source": "data/fetched", "target": "species", "id_column": "row_id",
        "time": "observed_on", "groups": ["sex", "island"], "numeric": None,
        "categorical": None, "drop": ["logged_at"], "missing_values": [],
        "fetch": {SOURCE: entry},
    }  # fmt: skip
    (root / "conf/data/shop.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    config = root / "conf/config.yaml"
    config.write_text(config.read_text().replace("  - data: penguins\n", "  - data: shop\n"))
    run(root, "python", "-m", package, "params")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "Data from the shop database")


def snapshot(root) -> pd.DataFrame:
    frame = pd.read_parquet(root / SNAPSHOT)
    return frame.sort_values("row_id", ignore_index=True)


def timed_repro(root, *args: str, **env: str) -> tuple[str, float]:
    started = time.monotonic()
    log = run(root, "dvc", "repro", *args, **env).stdout
    return log, time.monotonic() - started


def test_fetch_from_postgresql(tmp_path, server):
    root = bake(tmp_path / "bake", project_name="Pg Loop")
    package = package_of(root)
    rows = penguin_rows(root)
    load(server, rows)
    table = expected(rows)
    figures = {}

    # `table:`, the login in .dvc/config.local (git-ignored), as the docs write them.
    entry, login, from_env = documented(root)
    assert entry == {"url": "postgresql+psycopg://db.example.com:5432/shop", "table": "orders"}
    use_source(root, package, {"url": here(entry["url"], server.port), "table": "penguins"})
    # The URL names no login: libpq's PGUSER and PGPASSWORD do, for a fetch by hand.
    started = time.monotonic()
    run(root, "python", "-m", package, "fetch", SOURCE, PGUSER=USER, PGPASSWORD=PASSWORD)
    figures[f"fetch of {len(rows):,} rows (table)"] = time.monotonic() - started
    pd.testing.assert_frame_equal(snapshot(root), table)
    logins = login.replace("'the password'", shlex.quote(PASSWORD))
    run(root, "bash", "-euo", "pipefail", "-c", logins)
    assert PASSWORD in (root / ".dvc/config.local").read_text()
    assert run(root, "git", "check-ignore", ".dvc/config.local").returncode == 0
    log, figures["first dvc repro (fetch + whole pipeline)"] = timed_repro(root)
    assert ran(log, [STAGE, *STAGES]) == [STAGE, *STAGES], log
    pd.testing.assert_frame_equal(snapshot(root), table)
    ingested = pd.read_parquet(root / "data/interim/ingested.parquet")
    assert len(ingested) == len(rows) and set(ingested["batch"]) == {SOURCE}

    # Nothing changed: fetch runs (DVC cannot hash a database) and writes the same bytes.
    log, figures["dvc repro, table unchanged"] = timed_repro(root)
    assert ran(log, [STAGE, *STAGES]) == [STAGE], log
    assert "Stage 'ingest' didn't change, skipping" in log

    # One changed row: a new snapshot, and ingest reruns.
    with server.connect(database="shop") as connection:
        connection.execute("UPDATE penguins SET body_mass_g = 5000 WHERE row_id = 1")
    table.loc[0, "body_mass_g"] = 5000.0
    before = md5(root / SNAPSHOT)
    log, figures["dvc repro ingest, one row changed"] = timed_repro(root, "ingest")
    assert ran(log, [STAGE, *STAGES]) == [STAGE, "ingest"], log
    pd.testing.assert_frame_equal(snapshot(root), table)
    assert md5(root / SNAPSHOT) != before

    # `query:`, the password from the environment: the same rows in another order give the
    # table's snapshot byte for byte, so ingest stays cached.
    for key in ("username", "password"):
        run(root, "dvc", "config", "--local", "--unset", f"db.{SOURCE}.{key}")
    variable = re.search(r"\$(\w+)", from_env)[1]
    query = "SELECT * FROM penguins ORDER BY row_id DESC"
    use_source(root, package, {"url": here(from_env, server.port), "query": query})
    before = md5(root / SNAPSHOT)
    started = time.monotonic()
    run(root, "python", "-m", package, "fetch", SOURCE, **{variable: PASSWORD})
    figures[f"fetch of {len(rows):,} rows (query)"] = time.monotonic() - started
    log = run(root, "dvc", "repro", "ingest", **{variable: PASSWORD}).stdout
    assert ran(log, [STAGE, *STAGES]) == [STAGE], log
    assert md5(root / SNAPSHOT) == before

    # A wrong password: one line naming the fixes, no traceback, nothing written.
    lock = (root / "dvc.lock").read_bytes()
    fetched = sorted((root / "data/fetched").iterdir())
    done = run(root, "dvc", "repro", "ingest", check=False, **{variable: "wrong"})
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert f'password authentication failed for user "{USER}"' in errors[0], errors[0]
    assert f"db.{SOURCE}.password" in errors[0] and "$ENV_VAR" in errors[0], errors[0]
    assert "Traceback" not in done.stdout + done.stderr
    print(errors[0])
    assert md5(root / SNAPSHOT) == before
    assert sorted((root / "data/fetched").iterdir()) == fetched
    assert (root / "dvc.lock").read_bytes() == lock

    # The password is in no file git would take (params.yaml, dvc.lock, ...), nor in its
    # history (both data configs and their runs' dvc.lock were committed).
    git(root, "add", "-A")
    secrets = (PASSWORD, quote(PASSWORD, safe=""))
    for path in git(root, "ls-files", "-z").split("\0"):
        text = (
            (root / path).read_bytes().decode(errors="replace") if (root / path).is_file() else ""
        )
        assert not any(secret in text for secret in secrets), path
    history = git(root, "log", "-p", "--all", "--binary")
    assert not any(secret in history for secret in secrets)
    assert f"${variable}" in (root / "params.yaml").read_text()

    print("; ".join(f"{what}: {seconds:.2f} s" for what, seconds in figures.items()))
