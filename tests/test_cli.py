"""CLI: bad input fails before the pipeline starts with one line and exit 2; --help lists everything."""
import json
import subprocess
import sys

import pytest

from curate.run import main
from tests.conftest import SAMPLE


@pytest.mark.parametrize("args,message", [
    (["--pipeline", "nope"], "--pipeline: unknown recipe 'nope'"),
    (["--t", "0"], "--t: must be > 0"),
    (["--t", "-3"], "--t: must be > 0"),
    (["--input", "/no/such/file.parquet"], "--input: no such file or folder"),
    (["--metadata", "/no/such/metadata.json"], "--metadata: cannot read"),
    (["--bogus_flag", "1"], "unknown flag '--bogus_flag'"),
    (["--batch_size", "0"], "--batch_size: must be >= 1"),
    (["--output_format", "zip"], "--output_format"),
    (["--download", "maybe"], "--download"),
])
def test_bad_flags_exit_2_with_one_line(args, message, tmp_path, capsys):
    assert main([*args, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("curate: error:") and message in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content,message", [
    ("{not json", "is not JSON"),
    ('{"a": 1}', "must be a JSON list of strings"),
    ('["ok", 3]', "must be a JSON list of strings"),
    ("[]", "empty list"),
])
def test_bad_metadata_files(content, message, tmp_path, capsys):
    path = tmp_path / "m.json"
    path.write_text(content)
    assert main(["--metadata", str(path), "--output", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_unknown_column_names_the_columns(tmp_path, capsys):
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps({"link": "http://x/1", "caption": "a dog"}) + "\n")
    assert main(["--input", str(path), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--url_col: no column 'url'" in err and "link" in err


def test_help_lists_recipes_and_flags_with_defaults():
    out = subprocess.run([sys.executable, "-m", "curate.run", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())  # argparse wraps lines
    assert "metaclip" in text and "MetaCLIP" in text
    for flag in ("--input", "--url_col", "--caption_col", "--output_format", "--metadata", "--t", "--seed",
                 "--download", "--samples_per_shard", "--batch_size", "--runner"):
        assert flag in text, flag
    assert "(default: url)" in text and "(default: 10000)" in text


def test_exit_status_2_from_the_command_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "curate.run", "--input", str(tmp_path / "nothing")],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("curate: error: --input")
    assert "Traceback" not in out.stderr


def test_beam_flags_pass_through(tmp_path):
    stats_args = ["--input", SAMPLE, "--direct_num_workers", "1", "--direct_running_mode", "in_memory",
                  "--temp_location", str(tmp_path / "tmp"), "--output", str(tmp_path / "o"),
                  "--runner", "FnApiRunner"]
    assert main(stats_args) == 0
    assert json.load(open(tmp_path / "o" / "stats.json"))["runner"] == "FnApiRunner"
