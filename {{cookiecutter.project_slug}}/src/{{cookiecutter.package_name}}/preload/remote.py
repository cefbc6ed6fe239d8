"""The caller's half of the preload protocol (server.py has the other half).

The caller sends its standard streams (SCM_RIGHTS) and one JSON request: the package,
argv, environment, working directory, umask, sys.path and the interpreter's flags. The
server answers `started <pid>` (or `refused <why>`: then the caller runs the command
itself), then `exit <status>` or `signal <number>` when the child ends. Signals this
process gets are passed on as `signal <number>` lines; if this process dies, even by
SIGKILL, the connection closes and the child is killed: a killed stage leaves what a
killed process leaves.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys

# What a terminal, a CI runner or `kill` sends a command; each goes on to the child.
FORWARDED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
# Forking a loaded server takes milliseconds; this only bounds a server that hangs.
START_SECONDS = 30.0


def run(connection: socket.socket, package: str, env: dict[str, str]) -> None:
    """Run the command in a child of the server, in environment `env`, and exit as it did;
    return only when the server refused it (the caller then runs it itself)."""
    caught: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in FORWARDED}

    def forward(signum: int, _frame: object) -> None:
        caught.append(signum)
        with contextlib.suppress(OSError):  # the child ended: its status is on its way
            connection.sendall(f"signal {signum}\n".encode())

    for sig in FORWARDED:
        signal.signal(sig, forward)
    replies = _send(connection, package, env)
    connection.settimeout(START_SECONDS)
    first = _line(replies)
    if not first.startswith("started "):
        connection.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in caught:  # a Ctrl-C meant for the command reaches it here
            signal.raise_signal(sig)
        return
    connection.settimeout(None)
    _exit_as(_line(replies))


def _send(connection: socket.socket, package: str, env: dict[str, str]):
    mask = os.umask(0)
    os.umask(mask)
    request = {
        "package": package,
        "argv": sys.argv,
        "env": env,
        "cwd": os.getcwd(),
        "umask": mask,
        "path": sys.path,
        "flags": [repr(sys.flags), repr(sys._xoptions), repr(sys.warnoptions)],
        # The start-up hooks this process ran (a project's src/sitecustomize.py ...).
        "customize": {
            name: getattr(sys.modules.get(name), "__file__", None)
            for name in ("sitecustomize", "usercustomize")
        },
    }
    streams = [fd for fd in (0, 1, 2) if _is_open(fd)]
    request["streams"] = streams
    payload = json.dumps(request).encode()  # ASCII: undecodable bytes stay escapes
    socket.send_fds(connection, [struct.pack("!Q", len(payload))], streams)
    connection.sendall(payload)
    return connection.makefile("rb")


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _line(replies) -> str:
    try:
        return replies.readline().decode().strip()
    except (OSError, TimeoutError):
        return ""


def _exit_as(reply: str) -> None:
    """Exit with the child's status, or die by its signal."""
    word, _, number = reply.partition(" ")
    if word == "exit":
        os._exit(int(number))
    if word == "signal":
        signal.signal(int(number), signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [int(number)])
        os.kill(os.getpid(), int(number))
        os._exit(128 + int(number))  # a signal that does not kill (SIGCHLD, ...)
    print(
        "error: the preloaded stage ended without a status (its supervisor process was "
        "killed); rerun it, or set REALITYLOOP_PRELOAD=0 to run stages as plain processes",
        file=sys.stderr,
    )
    os._exit(1)
