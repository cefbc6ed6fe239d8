"""A baked project against a real SSH server: OpenSSH's sshd on a loopback port with
throwaway keys. The DVC remote answer is an ssh:// URL; `dvc push`, an emptied cache and
`dvc pull` bring the model back byte-identical; the fetch stage reads a CSV over SFTP.
Credentials stay out of tracked files: DVC's key is in .dvc/config.local, fetch's in
the environment (fsspec's FSSPEC_SSH)."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import time
from contextlib import ExitStack

import pandas as pd
import pytest
import yaml
from conftest import bake, md5, package_of, run
from sshd import Unavailable, serve

pytestmark = pytest.mark.slow


def unavailable(reason: str) -> None:
    """Skip where sshd cannot run here; under CI (which installs it) that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs openssh-server: see .ci/run)")
    pytest.skip(reason)


@pytest.fixture
def sshd(tmp_path):
    """sshd on 127.0.0.1:<free port> accepting only a fresh client key (tests/sshd.py,
    shared with benchmarks/ssh_remote.py); yields (port, client key, known_hosts file)."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(serve(tmp_path / "keys"))
        except Unavailable as exc:
            unavailable(str(exc))
        yield server.port, server.key, server.known_hosts


def test_dvc_remote_and_fetch_over_ssh(tmp_path, sshd):
    port, key, known_hosts = sshd
    user = getpass.getuser()
    store = tmp_path / "store"
    url = f"ssh://{user}@127.0.0.1:{port}{store}"
    root = bake(tmp_path / "bake", project_name="Ssh Loop", dvc_remote_url=url)
    package = package_of(root)
    assert f"url = {url}" in (root / ".dvc/config").read_text()

    # The key is a credential: .dvc/config.local (git-ignored), never .dvc/config.
    run(root, "dvc", "remote", "modify", "--local", "storage", "keyfile", str(key))
    assert "keyfile" not in (root / ".dvc/config").read_text()
    assert str(key) in (root / ".dvc/config.local").read_text()
    assert run(root, "git", "check-ignore", ".dvc/config.local").returncode == 0

    run(root, "dvc", "repro")
    model = root / "models/model.skops"
    before = md5(model)
    started = time.monotonic()
    run(root, "dvc", "push")
    pushed = time.monotonic() - started
    assert any(store.rglob("*")), "dvc push wrote nothing to the SSH store"

    shutil.rmtree(root / ".dvc/cache")
    shutil.rmtree(root / "models")
    started = time.monotonic()
    run(root, "dvc", "pull")
    pulled = time.monotonic() - started
    assert md5(model) == before
    print(f"dvc push {pushed:.1f} s, dvc pull {pulled:.1f} s over ssh")

    # A server data source: fetch reads the CSV over SFTP, with the key from the environment
    # (fsspec's FSSPEC_SSH) and the server's key checked against ~/.ssh/known_hosts as
    # `ssh` does; params.yaml holds only the URL.
    served = tmp_path / "served"
    served.mkdir()
    local = served / "penguins.csv"
    shutil.copy(sorted((root / "data/raw").glob("*.csv"))[0], local)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["source"] = "data/fetched"
    params["data"]["fetch"] = {"server": {"url": f"ssh://{user}@127.0.0.1:{port}{local}"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(known_hosts, home / ".ssh/known_hosts")
    env = {"HOME": str(home), "FSSPEC_SSH": json.dumps({"client_keys": [str(key)]})}
    run(root, "python", "-m", package, "fetch", "server", **env)
    fetched = pd.read_parquet(root / "data/fetched/server.parquet")
    pd.testing.assert_frame_equal(fetched, pd.read_csv(local))

    # A server whose key is not known is refused, not trusted silently.
    (home / ".ssh/known_hosts").write_text("")
    refused = run(root, "python", "-m", package, "fetch", "server", check=False, **env)
    assert refused.returncode == 1, refused.stderr
    error = refused.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: cannot fetch ssh://{user}@127.0.0.1:{port}"), error
    assert "not trusted" in error, error
