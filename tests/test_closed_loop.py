"""The closed loop end to end (issue 22, 4a-e), on seeded streams (tests/streams.py), with
the bake's own commands: add-batch, `dvc exp run`, `decide [--apply]`, `gto show`, `serve`,
`loop`. Baked projects are the baselines, each with its first model in prod: the
penguins, and the synthetic churn stream (one per class, so that the classes can run on
different xdist workers). Each scenario works in its own `git clone` of one (the same DVC
cache), so the tags one moves are not another's; each prints its seconds.
Scenario e (replay) replays d's applied decision; f (the property) is in the bake's
tests/decision/test_gates.py."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import streams
import yaml
from conftest import BIN, bake, git, package_of, run
from test_serving import Server

pytestmark = pytest.mark.slow

EXIT = {"PROMOTE": 0, "HOLD": 3, "REJECT": 4}
# Scenario d's policy on business value: the headline may lose up to 0.05 (and as much on
# the recent slice) when business_value gains at least 0.02 beyond doubt.
BUSINESS_POLICY = {"min_improvement": -0.05, "min_business_change": 0.02, "max_recent_drop": 0.1}


def python(root: Path, *args: str, check: bool = True):
    return run(root, str(BIN / "python"), "-m", package_of(root), *args, check=check)


def commit_and_deploy(root: Path, message: str) -> None:
    """Commit the first run and put its model in prod, as docs/reality-loop.md deploys."""
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    artifact = f"{root.name}-model"
    run(root, "gto", "register", artifact)
    run(root, "gto", "assign", artifact, "--stage", "prod")


def stream_project(parent: Path) -> Path:
    """A bake whose data is the synthetic stream's first 2,000 rows (data/stream, a DVC-
    tracked batch folder), missing a churn costing 10 (business.value_matrix)."""
    root = bake(parent, project_name="Loop Stream")
    (root / "conf/data/stream.yaml").write_text(streams.STREAM_DATA)
    streams.write(streams.synthetic(2000, seed=1), root / "data/stream/first.csv")
    config = root / "conf/config.yaml"
    text = config.read_text().replace("  - data: penguins\n", "  - data: stream\n")
    matrix = f"  value_matrix: {{{streams.RARE}: {{{streams.COMMON}: -10.0}}}}\n"
    config.write_text(text.replace("  value_matrix: {}\n", matrix))
    python(root, "params")
    run(root, "dvc", "add", "-q", "data/stream")
    run(root, "dvc", "repro")
    return root


# Class-scoped: each class below makes the baseline it needs, so xdist (--dist
# loadscope) can run the classes on different workers.
@pytest.fixture(scope="class")
def penguins_base(tmp_path_factory) -> Path:
    penguins = bake(tmp_path_factory.mktemp("bases"), project_name="Loop Penguins")
    run(penguins, "dvc", "repro")
    commit_and_deploy(penguins, "First pipeline run")
    return penguins


@pytest.fixture(scope="class")
def stream_base(tmp_path_factory) -> Path:
    stream = stream_project(tmp_path_factory.mktemp("bases"))
    commit_and_deploy(stream, "First pipeline run: the churn stream")
    return stream


def clone(base: Path, where: Path) -> Path:
    """A clone of `base` (tags included) sharing its DVC cache, its outputs checked out,
    committing as `base` does."""
    root = where / base.name
    run(where, "git", "clone", "-q", str(base), str(root))
    for key in ("user.name", "user.email"):  # the bake's hook set them in its repository
        git(root, "config", key, git(base, "config", key))
    run(root, "dvc", "cache", "dir", "--local", str(base / ".dvc/cache"))
    run(root, "dvc", "checkout", "-q")
    return root


def decide(root: Path, *args: str) -> tuple[int, dict, str]:
    """`decide` with `args`: its exit status, the decision it wrote, what it printed."""
    done = python(root, "decide", *args, check=False)
    assert done.returncode in EXIT.values(), done.stdout + done.stderr
    written = sorted((root / "decisions").glob("*.json"))
    return done.returncode, json.loads(written[-1].read_text()), done.stdout


def prod_version(root: Path) -> str | None:
    shown = json.loads(run(root, "gto", "show", "--json").stdout)
    versions = shown[f"{root.name}-model"]["stage"] if shown else {}
    return (versions or {}).get("prod")


def gates(record: dict) -> dict[str, dict]:
    return {gate["name"]: gate for gate in record["gates"]}


def set_policy(root: Path, section: str, **changes) -> None:
    service = root / "service.yaml"
    settings = yaml.safe_load(service.read_text())
    settings[section].update(changes)
    service.write_text(yaml.safe_dump(settings, sort_keys=False))


def challenger(root: Path, name: str, *overrides: str) -> None:
    """Experiment `name` trained outside the workspace (`--temp`, as `loop` runs it), so
    the workspace stays the commit that `decide --apply` adds its decision to."""
    values = [arg for value in overrides for arg in ("-S", value)]
    run(root, "dvc", "exp", "run", "--temp", "-n", name, *values)


def challenge(root: Path, batch, name: str) -> None:
    """A new batch added as the docs say and committed, and the challenger trained on it."""
    path = streams.write(batch, root.parent / f"{name}.csv")
    python(root, "add-batch", str(path))
    git(root, "add", "-A")
    git(root, "commit", "-qm", f"batch {name}")
    challenger(root, name)


@pytest.fixture(scope="class")
def promoted(stream_base, tmp_path_factory) -> SimpleNamespace:
    """Scenario a's clone: a drifted batch, its challenger promoted by `decide --apply`
    (v1 in prod before, v2 after); the rollback drill goes on from there."""
    started = time.perf_counter()
    root = clone(stream_base, tmp_path_factory.mktemp("promoted"))
    new = streams.synthetic(3000, seed=2, region="new", first_day="2026-03-01")
    challenge(root, new, "drifted")
    before = prod_version(root)
    status, record, printed = decide(root, "--challenger", "drifted", "--apply")
    return SimpleNamespace(
        root=root, before=before, status=status, record=record, printed=printed,
        seconds=time.perf_counter() - started,
    )  # fmt: skip


def plant_wrong_labels(root: Path, rows, answer: dict) -> None:
    """Labels that arrive later for every answered row, wrong for the wholesale segment
    (the answer's opposite), true for the others: appended to serve.feedback_log as
    `feedback` appends them (one JSON line per id)."""
    other = {streams.RARE: streams.COMMON, streams.COMMON: streams.RARE}
    lines = []
    for id_, segment, truth, predicted in zip(
        answer["ids"], rows["segment"], rows["outcome"], answer["predictions"], strict=True
    ):
        label = other[predicted] if segment == "wholesale" else truth
        lines.append(json.dumps({"id": id_, "label": label, "time": "2026-04-30T00:00:00Z"}))
    feedback = root / "logs/feedback.jsonl"
    feedback.write_text("\n".join(lines) + "\n")


def logged_rows(root: Path) -> int:
    path = root / "logs/predictions.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_until(done, what: str, seconds: float = 60) -> None:
    """Poll `done` every 0.1 s, for up to `seconds`."""
    started = time.perf_counter()
    while not done():
        assert time.perf_counter() - started < seconds, f"waited {seconds} s for {what}"
        time.sleep(0.1)


def act(root: Path) -> dict[str, float]:
    """`monitor --act`, each line of its output timed: when it started and when it printed
    the alert's verdict and the rollback (time.perf_counter)."""
    command = [str(BIN / "python"), "-m", package_of(root), "monitor", "--act"]
    timeline, output = {"start": time.perf_counter()}, []
    process = subprocess.Popen(
        command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(root / "src")},
    )  # fmt: skip
    for line in process.stdout:
        output.append(line)
        for key in ("alert", "rollback"):
            if line.startswith(f"{key}: "):
                timeline[key] = time.perf_counter()
    assert process.wait() == 0 and {"alert", "rollback"} <= set(timeline), "".join(output)
    return timeline


class VersionWatch(threading.Thread):
    """Asks GET /metadata every 50 ms, for up to 60 s, until it names `version`; `seen`
    then holds when ({"served": time.perf_counter()})."""

    def __init__(self, client: httpx.Client, version: str) -> None:
        super().__init__(daemon=True)
        self.base_url, self.headers, self.version = client.base_url, client.headers, version
        self.seen: dict[str, float] = {}
        self.start()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, headers=self.headers) as own:
            deadline = time.perf_counter() + 60
            while time.perf_counter() < deadline:
                if own.get("/metadata").json()["version"] == self.version:
                    self.seen["served"] = time.perf_counter()
                    return
                time.sleep(0.05)


class TestPromotion:
    def test_a_drift_and_a_better_challenger_is_promoted_and_served(self, promoted):
        started = time.perf_counter() - promoted.seconds
        root, before, record, printed = (
            promoted.root, promoted.before, promoted.record, promoted.printed
        )  # fmt: skip
        status = promoted.status
        assert (record["verdict"], status) == ("PROMOTE", 0), printed
        assert all(g["outcome"] in ("pass", "n/a") for g in record["gates"]), printed
        headline = gates(record)["headline"]
        assert headline["value"] > 0.5, headline  # the interval's lower end
        after = prod_version(root)
        assert after != before and after is not None
        assert git(root, "log", "-1", "--format=%s").startswith("decide: PROMOTE")
        with Server(root, package_of(root)) as client:
            assert client.get("/metadata").json()["version"] == after
        print(f"\nscenario a: {record['verdict']} in {time.perf_counter() - started:.1f} s")
        print(printed)

    def test_the_rollback_drill_wrong_labels_for_one_group_roll_prod_back_and_the_server_follows(
        self, promoted
    ):
        """Issue 23's drill: v2 serves with serve.reload_seconds 1; labels planted wrong for
        the wholesale segment breach the alert in 2 of the last 3 windows; `monitor --act`
        commits the rollback and puts v1 back in prod; the running server answers with v1."""
        started = time.perf_counter()
        root, v1 = promoted.root, promoted.before
        v2 = prod_version(root)
        assert v2 != v1, promoted.printed
        set_policy(root, "serve", reload_seconds=1)
        # A floor the headline keeps even with the planted labels: the group gap acts.
        set_policy(root, "alert", min_metric=-2.0)
        git(root, "commit", "-qam", "serve: follow the stage every second")
        rows = streams.synthetic(300, seed=7, region="new", first_day="2026-04-01")
        with Server(root, package_of(root)) as client:
            sent = rows.drop(columns=["outcome"]).to_dict(orient="records")
            answer = client.post("/predict", json={"instances": sent}).json()
            assert answer["model"]["version"] == v2, answer["model"]
            plant_wrong_labels(root, rows, answer)
            wait_until(lambda: logged_rows(root) >= len(rows), "the log to hold the rows")
            watcher = VersionWatch(client, v1)
            timeline = act(root)
            watcher.join(timeout=60)
            again = client.post("/predict", json={"instances": sent[:1]}).json()
        assert "served" in timeline | watcher.seen, "the server did not swap in 60 s"
        assert again["model"]["version"] == v1, again["model"]
        assert prod_version(root) == v1
        subject = git(root, "log", "-1", "--format=%s")
        assert subject.startswith(f"rollback: prod {v2} -> {v1}"), subject
        (path,) = git(root, "show", "--name-only", "--format=", "HEAD", "--", "*.json").split()
        record = json.loads((root / path).read_text())
        assert record["kind"] == "rollback" and record["alert"]["breached"] >= 2, record
        assert "segment gap" in record["breach"], record["breach"]
        at = {key: when - timeline["start"] for key, when in (timeline | watcher.seen).items()}
        print(f"\nrollback drill ({time.perf_counter() - started:.1f} s): {record['breach']}")
        print(
            f"timeline: monitor --act started 0.0 s -> breach detected {at['alert']:.1f} s -> "
            f"rollback committed, prod assigned {at['rollback']:.1f} s -> served version "
            f"changed {at['served']:.1f} s ({at['served'] - at['rollback']:.1f} s after the "
            "commit; serve.reload_seconds 1)"
        )

    def test_d_a_policy_on_business_value_promotes_what_the_headline_would_not_e_replay(
        self, stream_base, tmp_path
    ):
        started = time.perf_counter()
        root = clone(stream_base, tmp_path)
        challenger(root, "balanced", "model=logistic_regression", "model.class_weight=balanced")
        status, headline_only, printed = decide(root, "--challenger", "balanced")
        assert headline_only["verdict"] != "PROMOTE" and status != 0, printed
        assert gates(headline_only)["headline"]["outcome"] in ("hold", "fail"), printed
        set_policy(root, "gate", **BUSINESS_POLICY)
        git(root, "commit", "-qam", "gate: a policy on business value")
        status, on_value, printed_value = decide(root, "--challenger", "balanced", "--apply")
        assert (on_value["verdict"], status) == ("PROMOTE", 0), printed_value
        business = gates(on_value)["business"]
        assert business["outcome"] == "pass" and business["value"] >= 0.02, business
        seconds = time.perf_counter() - started
        # e: the applied decision, recomputed from the revisions and policy it records.
        (path,) = [
            p for p in (root / "decisions").glob("*.json") if p.name in git(root, "ls-files")
        ]
        kept = path.read_bytes()
        replayed = python(root, "decide", "--replay", str(path.relative_to(root)), check=False)
        assert replayed.returncode == status, replayed.stdout + replayed.stderr
        assert "byte for byte" in replayed.stdout and path.read_bytes() == kept
        print(f"\nscenario e: {on_value['verdict']} replayed in "
              f"{time.perf_counter() - started - seconds:.1f} s\n{replayed.stdout}")  # fmt: skip
        print(f"\nscenario d: {headline_only['verdict']} by the headline, "
              f"{on_value['verdict']} on business value, "
              f"in {seconds:.1f} s")  # fmt: skip
        print(printed, printed_value, sep="\n")


class TestRejectionAndTheLoop:
    def test_b_a_wider_group_gap_is_rejected_naming_the_group(self, stream_base, tmp_path):
        started = time.perf_counter()
        root = clone(stream_base, tmp_path)
        noisy = streams.synthetic(
            3000, seed=2, region="new", first_day="2026-03-01", noisy_segment="wholesale"
        )
        challenge(root, noisy, "noisy")
        before = prod_version(root)
        status, record, printed = decide(root, "--challenger", "noisy", "--apply")
        assert (record["verdict"], status) == ("REJECT", 4), printed
        found = gates(record)
        assert found["headline"]["outcome"] == "pass", printed
        gap = found["group_gap:segment"]
        assert gap["outcome"] == "fail" and gap["value"] > 0.05, gap
        failed = {g["name"] for g in record["gates"] if g["outcome"] == "fail"}
        assert failed == {"group_gap:segment"}, printed
        markdown = sorted((root / "decisions").glob("*.md"))[-1].read_text()
        assert "segment" in markdown and f"{gap['value']:.3f}"[:4] in markdown, markdown
        assert prod_version(root) == before
        print(f"\nscenario b: {record['verdict']} in {time.perf_counter() - started:.1f} s")
        print(printed)

    def test_loop_fires_on_drift_in_k_of_n_windows_and_records_quiet_ones(
        self, stream_base, tmp_path
    ):
        started = time.perf_counter()
        root = clone(stream_base, tmp_path)
        set_policy(root, "loop", min_drifted_features=1)
        git(root, "commit", "-qam", "loop: one drifted feature breaches")
        quiet = streams.synthetic(300, seed=4, first_day="2026-02-01", days=5)
        drifted = streams.synthetic(600, seed=5, region="new", first_day="2026-03-01", days=10)
        with Server(root, package_of(root)) as client:
            for batch in (quiet, drifted):
                rows = batch.to_dict(orient="records")  # the outcome rides along: the label
                assert client.post("/predict", json={"instances": rows}).status_code == 200
        turns = []
        for now in ("2026-02-10T00:00:00Z", "2026-03-06T00:00:00Z", "2026-03-12T00:00:00Z"):
            done = python(root, "loop", "--now", now, check=False)
            turns.append((done.returncode, done.stdout + done.stderr))
            assert done.returncode in (0, *EXIT.values()), done.stdout + done.stderr
        lines = [
            json.loads(line) for line in (root / "decisions/loop.jsonl").read_text().splitlines()
        ]
        assert len(lines) == 3, lines
        print(f"\nloop: {len(lines)} turns in {time.perf_counter() - started:.1f} s")
        for line in lines:
            print(json.dumps(line)[:400])
        messages = git(root, "log", "--format=%s").splitlines()
        assert any("no trigger" in m for m in messages), messages
        fired = lines[-1]
        assert fired["trigger"] and fired["experiment"].startswith("loop-"), fired
        decided = json.loads(sorted((root / "decisions").glob("*.json"))[-1].read_text())
        assert fired["verdict"] == decided["verdict"], (fired, decided["verdict"])
        assert [line["breach"] for line in lines] == [False, True, True], lines


class TestTooFewRows:
    def test_c_too_few_rows_hold(self, penguins_base, tmp_path):
        started = time.perf_counter()
        root = clone(penguins_base, tmp_path)
        few = streams.penguins(root, 12, seed=3, year=2010, heavier=1.0)
        challenge(root, few, "few")
        before = prod_version(root)
        status, record, printed = decide(root, "--challenger", "few", "--apply")
        assert (record["verdict"], status) == ("HOLD", 3), printed
        outcomes = {g["outcome"] for g in record["gates"]}
        assert "fail" not in outcomes and "hold" in outcomes, printed
        held = [g["detail"] for g in record["gates"] if g["outcome"] == "hold"]
        assert any("rows" in detail for detail in held), held
        assert prod_version(root) == before
        print(f"\nscenario c: {record['verdict']} in {time.perf_counter() - started:.1f} s")
        print(printed)
