"""transformers captioners in whole runs: recap with a tiny BLIP on WebDataset shards (same captions
with two worker processes and another batch split, shards readable by webdataset and open_clip's
loader), the README's offline tour command, bad flags."""
import json
import os
import subprocess

import pandas as pd
import pytest
import webdataset as wds

from curate.caption.mix import txt_is_synthetic
from curate.models.generation import GenerationParams, sample_seed
from curate.models.tiny_vlm import write_tiny_vlm
from curate.run import main
from tests.conftest import read_ledger, run_curate
from tests.test_caption_pipeline import ALT, _member
from tests.test_caption_vlm import direct_captions
from tests.test_models import sample_images

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ["--caption_generation", "top_p", "--captions_per_image", "2", "--caption_max_length", "6",
         "--caption_min_length", "1", "--caption_top_p", "0.9", "--caption_mix", "0.5", "--caption_seed", "3"]
PARAMS = GenerationParams("top_p", seq_len=6, min_seq_len=1, top_p=0.9)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    import tarfile

    folder = tmp_path_factory.mktemp("vlm_inputs")
    model = write_tiny_vlm(str(folder / "tiny-blip"), "blip", seed=6)
    shard = os.path.join(folder, "in-000.tar")
    with tarfile.open(shard, "w") as tar:
        for i, (image, alt) in enumerate(zip(sample_images(len(ALT)), ALT)):
            _member(tar, f"s{i:02d}.jpg", image)
            _member(tar, f"s{i:02d}.txt", alt.encode())
    return shard, model


@pytest.fixture(scope="module")
def recap_run(inputs, tmp_path_factory):
    shard, model = inputs
    out = tmp_path_factory.mktemp("recap_vlm")
    stats = run_curate("--pipeline", "recap", "--input", shard, "--caption_model", model, *FLAGS,
                       "--batch_size", "4", output=out)
    return out, stats


def test_recap_with_a_transformers_model_writes_its_captions_beside_the_alt_text(recap_run, inputs):
    out, stats = recap_run
    shard, model = inputs
    ledger = read_ledger(out)
    assert (ledger.status == "kept").all() and len(ledger) == len(ALT)
    assert (ledger.caption_model == model).all() and (ledger.syn_captions.map(len) == 2).all()
    facts = stats["stages"]["Caption"]
    assert facts["engine"] == "transformers" and facts["prompt"] is None  # BLIP captions unprompted
    images = dict(zip(ALT, sample_images(len(ALT))))
    seeds = [[sample_seed(uid, 3, k) for k in range(2)] for uid in ledger.uid]
    direct = direct_captions(model, [images[c] for c in ledger.caption], None, PARAMS, seeds)
    assert [list(c) for c in ledger.syn_captions] == direct  # in the graph = generate on each image alone
    seen = {}
    for sample in wds.WebDataset(os.path.join(out, "shards", "00000.tar"), shardshuffle=False).decode():
        meta = sample["json"]
        seen[sample["__key__"]] = meta
        assert sample["syn.txt"] == meta["syn_caption"] == meta["syn_captions"][0]
        assert sample["txt"] == (meta["syn_caption"] if meta["txt_is_synthetic"] else meta["caption"])
        assert meta["txt_is_synthetic"] == txt_is_synthetic(meta["uid"], 3, 0.5)
    assert set(seen) == set(ledger.uid)


def test_shards_load_in_open_clip_training_loader(recap_run):
    from tests.test_caption_pipeline import test_shards_load_in_open_clip_training_loader as load

    load(recap_run)


def test_same_captions_with_two_worker_processes_and_another_batch_split(recap_run, inputs, tmp_path):
    shard, model = inputs
    run_curate("--pipeline", "recap", "--input", shard, "--caption_model", model, *FLAGS, "--batch_size", "3",
               "--caption_batch_size", "2", "--direct_num_workers", "2", "--direct_running_mode", "multi_processing",
               output=tmp_path)
    pd.testing.assert_frame_equal(read_ledger(recap_run[0]), read_ledger(tmp_path))


def _readme_vlm_command() -> str:
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    lines = [ln for ln in text.splitlines()
             if ln.startswith("python -m curate.run --pipeline recap $(python -m curate.models.tiny_vlm")]
    assert len(lines) == 1, lines
    return lines[0]


def test_the_readme_offline_vlm_command_runs_as_written(tmp_path):
    """The README's line, only paths changed and a few photos as input."""
    from tests.test_first_hour import _few_sample_photos

    command = _readme_vlm_command().replace("/tmp/curate-", str(tmp_path / "curate-"))
    command += f" --input {_few_sample_photos(tmp_path / 'photos', 3)}"
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = str(tmp_path / "curate-recap-vlm")
    stats = json.load(open(os.path.join(out, "stats.json")))
    assert stats["pipeline"] == "recap" and stats["kept"] == 3
    assert stats["stages"]["Caption"]["prompt"].startswith("Write one descriptive caption")
    assert read_ledger(out).syn_caption.map(bool).all()


@pytest.mark.parametrize("args, message", [
    (["--caption_generation", "greedy", "--captions_per_image", "2"], "--captions_per_image: greedy gives one"),
    (["--caption_num_beam_groups", "2", "--caption_generation", "beam_search"],
     "--caption_num_beam_groups: diverse beam groups are CoCa's"),
    (["--caption_max_length", "0"], "--caption_max_length: new tokens, >= 1"),
    (["--caption_engine", "vllm", "--caption_generation", "beam_search"], "--caption_engine vllm: no beam search"),
    (["--caption_engine", "vllm"], "--caption_engine vllm: vLLM is not installed: pip install 'curate[vllm]'"),
    (["--caption_engine", "tgi"], "--caption_engine: 'tgi' is not one of transformers, vllm"),
])
def test_bad_transformers_caption_flags_exit_2_with_one_line(inputs, args, message, tmp_path, capsys):
    shard, model = inputs
    assert main(["--pipeline", "recap", "--input", shard, "--caption_model", model, *args,
                 "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--caption_generation", "greedy"], "--caption_generation: 'greedy' is not one of beam_search, top_p, top_k "
                                         "(greedy: transformers models only)"),
    (["--caption_prompt", "Describe it."], "--caption_prompt: open_clip's CoCa coca_ViT-B-32 takes no prompt"),
    (["--caption_engine", "vllm"], "--caption_engine: vllm serves transformers checkpoints"),
])
def test_transformers_only_flags_on_a_coca_exit_2_with_one_line(args, message, tmp_path, capsys):
    assert main(["--pipeline", "recap", "--caption_model", "coca_ViT-B-32", *args,
                 "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_an_unreachable_hub_captioner_fails_before_the_run(monkeypatch, tmp_path, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert main(["--pipeline", "recap", "--caption_model", "nobody-here/no-such-vlm",
                 "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--caption_model: cannot fetch nobody-here/no-such-vlm" in err[0], err
    assert not (tmp_path / "out").exists()
