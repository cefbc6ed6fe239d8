"""Faults a baked project meets in real use, each leaving it recoverable: a stage killed
with SIGKILL while it writes, a disk that fills during a write, and one failing
experiment among others in a parallel queue."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import bake, git, md5, package_of, run

pytestmark = pytest.mark.slow

# Test-only: put in the baked project's src/ as sitecustomize.py, so that every Python
# process started there (the stage, under dvc repro too) loads it. When FAULTS_PAUSE is set,
# a write of train.parquet stops half written, before its rename, and writes the process id
# to that file; the test then kills the process. No hook in the project's own code.
PAUSE_IN_WRITE = """\
import os
import time

_replace = os.replace


def replace(src, dst, *args, **kwargs):
    if os.environ.get("FAULTS_PAUSE") and os.path.basename(dst) == "train.parquet":
        os.truncate(src, os.path.getsize(src) // 2)
        with open(os.environ["FAULTS_PAUSE"], "w") as marker:
            marker.write(str(os.getpid()))
        time.sleep(600)
    return _replace(src, dst, *args, **kwargs)


os.replace = replace
"""
PROCESSED = "data/processed"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A baked project after its first `dvc repro`, committed."""
    root = bake(tmp_path_factory.mktemp("faults"), project_name="Loop faults")
    run(root, "dvc", "repro")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "First pipeline run")
    return root


def locked_md5s(root: Path) -> dict[str, str]:
    """Every cached output's md5 as the committed dvc.lock records it."""
    lock = yaml.safe_load(git(root, "show", "HEAD:dvc.lock"))
    return {
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
        if not out["md5"].endswith(".dir")  # a folder's md5 is DVC's listing hash
    }


def assert_recovered(root: Path) -> None:
    """Outputs as an uninterrupted run made them; nothing for git or DVC to pick up."""
    assert run(root, "dvc", "status").stdout.strip() == "Data and pipelines are up to date."
    assert git(root, "status", "--porcelain") == ""
    for path, locked in locked_md5s(root).items():
        assert md5(root / path) == locked, path


def start_paused(root: Path, *command: str) -> tuple[subprocess.Popen, int]:
    """Start `command` with the pause hook; return it and the id of the paused writer."""
    marker = root.parent / "paused"
    marker.unlink(missing_ok=True)
    (root / "src/sitecustomize.py").write_text(PAUSE_IN_WRITE)
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "FAULTS_PAUSE": str(marker)}
    process = subprocess.Popen(
        command, cwd=root, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while not (marker.exists() and marker.read_text()):
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail(f"never reached the paused write:\n{process.communicate()[0][-3000:]}")
        time.sleep(0.05)
    (root / "src/sitecustomize.py").unlink()
    return process, int(marker.read_text())


def stale_temps(root: Path) -> list[Path]:
    return sorted((root / PROCESSED).glob(".train.parquet.*.tmp"))


def test_a_stage_killed_mid_write_keeps_the_old_output(project):
    """`python -m <pkg> preprocess` killed (SIGKILL, as the OOM killer does) while writing:
    the old train.parquet stays, the half-written temporary file is ignored by git and DVC,
    and the next run of the stage removes it."""
    root = project
    process, pid = start_paused(root, "python", "-m", package_of(root), "preprocess")
    os.kill(pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    [stale] = stale_temps(root)
    assert 0 < stale.stat().st_size < (root / PROCESSED / "train.parquet").stat().st_size
    assert_recovered(root)
    run(root, "python", "-m", package_of(root), "preprocess")
    assert stale_temps(root) == []
    assert_recovered(root)


def test_dvc_repro_killed_mid_write_then_rerun_rebuilds_the_same_outputs(project):
    """`dvc repro` and its stage killed together mid-write: no partial file at the output's
    path (DVC removes outputs before a stage runs), and the next `dvc repro` restores
    exactly what an uninterrupted run made, dvc.lock unchanged."""
    root = project
    process, _ = start_paused(root, "dvc", "repro", "--force", "--single-item", "preprocess")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert not (root / PROCESSED / "train.parquet").exists()
    assert len(stale_temps(root)) == 1
    log = run(root, "dvc", "repro").stdout
    assert "Stage 'preprocess' is cached - skipping run, checking out outputs" in log, log
    assert_recovered(root)


def test_a_killed_writes_temporary_is_never_part_of_an_output_folder(project):
    """models/onnx/ is an output folder: DVC hashes whatever is in it, unless .dvcignore
    says otherwise, and git must not pick the file up either."""
    root = project
    stale = root / "models/onnx/.model.onnx.k1ll3d.tmp"
    stale.write_bytes(b"half an onnx graph")
    try:
        assert_recovered(root)
    finally:
        stale.unlink()


def test_ctrl_c_under_dvc_repro_is_one_line_and_the_rerun_rebuilds(project):
    """SIGINT to `dvc repro`'s process group (Ctrl-C) while a stage runs: the stage says so
    in one line, DVC names the stage, no traceback; the next `dvc repro` rebuilds the
    outputs byte for byte."""
    marker = "select     start"
    environment = {**os.environ, "PYTHONPATH": str(project / "src")}
    child = subprocess.Popen(
        ["dvc", "repro", "--force", "--single-item", "select"], cwd=project, env=environment,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines = []
    for line in child.stdout:
        lines.append(line)
        if marker in line:
            time.sleep(1.0)  # into its work
            os.killpg(child.pid, signal.SIGINT)
            break
    lines += child.stdout.readlines()
    child.wait(timeout=60)
    output = "".join(lines)
    assert child.returncode != 0 and "Traceback" not in output, output
    assert "interrupted: select stopped; outputs it had not finished were not written" in output
    run(project, "dvc", "repro")
    assert_recovered(project)


def mount_full_tmpfs(folder: Path) -> None:
    """Mount a tmpfs over `folder` holding a copy of its files and one free page (no
    temporary files of killed writes: the stage would delete them and gain room)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root and mount(8) (CI has both)")
    saved = folder.with_name(folder.name + ".saved")
    shutil.copytree(folder, saved, ignore=shutil.ignore_patterns(".*.tmp"))
    used = sum(-(-p.stat().st_size // 4096) * 4096 for p in saved.iterdir())
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={used + 4096}", "tmpfs", str(folder)],
        capture_output=True, text=True,
    )  # fmt: skip
    if mounted.returncode != 0:
        shutil.rmtree(saved)
        pytest.skip(f"mount not permitted here: {mounted.stderr.strip()}")
    shutil.copytree(saved, folder, dirs_exist_ok=True)
    shutil.rmtree(saved)


def limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("no space left on device", id="tmpfs-full"),
        pytest.param("file too large", id="ulimit-f"),
    ],
)
def test_a_full_disk_keeps_the_old_output_and_says_which_file(project, fault):
    """A real ENOSPC (a tiny tmpfs over data/processed/, root only) or EFBIG (`ulimit -f`,
    anyone) from inside pyarrow: one line naming the file and the fix, no traceback, the
    previous outputs byte-identical, no temporary file left."""
    root = project
    folder = root / PROCESSED
    if fault == "no space left on device":
        mount_full_tmpfs(folder)
    try:
        # An earlier kill's temporary file may be here: the stage may remove it, nothing else.
        before = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix != ".tmp"}
        command = ["python", "-m", package_of(root), "preprocess"]
        env = {**os.environ, "PYTHONPATH": str(root / "src")}
        done = subprocess.run(
            command, cwd=root, env=env, capture_output=True, text=True,
            preexec_fn=limit_file_size if fault == "file too large" else None,
        )  # fmt: skip
        after = {p.name: p.read_bytes() for p in folder.iterdir()}
    finally:
        if fault == "no space left on device":
            subprocess.run(["umount", str(folder)], check=True)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"error: {fault} writing {PROCESSED}/train.parquet (needs more than 4 KB, "
    ), last
    assert "free in data/processed): " in last
    assert after == before
    assert_recovered(root)


def queue_status(root: Path, timeout: float) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = run(root, "dvc", "queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            return status
        time.sleep(1)
    pytest.fail(f"queue still busy after {timeout} s:\n{status}")


def test_a_failing_experiment_does_not_stop_the_others_in_a_parallel_queue(project):
    """Three queued experiments on two workers; one names a target column the data lacks,
    which only the clean stage can tell. The other two finish with metrics; the failed
    one is reported failed, its log ending with our one-line error."""
    root = project
    # The good ones rerun train onwards with the fastest model, named: a hyperparameter
    # override needs its model in the same command (the default, auto, has none).
    linear = ("-S", "model=logistic_regression", "-S")
    experiments = {
        "exp-weak-c": (*linear, "model.C=0.1"),
        "exp-bad-target": ("-S", "data.target=no_such_column"),
        "exp-strong-c": (*linear, "model.C=10"),
    }
    for name, overrides in experiments.items():
        run(root, "dvc", "exp", "run", "--queue", "-n", name, *overrides)
    run(root, "dvc", "queue", "start", "-j", "2")
    status = queue_status(root, timeout=300)
    tasks = status.split("\n\n")[0].splitlines()[1:]  # then a blank line, and the workers
    rows = {line.split()[1]: line.split()[-1] for line in tasks}
    assert rows == {"exp-weak-c": "Success", "exp-bad-target": "Failed",
                    "exp-strong-c": "Success"}, status  # fmt: skip

    revisions = {
        rev["name"]: rev
        for baseline in json.loads(run(root, "dvc", "exp", "show", "--json").stdout)
        for exp in baseline.get("experiments") or []
        for rev in exp["revs"]
    }
    assert set(revisions) == set(experiments)
    assert revisions["exp-bad-target"]["error"]["msg"] == "Experiment run failed"
    metrics = {
        name: revisions[name]["data"]["metrics"]["reports/evaluate/metrics.json"]["data"]
        for name in ("exp-weak-c", "exp-strong-c")
    }
    assert metrics["exp-weak-c"]["log_loss"] != metrics["exp-strong-c"]["log_loss"]

    log = run(root, "dvc", "queue", "logs", "exp-bad-target").stdout
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: target column 'no_such_column' is not in the data (columns: species, island, "
        "bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, sex, year): set "
        "data.target to one of them"
    ], log[-3000:]
    assert git(root, "status", "--porcelain") == ""
