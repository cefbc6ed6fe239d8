"""The preload server (preload/): a stage that DVC runs goes to a forked child of a server
that has imported the libraries, and behaves as its own process would.

Each test drives the real client (`python -m {{ cookiecutter.package_name }} probe`, with
DVC_STAGE set as DVC sets it) in a copy of this project that holds one more stage,
stages/probe.py, whose behaviour a file picks: the environment stays the same from call
to call, as under `dvc repro`, since it is part of the server's key.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.preload import client
from {{ cookiecutter.package_name }}.preload import server as server_module

from conftest import venv_inside

PROJECT = Path(__file__).resolve().parents[2]
PACKAGE = "{{ cookiecutter.package_name }}"
# What each probe mode does; `info` reports what a test checks about the process.
PROBE = """
import json, os, sys, time, signal
from pathlib import Path


def main():
    mode = Path("probe.mode").read_text().strip()
    if mode == "info":
        print(json.dumps({
            "pid": os.getpid(), "cwd": os.getcwd(), "umask": os.umask(0o022),
            "child": getattr(sys, "preloaded_child", False),
            "stdin": sys.stdin.readline().strip(), "colour": os.environ.get("COLOUR"),
            "customized": getattr(sys, "customized", False),
            "kmp": os.environ.get("KMP_INIT_AT_FORK"),
            "preloaded": "sklearn.ensemble" in sys.modules,
        }))
        print("to stderr", file=sys.stderr)
        sys.exit(int(Path("probe.code").read_text()) if Path("probe.code").exists() else 0)
    if mode == "version":
        print("version 1")
    if mode == "sleep":
        Path("probe.pid").write_text(str(os.getpid()))
        time.sleep(60)
    if mode == "raise":
        raise RuntimeError("the probe failed")
    if mode == "die":
        os.kill(os.getpid(), signal.SIGTERM)
    if mode == "threads":
        from threadpoolctl import threadpool_info
        from {package}.core import compute

        outside = max(p["num_threads"] for p in threadpool_info())
        with compute.cores(2):
            inside = max(p["num_threads"] for p in threadpool_info())
        print(json.dumps({"outside": outside, "inside": inside}))
"""


class Project:
    """A copy of this project with the probe stage, and the client's fixed environment."""

    def __init__(self, root: Path, idle: int = 120) -> None:
        self.root = root
        self.python = sys.executable
        shutil.copytree(PROJECT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
        (root / ".dvc").mkdir()
        probe = root / "src" / PACKAGE / "stages" / "probe.py"
        probe.write_text(PROBE.replace("{package}", PACKAGE), encoding="utf-8")
        self.env = {
            # Without what importing scikit-learn adds (pytest may have): a test adds it.
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith("REALITYLOOP_") and k not in client.SET_AT_IMPORT
            },
            "PYTHONPATH": str(root / "src"),
            "DVC_STAGE": "probe",
            "REALITYLOOP_PRELOAD_IDLE": str(idle),
            "COLOUR": "teal",
        }

    def start(self, mode: str, **kw) -> subprocess.Popen:
        (self.root / "probe.mode").write_text(mode)
        command = [self.python, *kw.pop("flags", []), "-m", PACKAGE, "--quiet", "probe"]
        return subprocess.Popen(
            command, cwd=self.root, env=kw.pop("env", self.env), text=True, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw,
        )  # fmt: skip

    def call(self, mode: str, stdin: str = "", **kw) -> subprocess.CompletedProcess:
        proc = self.start(mode, **kw)
        out, err = proc.communicate(stdin, timeout=120)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def folder(self) -> Path:
        return self.root / ".dvc" / "tmp" / "preload"

    def server_pid(self, timeout: float = 120) -> int:
        """The pid of the running server, once it listens (its log says so). A killed server
        leaves its socket and log until the next one replaces them: only a live pid counts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sockets = list(self.folder().glob("*.sock")) if self.folder().exists() else []
            logs = [path.with_suffix(".log") for path in sockets]
            lines = [line for log in logs if log.exists() for line in log.read_text().splitlines()]
            started = [line.split()[2] for line in lines if line.startswith("preload: pid ")]
            pids = [int(pid.rstrip(",")) for pid in started]
            if pids and alive(pids[-1]):
                return pids[-1]
            time.sleep(0.2)
        raise AssertionError(f"no preload server came up in {timeout} s")

    def warm(self) -> int:
        """Start the server (the first call runs in the caller) and wait until it listens."""
        first = self.call("version")
        assert first.returncode == 0, first.stderr
        return self.server_pid()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    made = Project(tmp_path_factory.mktemp("preload") / "project")
    made.warm()
    yield made
    shutil.rmtree(made.folder(), ignore_errors=True)  # its server exits within a second


pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the preloader is Linux's")


def test_a_stage_runs_in_a_forked_child_with_the_callers_streams_env_and_status(project):
    (project.root / "probe.code").write_text("7")
    try:
        done = project.call("info", stdin="hello\n")
    finally:
        (project.root / "probe.code").unlink()
    info = json.loads(done.stdout)
    assert info["child"] is True  # it ran in the server's child
    assert info["preloaded"] is True  # with the libraries the server imported
    assert done.returncode == 7
    assert info["stdin"] == "hello"
    assert info["cwd"] == str(project.root)
    assert info["colour"] == "teal"
    assert info["umask"] == _umask()
    assert done.stderr == "to stderr\n"
    # A variable no library reads at import: the same server, the caller's value.
    server = project.server_pid()
    again = project.call("info", env={**project.env, "COLOUR": "red"})
    assert json.loads(again.stdout)["colour"] == "red"
    assert json.loads(again.stdout)["child"] is True
    assert project.server_pid() == server
    # What importing scikit-learn sets: a caller that did (`dvc exp run` composing conf/)
    # and one that did not meet the same server, and both stages see it set.
    assert json.loads(again.stdout)["kmp"] == "FALSE"
    imported = project.call("info", env={**project.env, **client.SET_AT_IMPORT})
    assert json.loads(imported.stdout)["child"] is True
    assert json.loads(imported.stdout)["kmp"] == "FALSE"
    assert project.server_pid() == server


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_edit_takes_effect_at_the_next_stage_on_the_same_server(project):
    server = project.server_pid()
    assert project.call("version").stdout == "version 1\n"
    probe = project.root / "src" / PACKAGE / "stages" / "probe.py"
    probe.write_text(probe.read_text().replace('"version 1"', '"version 2"'))
    assert project.call("version").stdout == "version 2\n"
    assert project.server_pid() == server


def test_a_sitecustomize_of_the_project_runs_in_the_child_as_at_a_start(project):
    """A hook that every Python process of the project loads (tests patch writes so)."""
    hook = project.root / "src" / "sitecustomize.py"
    hook.write_text("import sys\nsys.customized = True\n")
    try:
        info = json.loads(project.call("info").stdout)
        assert info["child"] is True and info["customized"] is True
    finally:
        hook.unlink()
    assert json.loads(project.call("info").stdout)["customized"] is False


def test_an_uncaught_exception_prints_its_traceback_and_exits_1(project):
    done = project.call("raise")
    assert done.returncode == 1
    assert "RuntimeError: the probe failed" in done.stderr
    assert "server.py" not in done.stderr  # the traceback starts where a process's would


def test_a_stage_killed_by_a_signal_kills_the_caller_by_it(project):
    assert project.call("die").returncode == -signal.SIGTERM


def test_ctrl_c_reaches_the_stage_which_stops_as_it_would(project):
    proc = project.start("sleep")
    pid = _wait_for_pid(project)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.startswith("interrupted: probe stopped")
    assert gone_within(pid, 5)


def test_sigkill_of_the_caller_kills_its_stage(project):
    proc = project.start("sleep")
    pid = _wait_for_pid(project)
    assert pid != proc.pid  # the stage is the server's child, not the caller
    proc.kill()
    proc.wait(timeout=10)
    assert gone_within(pid, 5)


def _wait_for_pid(project: Project) -> int:
    marker = project.root / "probe.pid"
    marker.unlink(missing_ok=True)
    deadline = time.monotonic() + 60
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline, "the probe never started"
        time.sleep(0.05)
    return int(marker.read_text())


def test_compute_n_jobs_still_sets_the_thread_pools_in_a_child(project):
    info = json.loads(project.call("threads").stdout)
    assert info == {"outside": 1, "inside": 2}


def test_the_server_holds_no_project_module_and_no_thread_pool(tmp_path):
    """What a child inherits: the server's state right before it forks, and what its imports
    set in os.environ."""
    server = PROJECT / "src" / PACKAGE / "preload" / "server.py"
    check = """
import importlib.util, json, os, sys
before = dict(os.environ)
spec = importlib.util.spec_from_file_location("preload_server", SERVER)
server = importlib.util.module_from_spec(spec)
spec.loader.exec_module(server)
loaded = server.preload()
threads = server._threads()
import threading
from threadpoolctl import threadpool_info
stop = threading.Event()
worker = threading.Thread(target=stop.wait)
worker.start()  # a thread named as the main one is seen all the same
seen = server._threads()
stop.set()
worker.join()
print(json.dumps(dict(
    project=sorted(m for m in sys.modules if m.split(".")[0] == PACKAGE),
    threads=threads,
    extra=sorted(set(seen) - set(threads)) if len(seen) == len(threads) + 1 else seen,
    pools=max(p["num_threads"] for p in threadpool_info()),
    libraries=sorted(n for n in server.PRELOAD if n in sys.modules),
    environ={k: v for k, v in os.environ.items() if before.get(k) != v},
)))
""".replace("SERVER", repr(str(server))).replace("PACKAGE", repr(PACKAGE))
    env = {k: v for k, v in os.environ.items() if k not in client.SET_AT_IMPORT}
    env["PYTHONPATH"] = str(PROJECT / "src")
    env.update(dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1"))
    done = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, text=True,
                          capture_output=True, check=True)  # fmt: skip
    state = json.loads(done.stdout)
    assert state["project"] == []
    assert set(state["threads"]) <= server_module.FORK_SAFE_THREADS
    assert len(state["extra"]) == 1 and not set(state["extra"]) <= server_module.FORK_SAFE_THREADS
    assert state["pools"] == 1
    assert {"pandas", "sklearn.base", "pyarrow.parquet"} <= set(state["libraries"])
    # What the imports set in os.environ is what the client counts as set (its key).
    assert state["environ"] == client.SET_AT_IMPORT


def test_anything_but_a_request_on_the_socket_is_refused_and_the_server_lives_on(project):
    import socket
    import struct

    server = project.server_pid()
    (path,) = project.folder().glob("*.sock")
    for body in (b"[1, 2]", b'{"argv": []}', b"not json"):
        with socket.socket(socket.AF_UNIX) as raw:
            raw.connect(str(path))
            raw.sendall(struct.pack("!Q", len(body)) + body)
            assert raw.makefile("rb").readline().startswith(b"refused") or body == b"not json"
    assert json.loads(project.call("info").stdout)["child"] is True
    assert project.server_pid() == server


def test_the_socket_is_private_and_inside_the_project(project):
    folder = project.folder()
    assert folder.stat().st_mode & 0o777 == 0o700
    (socket_path,) = folder.glob(f"{os.getuid()}-*.sock")
    assert socket_path.stat().st_mode & 0o777 == 0o600


NOBODY = 65534


def _as_other_user(root: Path, env: dict, check) -> dict:
    """`check()`'s result in a fork of this process that became the user nobody in `root`
    (a fork, not a new process: nobody may not reach this interpreter's folder)."""
    for lazy in ("fcntl", "hashlib", "resource", "socket", "subprocess"):  # client.py's:
        importlib.import_module(lazy)  # imported here, as nobody cannot read the stdlib
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.chdir(root)
            os.environ.clear()
            os.environ.update(env)
            os.write(write, json.dumps(check()).encode())
        except BaseException as exc:  # noqa: BLE001 (reported to the test, in the parent)
            os.write(write, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        found = answer.read()
    os.waitpid(pid, 0)
    return json.loads(found)


def test_a_second_user_never_shares_the_first_users_server(tmp_path):
    """Two users of one project folder: the other's stage cannot reach this user's socket
    (its folder is 0700), so it runs in its own process, and starts no server there."""
    if os.getuid() != 0:
        pytest.skip("a second user needs root to switch to it")
    shared = Path(tempfile.mkdtemp())  # in /tmp: a folder the other user can enter
    try:
        shared.chmod(0o755)
        mine = Project(shared / "project")
        mine.warm()
        server = mine.server_pid()
        (socket_path,) = mine.folder().glob(f"{os.getuid()}-*.sock")

        def other_user() -> dict:
            # The shared project's client, as that user's stage imports it (this test's
            # own copy may lie in a folder only root enters).
            for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
                del sys.modules[name]
            sys.path.insert(0, str(mine.root / "src"))
            theirs = importlib.import_module(f"{PACKAGE}.preload.client")
            sys.argv[:] = ["-m", "train"]  # a stage of the package the client belongs to
            wanted = theirs._wanted(PACKAGE)
            try:
                theirs._connect(str(socket_path))
                reached = "connected"
            except OSError as exc:
                reached = type(exc).__name__
            theirs.delegate(PACKAGE)  # returns: the stage runs in this process
            return {"uid": os.getuid(), "wanted": wanted, "reached": reached}

        threads = dict.fromkeys(client.THREAD_VARIABLES, "1")
        other = _as_other_user(mine.root, {**mine.env, **threads, "DVC_STAGE": "train"}, other_user)
        assert other == {"uid": NOBODY, "wanted": True, "reached": "PermissionError"}
        assert {path.stat().st_uid for path in mine.folder().iterdir()} == {os.getuid()}
        assert json.loads(mine.call("info").stdout)["child"] is True
        assert mine.server_pid() == server
    finally:
        shutil.rmtree(shared)


def test_interpreter_options_run_the_command_as_its_own_process(project):
    done = project.call("info", flags=["-X", "importtime"])
    assert json.loads(done.stdout)["child"] is False
    assert "import time:" in done.stderr


def test_off_switch_runs_every_stage_as_a_plain_process(tmp_path):
    plain = Project(tmp_path / "project")
    plain.env["REALITYLOOP_PRELOAD"] = "0"
    for _ in range(2):
        assert json.loads(plain.call("info").stdout)["child"] is False
    assert not plain.folder().exists()


def test_a_server_that_found_nothing_to_serve_is_not_started_again_for_the_same_key(tmp_path):
    """Where pandas does not import, the server exits without serving; the next stage does
    not start another (its log stays as it was) until the libraries change."""
    libraries = tmp_path / "libraries"
    (libraries / "pandas").mkdir(parents=True)
    (libraries / "pandas" / "__init__.py").write_text("raise ImportError('no pandas here')\n")
    bare = Project(tmp_path / "project", idle=10)
    bare.env["PYTHONPATH"] += os.pathsep + str(libraries)
    assert bare.call("version").returncode == 0
    deadline = time.monotonic() + 60
    while not [p for p in bare.folder().glob("*.log") if "not serving" in p.read_text()]:
        assert time.monotonic() < deadline, "the server never said it does not serve"
        time.sleep(0.2)
    (log,) = bare.folder().glob("*.log")
    written = log.stat().st_mtime_ns
    for _ in range(2):
        done = bare.call("version")
        assert done.returncode == 0 and done.stdout == "version 1\n", done.stderr
    assert log.stat().st_mtime_ns == written and "not serving" in log.read_text()
    (libraries / "newlib.py").write_text("VERSION = 2\n")  # a library changed: a new key
    assert bare.call("version").returncode == 0
    assert len(list(bare.folder().glob("*.log"))) == 1 and not log.exists()


def test_a_virtual_environment_inside_the_project_holds_libraries_not_project_code(tmp_path):
    """The README installs into the project's .venv/: its site-packages are preloaded, and
    a package installed there (`uv sync`) picks a fresh server, as for any library folder."""
    other = Project(tmp_path / "project", idle=10)
    other.python = venv_inside(other.root)
    site = next((other.root / ".venv").glob("lib/python*/site-packages"))
    first = other.warm()
    info = json.loads(other.call("info").stdout)
    assert info["child"] is True and info["preloaded"] is True
    (site / "newlib.py").write_text("VERSION = 2\n")
    assert json.loads(other.call("info").stdout)["child"] is False
    assert other.server_pid() != first and gone_within(first, 10)
    shutil.rmtree(other.folder())


def test_a_changed_environment_gets_a_fresh_server_and_a_killed_one_is_replaced(tmp_path, project):
    """A folder on sys.path outside the project changes as site-packages does on `uv
    sync`; a server killed by SIGKILL leaves a stale socket that the next stage replaces.
    Two projects never share a server; an idle one exits."""
    other = Project(tmp_path / "project", idle=3)
    libraries = tmp_path / "site"
    libraries.mkdir()
    other.env["PYTHONPATH"] += os.pathsep + str(libraries)
    first = other.warm()
    assert first != project.server_pid()  # a project of its own, a server of its own
    assert json.loads(other.call("info").stdout)["child"] is True
    (libraries / "newlib.py").write_text("VERSION = 2\n")  # a package installed
    assert json.loads(other.call("info").stdout)["child"] is False  # the old server is not used
    second = other.server_pid()
    assert second != first and gone_within(first, 10)
    # A variable a library reads when imported (scikit-learn's config) picks a server too.
    assert json.loads(other.call("info").stdout)["child"] is True
    other.env["SKLEARN_ASSUME_FINITE"] = "1"
    assert json.loads(other.call("info").stdout)["child"] is False
    second = other.server_pid()

    os.kill(second, signal.SIGKILL)
    assert gone_within(second, 5)
    assert json.loads(other.call("info").stdout)["child"] is False  # stale socket: in-process
    third = other.server_pid()
    assert third != second
    assert json.loads(other.call("info").stdout)["child"] is True
    assert gone_within(third, 30)  # idle for 3 s: it exits
    assert not list(other.folder().glob("*.sock"))
