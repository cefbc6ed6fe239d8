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
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import bake, md5, package_of, run

pytestmark = pytest.mark.slow

SSHD = Path("/usr/sbin/sshd")


def unavailable(reason: str) -> None:
    """Skip where sshd cannot run here; under CI (which installs it) that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs openssh-server: see .ci/run)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def sshd(tmp_path):
    """sshd on 127.0.0.1:<free port> accepting only a fresh client key; yields
    (port, client key, known_hosts file)."""
    if not SSHD.is_file() or shutil.which("ssh-keygen") is None:
        unavailable(f"{SSHD} or ssh-keygen is missing: apt-get install openssh-server")
    keys = tmp_path / "keys"
    keys.mkdir()
    keygen(keys / "host")
    keygen(keys / "client")
    authorized = keys / "authorized_keys"
    shutil.copy(keys / "client.pub", authorized)
    port = free_port()
    config = keys / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\n"
        f"AuthorizedKeysFile {authorized}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\n"
        f"PidFile {keys / 'sshd.pid'}\nSubsystem sftp internal-sftp\n"
    )
    try:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    except OSError as exc:
        unavailable(f"cannot create /run/sshd for sshd: {exc}")
    server = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    while True:
        if server.poll() is not None:
            unavailable(f"sshd did not start: {server.stderr.read().strip()[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                unavailable("sshd did not listen within 10 s")
            time.sleep(0.1)
    host_key = (keys / "host.pub").read_text().split()
    known_hosts = keys / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    yield port, keys / "client", known_hosts
    server.terminate()
    server.wait(timeout=10)


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
