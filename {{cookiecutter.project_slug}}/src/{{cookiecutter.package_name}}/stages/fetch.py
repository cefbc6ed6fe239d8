"""Fetch: snapshot each remote source of data.fetch to data/fetched/<name>.parquet.

A source is a file URL read through fsspec (https://, s3://, gs://, azure://,
ssh:// or sftp:// on a server, file://, memory://) or a database URL read through
SQLAlchemy (sqlite:///..., postgresql+psycopg://...) with a table or a query. DVC
runs this stage on every `dvc repro` (`always_changed`), and the snapshot's bytes
depend only on the data: an unchanged source gives an unchanged file, so ingest and
what follows are skipped.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import re
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

import pandas as pd

from ..core import io, paths
from ..core.errors import ConfigError, DataError
from ..core.params import FetchParams, is_database_url, load
from ..tables import batches

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger(__name__)

# Where each fsspec protocol's package comes from, for the "install it" hint.
FILESYSTEM_PACKAGES = {
    "s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "azure": "adlfs",
    "ssh": "sshfs", "sftp": "sshfs",
}  # fmt: skip
SSH_PROTOCOLS = ("ssh", "sftp")
_ENV_VARIABLE = re.compile(r"\$(\w+)")
# DVC's folder, whose config may hold a database's credentials (local_credentials).
DVC_DIR = ".dvc"


def expand_secrets(url: str) -> str:
    """Put the values of `$ENV_VAR`s into the URL; params.yaml keeps only their names. A value
    in the user or password part is percent-encoded (URLs and SQLAlchemy decode it there), so
    a password holding `@`, `/`, `:` or `%` stays the password."""
    unset = [name for name in _ENV_VARIABLE.findall(url) if name not in os.environ]
    if unset:
        raise ConfigError(
            f"environment variable {unset[0]} (named in a data.fetch url) is not set: "
            f"export {unset[0]}=... before running"
        )

    def value(match: re.Match) -> str:
        return os.environ[match.group(1)]

    scheme, separator, rest = url.partition("://")
    end = re.search(r"[/?#]|$", rest).start()  # the authority: [user[:password]@]host[:port]
    userinfo, at, host = rest[:end].rpartition("@")
    userinfo = _ENV_VARIABLE.sub(lambda match: quote(value(match), safe=""), userinfo)
    return scheme + separator + userinfo + at + _ENV_VARIABLE.sub(value, host + rest[end:])


def shown(url: str) -> str:
    """The URL for messages: a password replaced by ***."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def content_sha256(df: pd.DataFrame) -> str:
    """A hash of the columns, their dtypes and every value, in row order."""
    digest = hashlib.sha256()
    for name, dtype in df.dtypes.items():
        digest.update(f"{name}\x1f{dtype}\x1e".encode())
    digest.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def in_content_order(df: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by a hash of their values: a database returns rows in any order it likes."""
    keys = pd.util.hash_pandas_object(df, index=False).to_numpy()
    return df.iloc[keys.argsort(kind="stable")].reset_index(drop=True)


def failure(exc: BaseException, url: str) -> str:
    """What went wrong, in one line: fsspec often raises FileNotFoundError(url) from the cause."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, FileNotFoundError) and str(exc).strip() in ("", url, repr(url)):
        if cause is None or isinstance(cause, FileNotFoundError):
            return "not found"
        exc = cause
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def storage_options(url: str) -> dict:
    """Options fsspec's configuration (FSSPEC_<PROTOCOL> variables, ~/.config/fsspec) does
    not set. sshfs accepts any server key unless given known hosts: check the server
    against ~/.ssh/known_hosts, as `ssh` does, so a spoofed server is refused."""
    import fsspec.config

    if url.split("://", 1)[0] not in SSH_PROTOCOLS:
        return {}
    # sshfs serves both protocols and takes the configuration of either.
    if any("known_hosts" in fsspec.config.conf.get(name, {}) for name in SSH_PROTOCOLS):
        return {}
    known_hosts = Path("~/.ssh/known_hosts").expanduser()
    if not known_hosts.is_file():
        parts = urlsplit(url)
        port = f"-p {parts.port} " if parts.port else ""
        raise ConfigError(
            f"cannot check the server of {shown(url)}: {known_hosts} does not exist: "
            f"record the server's key by connecting once (`ssh {port}{parts.hostname}`), or "
            "name a known_hosts file in FSSPEC_SSH (docs/data-sources.md: Remote sources)"
        )
    return {"known_hosts": str(known_hosts)}


def read_file_url(url: str, missing_values: list[str]) -> pd.DataFrame:
    """A CSV or Parquet file at a URL that fsspec understands, read as ingest reads a batch
    (batches.READERS: empty cells, nulls and `missing_values` are missing)."""
    import fsspec

    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    if suffix not in batches.READERS:
        raise ConfigError(
            f"cannot tell the format of {shown(url)}: the path must end in .csv or .parquet"
        )
    protocol = url.split("://", 1)[0]
    options = storage_options(url)
    try:
        with fsspec.open(url, "rb", **options) as handle:
            raw = handle.read()
    except ImportError as exc:
        package = FILESYSTEM_PACKAGES.get(protocol, f"the fsspec package for {protocol}://")
        raise DataError(
            f"cannot read {shown(url)}: {exc}: `pip install {package}` "
            f"(or the matching dvc extra, e.g. dvc[s3])"
        ) from None
    except ValueError as exc:  # fsspec: "Protocol not known"
        raise ConfigError(f"cannot read {shown(url)}: {exc}: use a URL fsspec knows") from None
    except Exception as exc:  # errors differ by protocol; all mean "could not get it"
        raise DataError(
            f"cannot fetch {shown(url)}: {failure(exc, url)}: check the URL, the network and "
            "any credentials"
        ) from None
    try:
        return batches.READERS[suffix](BytesIO(raw), missing_values=missing_values)
    except Exception as exc:
        raise DataError(f"{shown(url)} is not a readable {suffix[1:]} file: {exc}") from None


def local_credentials(name: str) -> dict[str, str]:
    """The username and password that DVC's config gives database `name`: `dvc config --local
    db.<name>.password ...` writes .dvc/config.local, which git ignores (as `dvc import-db`
    reads them). The committed .dvc/config must not hold a password."""
    from dvc.config import Config
    from dvc.config import ConfigError as DvcConfigError

    try:
        config = Config(dvc_dir=DVC_DIR, validate=False)
        committed = config.load_one("repo")["db"].get(name, {})
    except DvcConfigError as exc:
        raise ConfigError(f"cannot read DVC's config: {exc}: fix the file it names") from None
    if "password" in committed:
        raise ConfigError(
            f"the committed {DVC_DIR}/config holds db.{name}.password: remove it "
            f"(`dvc config --unset db.{name}.password`) and set it with `dvc config --local`"
        )
    entry = config["db"].get(name, {})
    return {key: entry[key] for key in ("username", "password") if key in entry}


def database_url(name: str, url: str) -> sa.URL:
    """The source's URL with its secrets: `$ENV_VAR`s expanded, then DVC's db.<name> username
    and password (set on the URL object, so no character of theirs needs escaping)."""
    import sqlalchemy as sa

    try:
        parsed = sa.make_url(expand_secrets(url))
    except sa.exc.ArgumentError as exc:
        raise ConfigError(
            f"{shown(url)} is not a database URL: {exc}: fix the data.fetch url"
        ) from None
    credentials = local_credentials(name)
    if "password" in credentials and parsed.password is not None:
        raise ConfigError(
            f"data.fetch.{name} has a password in its url and in DVC's db.{name}: keep one "
            "(`$ENV_VAR` in the url, or `dvc config --local`)"
        )
    return parsed.set(**credentials)


def read_database(name: str, *, source: FetchParams) -> pd.DataFrame:
    """Source `name`'s table or query result, through SQLAlchemy."""
    import sqlalchemy as sa

    url, table, query = database_url(name, source.url), source.table, source.query
    where = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        # SQLite would quietly create an empty database at a wrong path.
        file = Path(url.database)
        if not file.is_file():
            raise DataError(
                f"database file {file} does not exist: fix the path in the data.fetch url "
                "(sqlite:///relative/path.db or sqlite:////absolute/path.db)"
            )
    try:
        engine = sa.create_engine(url)
    except sa.exc.NoSuchModuleError as exc:
        raise ConfigError(f"{where}: {exc}: use a dialect SQLAlchemy knows") from None
    except ImportError as exc:
        raise DataError(
            f"{where} needs a database driver: {exc}: install it "
            "(PostgreSQL: `pip install 'psycopg[binary]'`)"
        ) from None
    try:
        with engine.connect() as connection:
            if table is not None:
                tables = sa.inspect(connection).get_table_names()
                if table not in tables:
                    raise DataError(
                        f"table {table!r} is not in {where} (tables: {', '.join(tables)}): "
                        "set the data.fetch table to one of them"
                    )
                frame = pd.read_sql_table(table, connection)
            else:
                frame = dates_as_datetimes(pd.read_sql_query(sa.text(query), connection))
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        raise DataError(database_failure(exc, name, where)) from None
    finally:
        engine.dispose()
    return in_content_order(frame)


def dates_as_datetimes(frame: pd.DataFrame) -> pd.DataFrame:
    """DATE columns as datetime64[s], as read_sql_table reads them: read_sql_query leaves
    Python dates (object dtype), so a query's snapshot would differ from the table's."""
    for name in [c for c, dtype in frame.dtypes.items() if pd.api.types.is_object_dtype(dtype)]:
        values = frame[name].dropna()
        if len(values) and values.map(type).eq(datetime.date).all():
            frame[name] = pd.to_datetime(frame[name]).astype("datetime64[s]")
    return frame


def database_failure(exc: BaseException, name: str, where: str) -> str:
    """What the database said, in one line, and the fix."""
    import sqlalchemy as sa

    # pandas wraps the driver's error; its cause says what the database said.
    error = exc.__cause__ if isinstance(exc.__cause__, sa.exc.SQLAlchemyError) else exc
    orig = getattr(error, "orig", None)
    reason = " ".join(str(orig or error).strip().splitlines()[0].split())
    if not (isinstance(error, sa.exc.OperationalError) and error.statement is None):
        return f"query on {where} failed: {reason}: fix the data.fetch query"
    return (
        f"cannot connect to {where}: {reason}: check the host, that the server runs, and the "
        "credentials (an `$ENV_VAR` in the url, PGPASSWORD, or `dvc config --local "
        f"db.{name}.password`; docs/data-sources.md: Remote sources)"
    )


def fetch(name: str, *, source: FetchParams, missing_values: list[str]) -> pd.DataFrame:
    """Source `name`'s rows; `missing_values` (data.missing_values) apply to files, as in
    ingest: a database's NULL is its own missing value."""
    if is_database_url(source.url):
        return read_database(name, source=source)
    return read_file_url(expand_secrets(source.url), missing_values)


def snapshot_path(name: str) -> Path:
    return paths.FETCHED / f"{name}.parquet"


def main(names: list[str] | None = None) -> None:
    data = load().data
    sources = data.fetch
    unknown = sorted(set(names or []) - set(sources))
    if unknown:
        raise ConfigError(
            f"no data.fetch entry named {unknown[0]!r} (entries: {', '.join(sources) or 'none'}): "
            "add it to the data config"
        )
    for name in names or sources:
        df = fetch(name, source=sources[name], missing_values=data.missing_values)
        if df.empty:
            raise DataError(f"{shown(sources[name].url)} returned no rows: check the source")
        digest = content_sha256(df)
        df.attrs = {"content_sha256": digest}  # stored in the Parquet file's metadata
        io.write_parquet(snapshot_path(name), df)
        log.info("fetched %s: %d rows, content sha256 %s", name, len(df), digest[:16])
