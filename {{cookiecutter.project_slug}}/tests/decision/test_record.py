"""record.py: what a decision records, the reviewer's markdown, file names, byte-identical
JSON for the same inputs, and damaged records refused in one line."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.core.params import load_service
from {{ cookiecutter.package_name }}.decision import decide, evidence
from {{ cookiecutter.package_name }}.decision import record as records

ARTIFACT = "toy-model"  # conftest's
TIME = records.stamp(dt.datetime(2026, 12, 6, 23, 30, tzinfo=dt.UTC))


@pytest.fixture
def recorded(repo):
    """(root, commits, the record of the workspace's model against prod)."""
    root, commits = repo
    policy = load_service(root / "service.yaml").gate
    new = evidence.resolve_challenger(root, ARTIFACT, None)
    old = evidence.resolve_champion(root, ARTIFACT, None)
    return root, commits, decide.judged(root, new, old, policy, TIME)


def test_the_record_holds_both_sides_the_policy_and_every_gate(recorded):
    root, commits, record = recorded
    assert TIME == "20261206T233000Z" and record["time"] == TIME
    assert record["challenger"]["revision"] == commits["challenger"]
    assert record["champion"]["revision"] == commits["champion"]
    for side in ("challenger", "champion"):
        facts = record[side]
        assert {"model_md5", "manifest_md5", "train_md5", "test_md5", "version"} <= set(facts)
    assert record["policy"] == load_service(root / "service.yaml").gate.model_dump()
    assert len(record["policy_sha256"]) == 64
    assert {g["name"] for g in record["gates"]} >= {"rows", "headline", "business", "baseline"}
    assert record["rows"] == {"scored": record["gates"][0]["value"], "excluded": 0}
    # JSON as written: sorted keys, so the same inputs give the same bytes.
    assert json.loads(records.text(record)) == record


def test_the_same_inputs_give_the_same_bytes(recorded):
    root, _, record = recorded
    policy = load_service(root / "service.yaml").gate
    new = evidence.resolve_challenger(root, ARTIFACT, None)
    old = evidence.resolve_champion(root, ARTIFACT, None)
    assert records.text(decide.judged(root, new, old, policy, TIME)) == records.text(record)


def test_the_markdown_gives_the_verdict_each_gate_both_versions_and_hashes(recorded):
    root, commits, record = recorded
    json_path, md_path = records.write(root, record)
    assert json_path.name == f"{TIME}-{commits['challenger'][:7]}.json"
    assert md_path.with_suffix(".json") == json_path
    text = (root / md_path).read_text()
    assert text.startswith(f"# Decision {TIME}: {record['verdict']}\n")
    for gate in record["gates"]:
        assert f"| {gate['name']} | " in text and gate["outcome"] in text
    for side in ("challenger", "champion"):
        assert record[side]["model_md5"] in text and record[side]["test_md5"] in text
    assert "version v0.0.1" in text and record["policy_sha256"] in text


def test_gate_lines_say_value_threshold_and_outcome():
    record = {
        "gates": [
            {
                "name": "headline",
                "value": 0.0123456789,
                "threshold": 0.0,
                "outcome": "pass",
                "detail": "lower end >= 0",
            },
            {
                "name": "recent",
                "value": None,
                "threshold": None,
                "outcome": "n/a",
                "detail": "no data.time",
            },
        ]
    }
    assert records.gate_lines(record) == [
        "pass  headline: value 0.0123457, threshold 0: lower end >= 0",
        " n/a  recent: value -, threshold -: no data.time",
    ]


def test_keys_of_a_value_matrix_are_text():
    assert records._text_keys({0: {1: 2.0}, "a": 1}) == {"0": {"1": 2.0}, "a": 1}


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", '{"verdict": "PROMOTE"}', '{"format": 99}', "\udcff"],
)
def test_a_damaged_record_is_refused_in_one_line(tmp_path, content):
    path = tmp_path / "d.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(
        DataError, match=r"d.json is damaged .*restore it from git .`git checkout -- "
    ):
        records.read(path)


def test_an_uncommitted_challenger_cannot_be_replayed(tmp_path):
    facts = {
        "asked": "workspace",
        "label": "workspace (uncommitted)",
        "revision": None,
        "version": None,
        "stage": None,
    }
    with pytest.raises(DataError, match="uncommitted workspace, which no commit holds"):
        records.named(facts, "challenger", tmp_path / "d.json")
    with pytest.raises(DataError, match="its champion lacks fields"):
        records.named({"revision": "abc"}, "champion", tmp_path / "d.json")


def test_the_first_difference_names_the_line():
    assert records.first_difference("a\nb\n", "a\nb\n") is None
    assert records.first_difference("a\nb\n", "a\nc\n") == "line 2: recorded b / replayed c"
    assert records.first_difference("a\n", "a\nb\n").startswith("line 2: one text ends there")
