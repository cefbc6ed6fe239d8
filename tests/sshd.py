"""OpenSSH's sshd on a loopback port with throwaway keys: the SSH server of
tests/test_ssh_remote.py and of benchmarks/ssh_remote.py (which puts tests/ on its path
to import this module). Needs Debian's openssh-server and openssh-client (.ci/run
installs them); where sshd cannot run, serve() raises Unavailable with the reason."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")


class Unavailable(Exception):
    """sshd cannot run on this machine (the message says why and what to install)."""


@dataclass(frozen=True)
class Server:
    port: int
    key: Path  # the client's private key, the only one the server accepts
    known_hosts: Path  # the server's host key, as ~/.ssh/known_hosts lists it


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


@contextmanager
def serve(keys: Path) -> Iterator[Server]:
    """sshd on 127.0.0.1:<free port> accepting only a fresh client key, its keys and
    config in the new folder `keys`; stopped on exit."""
    if not SSHD.is_file() or shutil.which("ssh-keygen") is None:
        raise Unavailable(f"{SSHD} or ssh-keygen is missing: apt-get install openssh-server")
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
        raise Unavailable(f"cannot create /run/sshd for sshd: {exc}") from None
    server = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if server.poll() is not None:
                raise Unavailable(f"sshd did not start: {server.stderr.read().strip()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise Unavailable("sshd did not listen within 10 s") from None
                time.sleep(0.1)
        host_key = (keys / "host.pub").read_text().split()
        known_hosts = keys / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        yield Server(port, keys / "client", known_hosts)
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)
