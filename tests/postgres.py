"""A throwaway PostgreSQL server on a loopback port: the database of tests/test_postgres.py.
Needs Debian's postgresql (.ci/run installs it); where the server cannot run, serve()
raises Unavailable with the reason. The cluster lives in a fresh folder under /tmp (CI's
pytest folders may be ones only root enters, and initdb refuses to run as root: the
server then runs as the `postgres` user) and is stopped and removed on exit. It is not
Debian's own cluster (pg_ctlcluster, port 5432), which this never starts or touches."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sshd import free_port

# The cluster's superuser; its password is one a URL must escape (`@`, `/`, `%`, `:`).
OWNER = "owner"
OWNER_PASSWORD = "s3cret@/%:owner"


class Unavailable(Exception):
    """PostgreSQL cannot run on this machine (the message says why and what to install)."""


@dataclass(frozen=True)
class Server:
    port: int

    def connect(
        self, user: str = OWNER, password: str = OWNER_PASSWORD, database: str = "postgres"
    ):
        """A psycopg connection (commits on leaving its `with` block)."""
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=user, password=password, dbname=database
        )


def bin_dir() -> Path:
    """The newest installed server's programs (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        raise Unavailable("no /usr/lib/postgresql/*/bin/initdb: apt-get install postgresql")
    return Path(found[-1]).parent


def as_server_user() -> list[str]:
    """The prefix that runs a command as the server's user: initdb and postgres refuse
    root, so as root that is `postgres`; anyone else runs the server as themselves."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable(
            "running as root and there is no `postgres` user: apt-get install postgresql"
        ) from None
    return ["setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups"]


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        raise Unavailable(f"{what} failed: {(done.stderr or done.stdout).strip()[-500:]}")


@contextmanager
def serve() -> Iterator[Server]:
    """PostgreSQL on 127.0.0.1:<free port>, password (scram-sha-256) logins only, the
    superuser OWNER; stopped and its folder removed on exit."""
    programs = bin_dir()
    prefix = as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="realityloop-pg-"))
    try:
        if prefix:
            shutil.chown(folder, "postgres", "postgres")
        password_file = folder / "password"
        password_file.write_text(OWNER_PASSWORD + "\n")
        if prefix:
            shutil.chown(password_file, "postgres", "postgres")
        data = folder / "data"
        _run([*prefix, str(programs / "initdb"), "-D", str(data), "-U", OWNER,
              f"--pwfile={password_file}", "--auth=scram-sha-256", "-E", "UTF8",
              "--no-locale", "--no-sync"], "initdb")  # fmt: skip
        port = free_port()
        # fsync off: a test's data need not survive a crash, and the server starts faster.
        options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off")  # fmt: skip
        _run([*prefix, str(programs / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"),
              "-o", options, "-w", "-t", "30", "start"], "pg_ctl start")  # fmt: skip
        try:
            yield Server(port)
        finally:
            subprocess.run(
                [*prefix, str(programs / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True, timeout=60,
            )  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
