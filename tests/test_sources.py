"""A remote source in a baked project, served over loopback HTTP (no cloud is reachable
here; s3://, gs:// and azure:// take the same fsspec path): the `fetch` stage snapshots it,
an unchanged remote reruns nothing downstream, a changed one reruns ingest."""

from __future__ import annotations

import http.server
import threading
from functools import partial

import pandas as pd
import pytest
from conftest import STAGES, bake, ran, run

pytestmark = pytest.mark.slow


def ran_with_fetch(log: str) -> list[str]:
    return ran(log, ["fetch@web", *STAGES])


@pytest.fixture
def served(tmp_path):
    """tmp_path/www over HTTP on a free loopback port; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_source_is_fetched_and_reruns_only_on_change(tmp_path, served):
    www, base = served
    root = bake(tmp_path / "bake", project_name="Remote Loop")
    penguins = pd.concat(pd.read_csv(p) for p in sorted((root / "data/raw").glob("*.csv")))
    penguins.to_csv(www / "penguins.csv", index=False)
    overrides = ["-S", "data.source=data/fetched", "-S", f"+data.fetch.web.url={base}/penguins.csv"]

    log = run(root, "dvc", "exp", "run", *overrides).stdout
    assert ran_with_fetch(log) == ["fetch@web", *STAGES], log
    snapshot = pd.read_parquet(root / "data/fetched/web.parquet")
    assert len(snapshot) == len(penguins)
    ingested = pd.read_parquet(root / "data/interim/ingested.parquet")
    assert set(ingested["batch"]) == {"web"}
    assert pd.api.types.is_datetime64_any_dtype(ingested["year"])

    # The remote did not change: the snapshot is byte-identical, so nothing downstream runs.
    log = run(root, "dvc", "exp", "run", *overrides).stdout
    assert ran_with_fetch(log) == ["fetch@web"], log
    assert "Stage 'ingest' didn't change, skipping" in log

    # The remote changed: ingest (and so what follows) is out of date.
    penguins.iloc[:-5].to_csv(www / "penguins.csv", index=False)
    run(root, "dvc", "repro", "--single-item", "fetch@web")
    status = run(root, "dvc", "status", "ingest").stdout
    assert "changed deps" in status and "data/fetched" in status

    # An unreachable remote stops the run with one line naming the fix.
    www.joinpath("penguins.csv").unlink()
    done = run(root, "dvc", "repro", "--single-item", "fetch@web", check=False)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "404" in errors[0] and "check the URL" in errors[0], done.stderr
