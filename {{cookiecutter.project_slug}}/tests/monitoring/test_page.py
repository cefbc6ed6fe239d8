"""The monitor page: the offline template with one chart per figure that has data."""

from __future__ import annotations

import json
import re

import pytest

from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.monitoring import page

TEMPLATE = "<html><head><script>vega</script></head><body>\n{plot_divs}\n</body></html>"


def window(value, estimate, groups: dict) -> dict:
    return {
        "to": "2026-03-01T12:00:00+00:00",
        "metric": {"name": "accuracy", "value": value},
        "estimate": {"estimate": True, "value": estimate},
        "per_group": groups,
    }


LIVE = {
    "task": "classification",
    "metric": "accuracy",
    "windows": {
        "list": [
            window(0.9, 0.88, {"color": {"red": {"value": 0.9, "rows": 30}}}),
            window(None, 0.7, {}),
        ]
    },
}
DRIFT = {
    "thresholds": {"psi_threshold": 0.2},
    "features": {"x": {"psi": 0.5, "drift": True}, "c</script>": {"psi": 0.01, "drift": False}},
}


def specs(html: str) -> list[dict]:
    return [json.loads(s) for s in re.findall(r"vegaEmbed\('#chart-\d+', (.*?)\);</script>", html)]


def test_each_figure_with_data_is_a_chart_in_the_template():
    html = page.page(LIVE, DRIFT, TEMPLATE)
    assert html.startswith("<html><head><script>vega</script>") and "{plot_divs}" not in html
    charts = specs(html)
    assert [c["title"] for c in charts] == [
        "Live accuracy per window",
        "Live balanced_accuracy per color, per window",
        "Input drift (PSI) per feature",
    ]
    # The realised metric where labels were enough, the estimate in every window.
    series = [(r["window"], r["series"]) for r in charts[0]["data"]["values"]]
    assert series == [
        (1, "realised (labels)"),
        (1, "estimate (CBPE, no labels)"),
        (2, "estimate (CBPE, no labels)"),
    ]
    # A feature named like a closing tag cannot end the script early.
    assert "c</script>" not in html and "c<\\/script>" in html


def test_a_chart_without_data_is_left_out():
    empty = {**LIVE, "windows": {"list": [window(None, None, {})]}}
    html = page.page(empty, {**DRIFT, "features": {}}, TEMPLATE)
    assert specs(html) == []


def test_a_missing_template_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"^plots/offline_template.html is missing, .*git checkout"):
        page.write(tmp_path / "reports/monitor.html", LIVE, DRIFT)
    assert not (tmp_path / "reports").exists()
