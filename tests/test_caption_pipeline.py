"""Captions in whole runs: the recap recipe on WebDataset shards, the flag on metaclip, the mix, bad flags."""
import io
import math
import os
import tarfile

import numpy as np
import pandas as pd
import pytest
import webdataset as wds

from curate.caption.mix import txt_is_synthetic
from curate.models.coca import write_tiny_coca
from curate.models.tiny import TINY_CONFIG, write_tiny_model
from curate.run import main
from tests.conftest import read_ledger, run_curate
from tests.test_models import SCORE_TOLERANCE, direct_scores, sample_images

ALT = ["a dog on the beach", "a red car in the street", "two cats on a sofa", "a man riding a horse",
       "zzqx vvbn", "a train at the station"]


def _member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("caption_inputs")
    config, checkpoint = write_tiny_coca(str(folder), name="tiny-coca-run", seed=2)
    images = sample_images(len(ALT))
    shard = os.path.join(folder, "in-000.tar")
    with tarfile.open(shard, "w") as tar:
        for i, (image, alt) in enumerate(zip(images, ALT)):
            _member(tar, f"s{i:02d}.jpg", image)
            _member(tar, f"s{i:02d}.txt", alt.encode())
        _member(tar, "broken.jpg", images[0][:1200])  # a truncated image: image:decode_error, never captioned
        _member(tar, "broken.txt", b"a broken photo")
    model = ["--caption_model", config, "--caption_pretrained", checkpoint]
    return shard, model


FLAGS = ["--caption_generation", "top_p", "--captions_per_image", "2", "--caption_max_length", "10",
         "--caption_mix", "0.5", "--caption_seed", "3"]


@pytest.fixture(scope="module")
def recap_run(inputs, tmp_path_factory):
    shard, model = inputs
    out = tmp_path_factory.mktemp("recap")
    stats = run_curate("--pipeline", "recap", "--input", shard, *model, *FLAGS, "--batch_size", "4", output=out)
    return out, stats


def test_recap_writes_synthetic_captions_beside_the_alt_text(recap_run):
    out, stats = recap_run
    ledger = read_ledger(out)
    kept = ledger[ledger.status == "kept"]
    assert len(kept) == len(ALT)
    assert ledger.set_index("source_key").loc["broken", "reason"] == "image:decode_error"
    assert kept.syn_caption.notna().all() and (kept.syn_captions.map(len) == 2).all()
    assert (kept.syn_caption == kept.syn_captions.map(lambda c: c[0])).all()
    assert sorted(kept.caption) == sorted(ALT)  # the alt-text is never lost
    assert stats["stages"]["Caption"]["captions_per_image"] == 2
    seen = {}
    for sample in wds.WebDataset(os.path.join(out, "shards", "00000.tar"), shardshuffle=False).decode():
        meta = sample["json"]
        seen[sample["__key__"]] = meta
        assert sample["syn.txt"] == meta["syn_caption"]
        assert sample["txt"] == (meta["syn_caption"] if meta["txt_is_synthetic"] else meta["caption"])
        assert meta["txt_is_synthetic"] == txt_is_synthetic(meta["uid"], 3, 0.5)
        assert meta["syn_captions"][0] == meta["syn_caption"] and meta["caption"] in ALT
    assert set(seen) == set(kept.uid)
    sidecar = pd.read_parquet(os.path.join(out, "shards", "00000.parquet"))
    assert list(sidecar.syn_captions.map(len)) == [2] * len(ALT)


def test_shards_load_in_open_clip_training_loader(recap_run):
    import argparse

    import open_clip
    from open_clip_train.data import get_wds_dataset
    from torchvision import transforms

    out, _ = recap_run
    args = argparse.Namespace(train_data=os.path.join(out, "shards", "00000.tar"), train_num_samples=None,
                              dataset_resampled=False, train_data_upsampling_factors=None, batch_size=4,
                              workers=0, seed=0, world_size=1, rank=0)
    preprocess = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])
    data = get_wds_dataset(args, preprocess, is_train=True, tokenizer=open_clip.get_tokenizer("ViT-B-32"))
    images, texts = next(iter(data.dataloader))
    assert images.shape == (4, 3, 32, 32) and texts.shape[0] == 4


def test_same_captions_whatever_the_batch_split(recap_run, inputs, tmp_path):
    shard, model = inputs
    run_curate("--pipeline", "recap", "--input", shard, *model, *FLAGS, "--batch_size", "3",
               "--caption_batch_size", "2", output=tmp_path)
    pd.testing.assert_frame_equal(read_ledger(recap_run[0]), read_ledger(tmp_path))


def test_metaclip_captions_only_what_survives_its_cuts_and_scores_the_captions(inputs, tmp_path):
    shard, model = inputs
    clip_config, clip_checkpoint = write_tiny_model(str(tmp_path / "clip"), name="tiny-clip-syn", seed=1)
    run_curate("--pipeline", "metaclip", "--input", shard, *model, "--caption_max_length", "8",
               "--caption_num_beams", "2", "--caption_num_beam_groups", "1", "--clip_model", clip_config,
               "--clip_pretrained", clip_checkpoint, "--syn_clip_score", output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    kept, dropped = ledger[ledger.status == "kept"], ledger[ledger.status == "dropped"]
    assert "metaclip:no_match" in set(dropped.reason) and len(kept) >= 3
    assert kept.syn_caption.notna().all() and dropped.syn_caption.isna().all()
    assert (kept.syn_captions.map(len) == 1).all() and not kept.txt_is_synthetic.any()
    images = dict(zip(ALT, sample_images(len(ALT))))
    syn, alt = (direct_scores(TINY_CONFIG, clip_checkpoint, False, [images[c] for c in kept.caption], list(texts))[0]
                for texts in (kept.syn_caption, kept.caption))
    np.testing.assert_allclose(kept.syn_clip_score.to_numpy(), syn, atol=SCORE_TOLERANCE, rtol=0)
    np.testing.assert_allclose(kept.clip_score.to_numpy(), alt, atol=SCORE_TOLERANCE, rtol=0)  # alt-text untouched


def test_the_mix_is_deterministic_and_its_share_within_binomial_bounds():
    uids = [f"{i * 2654435761 % (1 << 128):032x}" for i in range(20_000)]
    mix = 0.15
    chosen = [txt_is_synthetic(u, 0, mix) for u in uids]
    assert chosen == [txt_is_synthetic(u, 0, mix) for u in uids]
    share, sigma = sum(chosen) / len(uids), math.sqrt(mix * (1 - mix) / len(uids))
    assert abs(share - mix) < 4 * sigma, share
    other = [txt_is_synthetic(u, 1, mix) for u in uids]
    assert other != chosen and abs(sum(other) / len(uids) - mix) < 4 * sigma
    assert not any(txt_is_synthetic(u, 0, 0.0) for u in uids[:100])
    assert all(txt_is_synthetic(u, 0, 1.0) for u in uids[:100])


@pytest.mark.parametrize("args, message", [
    (["--pipeline", "recap", "--captions_per_image", "3"], "--captions_per_image: beam search gives one"),
    (["--pipeline", "recap", "--caption_mix", "1.5"], "--caption_mix: a share in [0, 1]"),
    (["--pipeline", "recap", "--caption_generation", "greedy"], "--caption_generation: 'greedy'"),
    (["--pipeline", "recap", "--caption_model", "ViT-B-32", "--caption_pretrained", "openai"],
     "is not a CoCa model (no text decoder)"),
    (["--pipeline", "metaclip", "--caption_mix", "0.15"], "--caption_mix: needs --caption_model"),
    (["--pipeline", "metaclip", "--caption_model", "coca_ViT-B-32", "--caption_pretrained", "nosuch"],
     "--caption_pretrained: 'nosuch' is neither"),
])
def test_bad_caption_flags_exit_2_with_one_line(args, message, tmp_path, capsys):
    assert main([*args, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()
