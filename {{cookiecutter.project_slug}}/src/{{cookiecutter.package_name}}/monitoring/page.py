"""reports/monitor.html: the live report and the drift report as charts, drawn offline.

The page is plots/offline_template.html (the one `dvc plots show` uses, with Vega,
Vega-Lite and vega-embed inlined) with one div per chart in place of its plot-divs
placeholder, each a Vega-Lite spec and the vegaEmbed call that draws it: no network. A
chart without data is left out, so every chart drawn has marks.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core import io
from ..core.errors import DataError
from ..quality import diagnosis

TEMPLATE = Path("plots/offline_template.html")
PLACEHOLDER = "{plot_divs}"
SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
WIDTH = 480


def _chart(title: str, rows: list[dict], spec: dict) -> dict:
    return {"$schema": SCHEMA, "title": title, "width": WIDTH, "data": {"values": rows}, **spec}


def metric_chart(report: dict) -> dict | None:
    """The live metric per window: the realised one (labelled rows) and CBPE's estimate."""
    rows = []
    for n, window in enumerate(report["windows"]["list"], start=1):
        if window["metric"]["value"] is not None:
            rows.append({"window": n, "to": window["to"], "value": window["metric"]["value"],
                         "series": "realised (labels)"})  # fmt: skip
        estimate = window["estimate"]
        if estimate.get("value") is not None:
            rows.append({"window": n, "to": window["to"], "value": estimate["value"],
                         "series": "estimate (CBPE, no labels)"})  # fmt: skip
    if not rows:
        return None
    encoding = {
        "x": {"field": "window", "type": "ordinal", "title": "window (time order)"},
        "y": {"field": "value", "type": "quantitative", "title": report["metric"],
              "scale": {"zero": False}},
        "color": {"field": "series", "type": "nominal", "title": None},
        "tooltip": [{"field": "to", "title": "last row"}, {"field": "value"}],
    }  # fmt: skip
    spec = {"mark": {"type": "line", "point": True}, "encoding": encoding}
    return _chart(f"Live {report['metric']} per window", rows, spec)


def group_charts(report: dict) -> list[dict]:
    """Per data.groups column, each group's metric per window (a line per group)."""
    metric = diagnosis.GAP_METRIC[report["task"]]
    columns: dict[str, list[dict]] = {}
    for n, window in enumerate(report["windows"]["list"], start=1):
        for column, values in window["per_group"].items():
            for value, entry in values.items():
                point = {"window": n, "group": value, **entry}
                columns.setdefault(column, []).append(point)
    encoding = {
        "x": {"field": "window", "type": "ordinal", "title": "window (time order)"},
        "y": {"field": "value", "type": "quantitative", "title": metric, "scale": {"zero": False}},
        "color": {"field": "group", "type": "nominal"},
        "tooltip": [{"field": "group"}, {"field": "value"}, {"field": "rows"}],
    }
    spec = {"mark": {"type": "line", "point": True}, "encoding": encoding}
    return [
        _chart(f"Live {metric} per {column}, per window", rows, spec)
        for column, rows in columns.items()
    ]


def drift_chart(drift: dict) -> dict | None:
    """PSI per feature, the threshold as a rule."""
    features = drift["features"].items()
    rows = [{"feature": f, "psi": r["psi"], "drift": r["drift"]} for f, r in features]
    if not rows:
        return None
    bars = {
        "mark": "bar",
        "encoding": {
            "x": {"field": "psi", "type": "quantitative", "title": "PSI"},
            "y": {"field": "feature", "type": "nominal", "sort": "-x"},
            "color": {"field": "drift", "type": "nominal"},
            "tooltip": [{"field": "feature"}, {"field": "psi"}],
        },
    }
    threshold = {
        "data": {"values": [{"psi": drift["thresholds"]["psi_threshold"]}]},
        "mark": {"type": "rule", "strokeDash": [4, 4]},
        "encoding": {"x": {"field": "psi", "type": "quantitative"}},
    }
    chart = _chart("Input drift (PSI) per feature", rows, {"layer": [bars, threshold]})
    return chart


def _div(n: int, spec: dict) -> str:
    # "</" inside a script would end it: JSON allows the escaped slash.
    text = json.dumps(spec, sort_keys=True).replace("</", "<\\/")
    return (
        f'<div id="chart-{n}"><script type="text/javascript">'
        f"vegaEmbed('#chart-{n}', {text});</script></div>"
    )


def page(live: dict, drift: dict, template: str) -> str:
    """The page's HTML: the template with the charts that have data."""
    charts = [metric_chart(live), *group_charts(live), drift_chart(drift)]
    divs = "\n".join(_div(n, c) for n, c in enumerate(c for c in charts if c is not None))
    return template.replace(PLACEHOLDER, divs)


def write(path: Path, live: dict, drift: dict) -> None:
    """The page, written atomically."""
    if not TEMPLATE.is_file():
        raise DataError(
            f"{TEMPLATE} is missing, the page's offline Vega: restore it from git "
            f"(`git checkout -- {TEMPLATE}`)"
        )
    io.write_text(path, page(live, drift, TEMPLATE.read_text(encoding="utf-8")))
