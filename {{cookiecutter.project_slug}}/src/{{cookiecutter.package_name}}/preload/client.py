"""The caller's side: run this command in a forked child of the project's preload server.

`delegate()` returns when the command should run in this process: preloading is off,
DVC is not the caller, the command is not a stage, or no server is up yet (it then starts
one in the background, for the next stage). Otherwise it does not return: the process
exits as the child did, with its status or by its signal.

The server is per project, user and environment: its socket is
`.dvc/tmp/preload/<uid>-<key>.sock`, and the key hashes everything the preloaded modules
were imported under (the interpreter, its flags, sys.path and each of its folders' change
time, the environment variables read at import time, resource limits, server.py and
remote.py). A `uv sync` or a new package version changes a site-packages folder, so the
next stage meets no server and starts a fresh one: old modules never run new code.

Standard library only, and little of it: this runs before every stage.
"""

from __future__ import annotations

import os
import sys

OFF_VALUES = frozenset({"0", "off", "false", "no"})
# Seconds a server waits for the next stage before it exits.
IDLE_SECONDS = 900.0
# The environment variables that the interpreter and the preloaded libraries read when
# they start or are imported (locale, thread pools, allocators, config folders, temp
# folder, the dynamic linker). A child gets the caller's whole environment; these also
# pick the server, as their values at import time stay in the modules it preloaded.
# Others (DVC_STAGE, PYTEST_CURRENT_TEST ...) change from call to call and matter later.
IMPORT_TIME = (
    "PYTHON", "LC_", "LANG", "TZ", "HOME", "XDG_", "TMPDIR", "TEMP", "TMP", "LD_",
    "OMP_", "OPENBLAS_", "MKL_", "KMP_", "BLIS_", "GOTO", "VECLIB_", "NUMEXPR_",
    "NPY_", "NUMPY_", "SCIPY_", "SKLEARN_", "PANDAS_", "ARROW_", "PYARROW_", "JE_",
    "MALLOC_", "PYDANTIC_", "DASK_", "SKOPS_", "ONNX",
)  # fmt: skip
# What the preloaded imports put in os.environ when it lacks them: scikit-learn's for
# OpenMP, pandera's for pyspark. A caller that imported scikit-learn itself, as `dvc exp
# run` does when it composes conf/, passes them on to its stages and another does not: the
# key and the child's environment count them as set either way, as a stage run in-process
# sees them, so both callers meet one server.
SET_AT_IMPORT = {
    "KMP_DUPLICATE_LIB_OK": "True",
    "KMP_INIT_AT_FORK": "FALSE",
    "SPARK_LOCAL_IP": "127.0.0.1",
    "PYARROW_IGNORE_TIMEZONE": "1",
}
# __main__.py sets them to 1 before numpy loads, unless the caller set them.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
FOLDER = os.path.join(".dvc", "tmp", "preload")
SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server.py")
REMOTE = os.path.join(os.path.dirname(SERVER), "remote.py")


def delegate(package: str) -> None:
    """Run `python -m <package> <stage>` in a preloaded child and exit as it did, when
    that applies; else return, and the caller runs the command itself."""
    if not _wanted(package):
        return
    try:
        socket_path = os.path.join(FOLDER, f"{os.getuid()}-{key()}.sock")
        connection = _connect(socket_path)
        if connection is None:
            start(socket_path)
            return
    except OSError:  # no place for a socket (read-only project, ...): run here
        return
    from . import remote  # the socket protocol: loaded only when a server answers

    remote.run(connection, package, environment())


def _wanted(package: str) -> bool:
    if sys.platform != "linux" or getattr(sys, "preloaded_child", False):
        return False
    if sys._xoptions or "COVERAGE_PROCESS_START" in os.environ:
        return False  # -X importtime, coverage ...: a diagnosis wants the process itself
    if os.environ.get("REALITYLOOP_PRELOAD", "1").strip().lower() in OFF_VALUES:
        return False
    if "DVC_STAGE" not in os.environ or not os.path.isdir(".dvc"):
        return False
    if any(os.environ.get(v) != "1" for v in THREAD_VARIABLES):
        return False  # BLAS would start a pool of threads in the server: forks copy none
    words = [w for w in sys.argv[1:] if w not in ("-q", "--quiet")]
    stages = os.path.join(os.path.dirname(os.path.dirname(__file__)), "stages")
    name = words[0] if words else ""
    return name.isidentifier() and os.path.isfile(os.path.join(stages, f"{name}.py"))


def key() -> str:
    """The hash of what the server's imports depend on (module docstring)."""
    import hashlib
    import resource

    parts = [sys.executable, sys.version, repr(sys.flags), repr(sys._xoptions)]
    parts += [repr(sys.warnoptions), repr(sys.path), str(os.getuid())]
    for folder in sys.path:  # the project's code changes with every new module: not keyed
        if folder and not project_code(folder):
            try:
                stat = os.stat(folder)
            except OSError:
                continue
            parts.append(f"{folder} {stat.st_ino} {stat.st_mtime_ns}")
    env = {k: v for k, v in environment().items() if k.startswith(IMPORT_TIME)}
    parts += sorted(f"{k}={v}" for k, v in env.items())
    limits = (getattr(resource, n) for n in dir(resource) if n.startswith("RLIMIT_"))
    parts += [repr(resource.getrlimit(limit)) for limit in limits]
    for peer in (SERVER, REMOTE):  # the two ends of the protocol: a server never outlives it
        with open(peer, "rb") as code:
            parts.append(hashlib.sha256(code.read()).hexdigest())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def environment() -> dict[str, str]:
    """The caller's environment as its stage sees it once the preloaded modules are in."""
    return {**SET_AT_IMPORT, **os.environ}


def _connect(socket_path: str):
    """A connection to the server at `socket_path`, or None when none listens there."""
    import socket

    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(socket_path)  # relative: a project path may pass 108 bytes
    except (FileNotFoundError, ConnectionRefusedError):
        connection.close()
        return None
    return connection


def start(socket_path: str) -> None:
    """Start a server for `socket_path` in the background, unless one is starting or up.

    The server holds an exclusive lock on `<socket>.lock` for its whole life, inherited
    from here: a lock that is free means no server, so a socket left by a killed one is
    stale and replaced. Servers of this user with another key are told to go (their
    sockets removed: each notices within a second, after its running stages)."""
    import fcntl
    import json
    import subprocess

    os.makedirs(FOLDER, mode=0o700, exist_ok=True)
    if os.stat(FOLDER).st_uid != os.getuid():
        return  # another user's folder: never share a process with them
    os.chmod(FOLDER, 0o700)
    lock = os.open(f"{socket_path[:-5]}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return
    if _refused(f"{socket_path[:-5]}.log"):
        os.close(lock)
        return
    if os.path.lexists(socket_path):  # left by a server that was killed: the lock says so
        os.unlink(socket_path)
    _retire(socket_path)
    idle = os.environ.get("REALITYLOOP_PRELOAD_IDLE", str(IDLE_SECONDS))
    # The server finds libraries where this process does, but no project folder is on
    # its path: neither a module nor a sitecustomize.py of the project loads there.
    libraries = json.dumps([f for f in sys.path if f and not project_code(f)])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with open(f"{socket_path[:-5]}.log", "wb") as log:
        subprocess.Popen(
            # The caller's interpreter options (-O, -W ...): the server checks they match.
            [sys.executable, *subprocess._args_from_interpreter_flags(), SERVER, socket_path]
            + [idle, str(lock), libraries],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            pass_fds=(lock,),
            start_new_session=True,
        )
    os.close(lock)


def _refused(log: str) -> bool:
    """Whether the last server of this key found nothing to serve (server.py says so in its
    log): the same libraries, environment and interpreter would again, so none starts until
    the key changes (`uv sync`, another variable), not a doomed one before every stage."""
    try:
        with open(log, "rb") as text:
            return any(line.startswith(b"preload: not serving") for line in text)
    except OSError:
        return False


def _retire(socket_path: str) -> None:
    """Remove this user's other sockets (their servers exit), and the files of servers
    that are gone: a lock nobody holds."""
    import fcntl

    mine = f"{os.getuid()}-"
    for name in os.listdir(FOLDER):
        path = os.path.join(FOLDER, name)
        if not name.startswith(mine) or path.startswith(socket_path[:-5]):
            continue
        if name.endswith(".sock"):
            os.unlink(path)
        elif name.endswith(".lock"):
            lock = os.open(path, os.O_RDWR)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # still running stages: its files stay until it exits
            finally:
                os.close(lock)
            for gone in (path, f"{path[:-5]}.log"):
                os.unlink(gone)


def project_code(path: str) -> bool:
    """Whether `path` is the project's own code, edited at will: inside the project (the
    working directory), but not in the virtual environment that runs it (the README installs
    .venv/ in the project, and it holds libraries). Here, in the standard library only, so
    the stages' caller imports nothing more; core/model_catalog.py's cache keys on it too."""
    path = os.path.join(os.path.abspath(path), "")
    inside = path.startswith(os.path.join(os.getcwd(), ""))
    return inside and not path.startswith(os.path.join(os.path.abspath(sys.prefix), ""))
