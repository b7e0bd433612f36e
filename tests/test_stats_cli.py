"""`python -m curate.stats OUTPUT`: tables on stdout, PNG plots and an HTML page on request."""
from __future__ import annotations

import os

import pytest

from curate.stats.__main__ import main

PNG = b"\x89PNG\r\n\x1a\n"


def test_prints_the_tables(default_run, capsys):
    out, stats = default_run
    assert main([str(out)]) == 0
    text = capsys.readouterr().out
    for title in ("== overview ==", "== funnel ==", "== drops by reason ==", "== metaclip top entries ==",
                  "== shards ==", "== checks =="):
        assert title in text
    assert f"{stats['inputs']:,}" in text
    for reason, n in stats["dropped_by_reason"].items():
        assert any(reason in line and f"{n:,}" in line for line in text.splitlines()), reason
    assert "False" not in text.split("== checks ==")[1]


def test_writes_plots_and_an_html_page(default_run, tmp_path, capsys):
    out, _ = default_run
    assert main([str(out), "--quiet", "--plots", str(tmp_path / "plots"), "--html", str(tmp_path / "r.html")]) == 0
    pngs = sorted(os.listdir(tmp_path / "plots"))
    assert {"funnel.png", "metaclip_entries.png", "shards.png"} <= set(pngs)
    assert all((tmp_path / "plots" / p).read_bytes().startswith(PNG) for p in pngs)
    page = (tmp_path / "r.html").read_text()
    assert page.count("data:image/png;base64,") == len(pngs)
    assert "metaclip:no_match" in page and "<table" in page
    assert "== overview ==" not in capsys.readouterr().out  # --quiet


@pytest.mark.parametrize("args,message", [
    (["/no/such/run"], "no stats.json and no ledger/"),
    (["OUT", "--parts", "0"], "--parts: must be >= 1"),
    (["OUT", "--workers", "x"], "--workers"),
    ([], "the following arguments are required: output"),
])
def test_bad_input_exits_2_with_one_line(args, message, default_run, capsys):
    args = [str(default_run[0]) if a == "OUT" else a for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("curate.stats: error:") and message in err[0], err
