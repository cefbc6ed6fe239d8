"""The preload server: import the libraries once, then fork a child per stage.

Run by client.py as a script, `python server.py SOCKET IDLE LOCK_FD PATH_JSON`, never
imported: no module of the package is ever loaded here, so a child starts with none and
imports the project from disk. Per caller the server reads the request (remote.py),
forks the child that runs the command, passes the caller's signals on, kills the child
if the caller dies, and reports how the child ended. A child ends as a process does
(non-daemon threads joined, atexit run, streams flushed) but skips tearing down the
thousands of modules it shares with the server: that alone took 0.4 s per stage.

It exits when no stage has run for IDLE_SECONDS, or, once its running stages end, when
its socket file is gone or replaced (a newer server of the project, a removed project,
`rm -rf .dvc/tmp/preload`). Its lock (client.start) is released when it exits in any
way, and its children die with it.
"""

import contextlib
import ctypes
import gc
import importlib
import io
import json
import os
import runpy
import select
import signal
import socket
import struct
import sys
import threading
import time

# What the built-in stages import that costs (python -X importtime), in import order.
# Not onnxruntime: it starts a native thread at import, and a fork must not copy threads.
# Not dask: only compute.engine dask needs it, and a cluster's start dwarfs its import.
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "pyarrow.dataset",
    "pyarrow.compute",
    "scipy.sparse",
    "scipy.stats",
    "pydantic",
    "yaml",
    "joblib",
    "threadpoolctl",
    "sklearn.base",
    "sklearn.compose",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.model_selection",
    "sklearn.metrics",
    "sklearn.inspection",
    "sklearn.isotonic",
    "sklearn.dummy",
    "pandera.pandas",
    "skops.io",
    "dvclive",
    "dvc.repo",
    "fairlearn.metrics",
    "onnx",
    "skl2onnx",
    # The boosting libraries' models (conf/model/): neither starts a thread at import.
    "lightgbm",
    "xgboost",
)
# Threads a loaded server may have besides its main one when it forks: the background
# thread of pyarrow's jemalloc, whose fork handlers make forking safe. BLAS and OpenMP pools
# stay unstarted (client.py runs only with their sizes at 1, as __main__.py sets them).
# Counted by thread, not by name: a Python thread and an OpenMP worker take the process's
# name, as the main thread does.
FORK_SAFE_THREADS = {"jemalloc_bg_thd"}
# The keys of remote.py's request; anything else on the socket is refused.
REQUEST = {"package", "argv", "env", "cwd", "umask", "path", "flags", "customize", "streams"}
PR_SET_PDEATHSIG = 1


def main() -> None:
    socket_path, idle, lock = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    # The caller's library folders (client.start): not this file's folder, which Python
    # put first, nor any other of the project.
    sys.path[:] = json.loads(sys.argv[4])
    started = time.perf_counter()
    loaded = preload()
    if "pandas" not in sys.modules:  # nothing worth serving: the stages import on their own
        print(f"preload: not serving: pandas does not import from {sys.path}", flush=True)
        return
    threads = _threads()
    if not set(threads) <= FORK_SAFE_THREADS:
        print(f"preload: not serving: threads {sorted(threads)} started at import", flush=True)
        return
    listener = _listen(socket_path)
    took = time.perf_counter() - started
    print(f"preload: pid {os.getpid()}, {loaded} modules in {took:.1f} s", flush=True)
    request = Server(listener, socket_path, lock).serve(idle)  # returns only in a child
    sys.preloaded_child = True  # client.py: the command runs here, not handed on again
    _exit(_run(request["package"]))


def preload() -> int:
    """Import PRELOAD (what the bake has of it), then freeze the heap the children share."""
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # a library the bake's options left out
            continue
    gc.collect()
    gc.freeze()  # the children's garbage collector then leaves these pages shared
    return len(sys.modules)


def _threads() -> list[str]:
    """The names of this process's threads other than the main one."""
    tasks, main = "/proc/self/task", str(os.getpid())
    return [open(f"{tasks}/{t}/comm").read().strip() for t in os.listdir(tasks) if t != main]


def _listen(socket_path: str) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mask = os.umask(0o177)  # the socket is born 0600: only this user connects
    try:
        listener.bind(socket_path)
    finally:
        os.umask(mask)
    listener.listen(16)
    listener.settimeout(1.0)
    return listener


class Server:
    """One loop, no threads: accept a caller, fork its child, pass the caller's signals
    on, report each child's end, kill a child whose caller died."""

    def __init__(self, listener: socket.socket, socket_path: str, lock: int) -> None:
        self.listener, self.socket_path, self.lock = listener, socket_path, lock
        self.inode = os.stat(socket_path).st_ino
        # pidfd: [pid, caller]; the caller is None once it died (its child was killed)
        self.children: dict[int, list] = {}

    def serve(self, idle: float) -> dict:
        """Accept and fork until idle; return only in a stage child, with its request."""
        last = time.monotonic()
        while self.children or _still_mine(self.socket_path, self.inode):
            callers = [caller for _, caller in self.children.values() if caller]
            waiting = [*self.children, *callers, self.listener]
            ready, _, _ = select.select(waiting, [], [], 1.0)
            if self.children or ready:
                last = time.monotonic()
            elif time.monotonic() - last > idle:
                break
            for item in ready:
                if item is self.listener:
                    request = self._accept()
                    if request is not None:
                        return request  # the child
                elif isinstance(item, int):
                    self._ended(item)
                else:
                    self._heard(item)
        _quit(self.socket_path, self.inode, idle)

    def _accept(self) -> dict | None:
        caller, _ = self.listener.accept()
        caller.settimeout(5.0)  # the caller sends at once; one that does not is dropped
        try:
            if not _same_user(caller):
                raise ConnectionError("another user")
            request, streams = _receive(caller)
        except (OSError, ValueError):
            caller.close()
            return None
        mine = [repr(sys.flags), repr(sys._xoptions), repr(sys.warnoptions)]
        why = None if isinstance(request, dict) and set(request) == REQUEST else "no request"
        if why is None and request["flags"] != mine:  # -X, -O, -W ...: run on its own
            why = "interpreter flags differ"
        if why:
            with contextlib.suppress(OSError):
                caller.sendall(f"refused {why}\n".encode())
            caller.close()
            return _closed(streams)
        server = os.getpid()
        pid = os.fork()
        if pid == 0:
            self._leave()
            _become(request, streams, server)
            return request
        _closed(streams)
        print(f"preload: {pid} runs {' '.join(request['argv'][1:])}", flush=True)
        caller.settimeout(None)
        with contextlib.suppress(OSError):  # a caller gone already: _heard kills the child
            caller.sendall(f"started {pid}\n".encode())
        self.children[os.pidfd_open(pid)] = [pid, caller]
        return None

    def _leave(self) -> None:
        """In a new child: close what is the server's, so that its end is seen."""
        self.listener.close()
        os.close(self.lock)
        for pidfd, (_, caller) in self.children.items():
            os.close(pidfd)
            if caller:
                caller.close()

    def _ended(self, pidfd: int) -> None:
        pid, caller = self.children.pop(pidfd)
        os.close(pidfd)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        reply = f"signal {-code}" if code < 0 else f"exit {code}"
        if caller:
            with contextlib.suppress(OSError):  # the caller is gone
                caller.sendall(f"{reply}\n".encode())
            caller.close()

    def _heard(self, caller: socket.socket) -> None:
        child = next(c for c in self.children.values() if c[1] is caller)
        pid = child[0]
        try:
            data = caller.recv(4096)
        except OSError:
            data = b""
        if not data:  # the caller died (SIGKILL ...): so does its stage, as a process would
            os.kill(pid, signal.SIGKILL)
            caller.close()
            child[1] = None
            return
        for line in data.decode().splitlines():
            word, _, number = line.partition(" ")
            if word == "signal" and number.isdigit():
                os.kill(pid, int(number))


def _closed(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _still_mine(socket_path: str, inode: int) -> bool:
    try:
        return os.stat(socket_path).st_ino == inode
    except OSError:
        return False


def _quit(socket_path: str, inode: int, idle: float) -> None:
    if _still_mine(socket_path, inode):
        os.unlink(socket_path)
        print(f"preload: no stage for {idle:.0f} s: exiting", flush=True)
    else:
        print("preload: socket removed or replaced: exiting", flush=True)
    sys.exit(0)


def _same_user(connection: socket.socket) -> bool:
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return struct.unpack("3i", credentials)[1] == os.getuid()


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    header, streams, _, _ = socket.recv_fds(connection, 8, 3)
    size, body = struct.unpack("!Q", header)[0], b""
    while len(body) < size:
        chunk = connection.recv(size - len(body))
        if not chunk:
            raise ConnectionError("the caller went away before asking")
        body += chunk
    return json.loads(body), streams


def _become(request: dict, streams: list[int], server: int) -> None:
    """Make this child the caller's process: its cwd, umask, environment, sys.path,
    argv, standard streams and default signal handling; it dies with the server."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server:
        os._exit(1)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[:] = request["path"]
    sys.argv[:] = request["argv"]
    for name, file in request["customize"].items():  # as the interpreter ran it at start
        if file != getattr(sys.modules.get(name), "__file__", None):
            sys.modules.pop(name, None)
            if file:
                importlib.import_module(name)
    _streams(request["streams"], streams)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    if "numpy" in sys.modules:  # seeded from the OS, as in a new process
        sys.modules["numpy"].random.seed()
    importlib.invalidate_caches()


def _streams(numbers: list[int], fds: list[int]) -> None:
    """The caller's stdin, stdout and stderr on 0, 1 and 2, wrapped as Python wraps them."""
    given = dict(zip(numbers, fds, strict=True))
    encoding, errors = sys.stdout.encoding, sys.stdout.errors
    for number, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        if number not in given:
            os.close(number)
            setattr(sys, name, None)
            setattr(sys, f"__{name}__", None)
            continue
        os.dup2(given[number], number)
        os.close(given[number])
        raw = io.FileIO(number, "rb" if number == 0 else "wb", closefd=False)
        buffered = io.BufferedReader(raw) if number == 0 else io.BufferedWriter(raw)
        stream = io.TextIOWrapper(
            buffered,
            encoding=encoding,
            errors="backslashreplace" if number == 2 else errors,
            line_buffering=number == 2 or (number == 1 and os.isatty(1)),
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _run(package: str) -> int:
    """`python -m <package>` in this process; its exit status, as the interpreter would
    give it (an uncaught exception's traceback printed, without this file's frame)."""
    try:
        runpy.run_module(package, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1
    except BaseException as error:  # noqa: BLE001  (what the interpreter does with it)
        error = error.with_traceback(error.__traceback__.tb_next)  # from runpy on
        sys.excepthook(type(error), error, error.__traceback__)
        return -signal.SIGINT if isinstance(error, KeyboardInterrupt) else 1
    return 0


def _exit(status: int) -> None:
    """End as the interpreter ends a process, less the teardown of modules: join the
    threads that are not daemons, run atexit, flush the streams; a KeyboardInterrupt
    nobody caught ends by SIGINT, as Python does."""
    threading._shutdown()
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    if status == -signal.SIGINT:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(status & 0xFF)


if __name__ == "__main__":
    main()
