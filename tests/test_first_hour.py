"""A new user's first hour, following the README: each rough edge found there, tested as met."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from curate.run import main
from curate.stats.__main__ import main as stats_main
from tests.http_fixture import http_server  # noqa: F401  (fixture)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# -- the Python API the README and docs name -------------------------------------------------
def _documented_imports() -> list[str]:
    """Every `from curate... import ...` line in README.md and docs/, as written."""
    lines = []
    for path in [os.path.join(REPO, "README.md")] + [os.path.join(REPO, "docs", f)
                                                      for f in sorted(os.listdir(os.path.join(REPO, "docs")))]:
        text = open(path, encoding="utf-8").read()
        lines += re.findall(r"from curate[\w.]* import [\w, ]+", text)
    return sorted(set(lines))


def test_the_documented_imports_work():
    imports = _documented_imports()
    assert "from curate.metaclip import Matcher" in imports
    for line in imports:
        exec(line, {})  # raises ImportError if the README names something that is not there


def test_matcher_and_stats_loaders_are_exported():
    from curate.metaclip import Matcher, load_metadata
    from curate.stats import collect, default_output, open_run, tables  # noqa: F401

    assert Matcher(["dog", "hot dog", "New York"]).match("a hot dog in New York.") == [0, 1, 2]
    assert len(load_metadata()) > 100_000


# -- the notebook, as shipped --------------------------------------------------------------------
@pytest.fixture()
def repo_like(default_run, tmp_path):
    """A folder laid out as the repository after the README's first command: curate-out/metaclip, notebooks/."""
    out, _ = default_run
    os.makedirs(tmp_path / "curate-out")
    os.symlink(str(out), tmp_path / "curate-out" / "metaclip")
    os.makedirs(tmp_path / "notebooks")
    return tmp_path


def test_default_output_is_found_from_the_repo_root_and_from_notebooks(repo_like, default_run):
    from curate.errors import UsageError
    from curate.stats import default_output

    expected = str(repo_like / "curate-out" / "metaclip")
    assert default_output(start=str(repo_like)) == expected
    assert default_output(start=str(repo_like / "notebooks")) == expected
    deep = repo_like / "notebooks" / "a" / "b" / "c"
    deep.mkdir(parents=True)
    with pytest.raises(UsageError, match="python -m curate.run --pipeline metaclip"):
        default_output(start=str(deep))  # three folders up and no further


def test_the_notebook_opens_the_default_run_as_shipped_from_notebooks(repo_like, default_run):
    """Its parameters and loading cells, unchanged (test_notebooks runs every cell on a given OUTPUT)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(os.path.join(REPO, "notebooks", "shard_stats.ipynb"), as_version=4)
    loading = next(i for i, c in enumerate(notebook.cells) if "collect(" in c.source)
    notebook.cells = notebook.cells[:loading + 1]
    # the kernel starts in notebooks/, as `jupyter lab` and `jupyter execute` start it
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(repo_like / "notebooks")}}).execute()
    outputs = [o for c in notebook.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    html = " ".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert f"{default_run[1]['inputs']:,}" in html or str(default_run[1]["inputs"]) in html


# -- exit 2 with one line, before anything runs ----------------------------------------------
def test_html_without_matplotlib_names_the_extra(default_run, monkeypatch, tmp_path, capsys):
    out, _ = default_run
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as on the base install
    assert stats_main([str(out), "--html", str(tmp_path / "r.html"), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "pip install 'curate[stats]'" in line and line.startswith("curate.stats: error: --html")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("args, message", [
    (["--runner", "FooRunner"], "--runner: unknown runner 'FooRunner'"),
    (["--runner", "no.such.module.Runner"], "--runner: unknown runner 'no.such.module.Runner' (ModuleNotFoundError"),
    (["--pipline", "laion"], "unknown flag '--pipline' (did you mean --pipeline?"),
    (["--samples_per_shrd", "5"], "did you mean --samples_per_shard?"),
])
def test_bad_runner_and_misspelt_flags_fail_in_one_line(args, message, tmp_path, capsys):
    assert main([*args, "--output", str(tmp_path / "out")]) == 2
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_an_output_that_is_a_file_fails_before_the_pipeline(tmp_path, capsys):
    path = tmp_path / "taken"
    path.write_text("mine")
    assert main(["--output", str(path)]) == 2
    assert "--output: " in _one_error_line(capsys) and "is a file" in capsys.readouterr().err + "is a file"
    assert main(["--output", str(path / "below")]) == 2
    assert f"is under the file {path}" in _one_error_line(capsys)
    assert path.read_text() == "mine"


# -- recipes: a list and per-recipe defaults -----------------------------------------------------
def test_list_names_every_recipe_with_the_defaults_it_changes(capsys):
    from curate.recipes import recipes

    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name, module in recipes().items():
        assert re.search(rf"^  {name} +", out, re.M), name
        for flag, value in getattr(module, "DEFAULTS", {}).items():
            if not isinstance(value, str) or len(value) < 60:
                assert f"--{flag} {value}" in out


def test_help_of_a_recipe_shows_its_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--pipeline", "laion", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Defaults below are the laion recipe's" in text
    assert "threshold; 'none' = off) (default: 0.28)" in text  # --clip_min, laion's value
    assert "(default: ViT-B-32-quickgelu)" in text or "ViT-B-32-quickgelu" in text


# -- a local run prints only our lines ---------------------------------------------------------
def test_a_local_command_prints_only_curates_lines(tmp_path):
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    bad = subprocess.run([sys.executable, "-m", "curate.run", "--runner", "FooRunner", "--output", str(tmp_path / "o")],
                         capture_output=True, text=True, env=env, cwd=REPO)
    assert bad.returncode == 2  # Beam, torch-free imports and our checks ran: one line of ours, nothing else
    assert bad.stderr.strip().splitlines() == ["curate: error: --runner: unknown runner 'FooRunner'; known: "
                                               "FnApiRunner, DirectRunner, PortableRunner, DataflowRunner, "
                                               "SparkRunner, FlinkRunner, DaskRunner, or a full class path"]


def test_the_noise_filter_drops_only_beams_import_warnings(caplog):
    import logging

    from curate.runners.quiet_logs import _DropNoise

    keep = logging.LogRecord("root", logging.WARNING, "", 0, "a real warning", None, None)
    drop = logging.LogRecord("root", logging.WARNING, "", 0, "apitools not found, and bigquery client libraries "
                             "are not available despite the import not raising an ImportError.", None, None)
    resource = logging.LogRecord("x", logging.WARNING, "", 0, "Resource module is not available for current "
                                 "platform, memory usage cannot be fetched.", None, None)
    assert _DropNoise().filter(keep) and not _DropNoise().filter(drop) and not _DropNoise().filter(resource)


# -- MetaCLIP entries named by their text -----------------------------------------------------
def test_top_entries_are_named_in_stats_and_summary(default_run):
    from curate.metaclip import load_metadata
    from curate.summary import format_summary

    out, stats = default_run
    written = json.load(open(os.path.join(str(out), "stats.json")))
    top = written["stages"]["MetaCLIP"]["top_entries"]
    entries = load_metadata()
    assert top and all(set(row) == {"id", "entry", "count"} and entries[row["id"]] == row["entry"] for row in top)
    assert [r["count"] for r in top] == sorted((r["count"] for r in top), reverse=True)
    line = [ln for ln in format_summary(written).splitlines() if "commonest entries" in ln]
    assert line and f"{top[0]['entry']!r} {top[0]['count']:,}" in line[0]


# -- Dask: every URL fetched once ------------------------------------------------------------
def test_dask_fetches_every_url_once(http_server, tmp_path):
    from dask.distributed import LocalCluster

    from tests.conftest import read_ledger, run_curate

    urls = [http_server.url(f"/photo/{i}.jpg") for i in range(12)] + [http_server.url("/404")]
    path = tmp_path / "urls.jsonl"
    path.write_text("".join(json.dumps({"url": u, "caption": f"photo {i}"}) + "\n" for i, u in enumerate(urls)))
    args = ("--pipeline", "download", "--input", str(path), "--allow_private_addresses", "127.0.0.0/8",
            "--batch_size", "4", "--download_cache=false", "--download_retries", "0")  # no cache to hide a refetch
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        stats = run_curate(*args, "--runner", "DaskRunner", "--dask_client_address", cluster.scheduler_address,
                           output=tmp_path / "out")
    site_files = ("/robots.txt", "/.well-known/tdmrep.json")  # fetched once per host, not images
    hits = {path: n for path, n in http_server.state.hits.items() if path not in site_files}
    assert hits == {**{f"/photo/{i}.jpg": 1 for i in range(12)}, "/404": 1}, hits
    assert http_server.hits("/robots.txt") <= 2  # once per host and worker process
    assert http_server.hits("/.well-known/tdmrep.json") <= 2
    assert stats["kept"] == 12 and len(read_ledger(tmp_path / "out")) == 13


# -- scoring offline ---------------------------------------------------------------------------
def test_an_unreachable_hub_fails_at_once_in_one_line(monkeypatch, tmp_path, capsys):
    import huggingface_hub.constants

    from curate.models import hub

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens
    for proxy in hub.PROXY_VARS:
        monkeypatch.delenv(proxy, raising=False)
    hub._probe.cache_clear()
    assert main(["--pipeline", "dfn", "--output", str(tmp_path / "out")]) == 2
    line = _one_error_line(capsys)
    assert "--dfn_pretrained: cannot fetch the weights" in line and "127.0.0.1 unreachable" in line
    hub._probe.cache_clear()
    assert not (tmp_path / "out").exists()


def _readme_command(recipe: str) -> str:
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    lines = [ln for ln in text.splitlines()
             if ln.startswith(f"python -m curate.run --pipeline {recipe} $(python -m curate.models.tiny")]
    assert len(lines) == 1, lines
    return lines[0]


def _few_sample_photos(folder, n: int = 6) -> str:
    """n of the bundled COCO photos with one caption each (name.jpg + name.txt)."""
    import shutil

    from tests.conftest import SAMPLE

    os.makedirs(folder)
    seen = {}
    for row in map(json.loads, open(os.path.join(SAMPLE, "pairs.jsonl"))):
        if row.get("file") and row["file"] not in seen and len(seen) < n:
            seen[row["file"]] = row["caption"]
    for i, (file, caption) in enumerate(seen.items()):
        shutil.copy(os.path.join(SAMPLE, file), os.path.join(folder, f"{i}.jpg"))
        open(os.path.join(folder, f"{i}.txt"), "w").write(caption)
    return str(folder)


def test_the_readme_offline_scoring_command_runs_as_written(tmp_path):
    """The README's line, only paths changed and a few photos as input (the bundled 1,380 rows: ~1 min)."""
    command = _readme_command("dfn").replace("/tmp/curate-", str(tmp_path / "curate-"))
    command += f" --input {_few_sample_photos(tmp_path / 'photos')} --dfn_keep_fraction 0.5"
    for recipe in ("datacomp", "laion"):
        assert "/tmp/curate-tiny" in _readme_command(recipe)
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    stats = json.load(open(tmp_path / "curate-dfn" / "stats.json"))
    assert stats["pipeline"] == "dfn" and stats["kept"] > 0 and stats["stages"]["Score"]
    assert done.stderr == "", done.stderr  # only our own lines, on stdout


# -- plots draw the ledger's numbers, labeled ----------------------------------------------------
def _bars(ax, horizontal: bool):
    """(label, length) of every bar in drawing order."""
    from matplotlib.patches import Rectangle

    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    return [p.get_width() if horizontal else p.get_height() for p in bars]


def test_language_plot_draws_the_ledgers_counts_and_the_tables_rows(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from curate.stats import collect, plots, tables
    from tests.test_stats import synthetic_ledger

    frame = synthetic_ledger(tmp_path)
    rs = collect(str(tmp_path))
    table = tables(rs, top=2)["languages"]
    fig = plots.languages(rs, top=2)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()][::-1]  # drawn bottom-up
    assert labels == list(table["language"]) and labels[-1] == "(other 2)"
    widths = _bars(ax, horizontal=True)
    drawn_all, drawn_kept = widths[:len(labels)][::-1], widths[len(labels):][::-1]
    counts = frame["language"].value_counts()
    kept = frame[frame.status == "kept"]["language"].value_counts()
    assert drawn_all == [counts.iloc[0], counts.iloc[1], counts.iloc[2:].sum()]
    assert drawn_kept == [kept.get(counts.index[0], 0), kept.get(counts.index[1], 0),
                          kept.reindex(counts.index[2:], fill_value=0).sum()]
    assert all(k <= a for k, a in zip(drawn_kept, drawn_all))  # counts: kept never longer than all
    assert ax.get_xlabel() and ax.get_legend() is not None
    legend_box = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    axes_box = ax.get_window_extent(fig.canvas.get_renderer())
    assert legend_box.y1 <= axes_box.y0  # under the axes, over no bar


def test_shard_and_funnel_plots_draw_the_ledgers_counts(default_run):
    import matplotlib

    matplotlib.use("Agg")
    from curate.stats import collect, plots
    from tests.conftest import read_ledger

    out, stats = default_run
    rs = collect(str(out))
    ledger = read_ledger(out)
    in_shards = ledger[(ledger.status == "kept") & ledger.source_key.notna()]
    samples = plots.shards(rs).axes[0]
    assert _bars(samples, horizontal=False) == [len(in_shards)] == [s["count"] for s in stats["shards"]]
    assert [t.get_text() for t in samples.get_xticklabels()] == ["00000"]
    assert samples.get_xlabel() == "shard" and samples.get_ylabel() == "samples"
    assert [t.get_text() for t in samples.texts] or samples.containers  # the bar says its value
    reasons = plots.funnel(rs).axes[1]
    drawn = dict(zip([t.get_text() for t in reasons.get_yticklabels()], _bars(reasons, horizontal=True)))
    assert drawn == ledger.reason.value_counts().to_dict()


# -- progress ---------------------------------------------------------------------------------
def test_progress_lines_count_read_stages_and_written(tmp_path, capsys):
    from tests.conftest import read_ledger

    assert main(["--progress", "--output", str(tmp_path / "out"), "--runner", "FnApiRunner"]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("curate: read ")]
    assert lines, err
    ledger = read_ledger(tmp_path / "out")
    last = lines[-1]
    assert f"read {len(ledger):,} rows" in last and "after MetaCLIP" in last
    assert f"written {(ledger.status == 'kept').sum():,}" in last


def test_progress_is_quiet_off_a_terminal_unless_asked_and_has_an_eta_when_the_total_is_known():
    import io

    from curate.runners import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert progress.enabled(None, io.StringIO()) is False  # a pipe or a log file: quiet
    assert progress.enabled(None, Terminal()) is True
    assert progress.enabled(True, io.StringIO()) is True and progress.enabled(False, Terminal()) is False
    meter = progress.Meter(io.StringIO())
    meter.started -= 10  # 50 rows in 10 s: 5/s, 150 to go: 30 s
    meter.counts = {"read": 50, "Download": 20}
    meter.total = 200
    line = meter.line()
    assert "read 50 rows (5/s, 25% of 200, ETA 0:00:30)" in line and "after Download 20" in line
