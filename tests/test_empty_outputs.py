"""Every recipe, given an input its stages reject entirely (and an empty input), still writes a
complete, valid output: a ledger with every input once, stats.json, no shards, exit 0."""
from __future__ import annotations

import io
import json
import os

import pandas as pd
import pytest
from PIL import Image

from curate.recipes import recipes
from curate.run import main

CAPTIONS = ["a small red photo of a dog on a table", "a cat sleeping on a green sofa at home",
            "two people walking along a beach at sunset", "a bowl of fruit on a wooden kitchen table"]


def _small_images(folder, garbage: bool = False, captions=CAPTIONS) -> str:
    """4 distinct 64 px images (below DataComp's 200 px side) with English captions."""
    os.makedirs(folder, exist_ok=True)
    for i, caption in enumerate(captions):
        if garbage:
            data = b"not an image %d" % i
        else:
            buffer = io.BytesIO()
            Image.new("RGB", (64, 64), (40 * i, 255 - 40 * i, 90)).save(buffer, "JPEG")
            data = buffer.getvalue()
        with open(os.path.join(folder, f"{i}.jpg"), "wb") as f:
            f.write(data)
        with open(os.path.join(folder, f"{i}.txt"), "w") as f:
            f.write(caption)
    return str(folder)


def _bad_urls(path) -> str:
    with open(path, "w") as f:  # rejected before any request: no network touched
        f.writelines(json.dumps({"url": u, "caption": c}) + "\n"
                     for u, c in zip(["not a url", "ftp://x/y.jpg", "http://", "mailto:a@b"], CAPTIONS))
    return str(path)


def _no_match_subset(folder) -> str:
    """A DataComp subset (sorted uid pairs) whose one uid no sample has."""
    import numpy as np

    path = os.path.join(str(folder), "no_match.npy")
    np.save(path, np.array([(0, 1)], dtype="u8,u8"))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from curate.models.tiny import write_tiny_model

    return write_tiny_model(str(tmp_path_factory.mktemp("empty-models")), name="tiny-empty", seed=3)


@pytest.fixture(scope="module")
def coca(tmp_path_factory):
    from curate.models.coca import write_tiny_coca

    return write_tiny_coca(str(tmp_path_factory.mktemp("empty-coca")), name="tiny-coca-empty", seed=3)


def _extra_flags(name: str, folder, tiny, coca) -> list[str]:
    """Flags a recipe needs to run at all, offline (its model, its subset)."""
    flags = {"dfn": lambda: _scoring("dfn", tiny), "datacomp": lambda: _scoring("clip", tiny),
             "laion": lambda: _scoring("clip", tiny), "reshard": lambda: ["--subset", _no_match_subset(folder)],
             "recap": lambda: ["--caption_model", coca[0], "--caption_pretrained", coca[1], "--device", "cpu"]}
    return flags[name]() if name in flags else []


def _scoring(flag: str, tiny) -> list[str]:
    return [f"--{flag}_model", tiny[0], f"--{flag}_pretrained", tiny[1], "--device", "cpu", "--torch_threads", "1"]


def reject_all(name: str, folder, tiny, coca) -> tuple[list[str], str]:
    """(flags, the stage expected to reject) for an input every sample of which is rejected."""
    metadata = os.path.join(folder, "one_entry.json")
    with open(metadata, "w") as f:
        json.dump(["zqxjv"], f)  # matches no caption
    images = _small_images(os.path.join(folder, "images"))
    garbage = _small_images(os.path.join(folder, "garbage"), garbage=True)
    gibberish = _small_images(os.path.join(folder, "gibberish"), captions=["zqxjv wvkq", "qqzx vvjk pfft",
                                                                            "xkcd zzvq", "jjqx wwzk"])
    cases = {
        "metaclip": (["--input", images, "--metadata", metadata], "metaclip:no_match"),
        "dfn": (["--input", images, *_scoring("dfn", tiny)], "filter:min_side"),  # nothing reaches the cut
        "datacomp": (["--input", images, *_scoring("clip", tiny)], "filter:min_side"),
        "laion": (["--input", images, *_scoring("clip", tiny), "--clip_min", "0.99"], "score:below_threshold"),
        "dedup": (["--input", garbage], "image:"),
        "download": (["--input", _bad_urls(os.path.join(folder, "bad.jsonl"))], "download:"),
        "reshard": (["--input", images, "--subset", _no_match_subset(folder)], "subset:not_in_subset"),
        "metaclip2": (["--input", gibberish], "metaclip:"),  # no language's entries match
        "recap": (["--input", garbage, *_extra_flags("recap", folder, tiny, coca)], "image:"),  # nothing to caption
    }
    assert name in cases, f"recipe {name!r} is new: give it an input its stages reject entirely here"
    return cases[name]


def _ledger(output) -> pd.DataFrame:
    folder = os.path.join(str(output), "ledger")
    parts = sorted(f for f in os.listdir(folder) if f.endswith(".parquet")) if os.path.isdir(folder) else []
    if not parts:
        return pd.DataFrame({"uid": [], "status": [], "reason": []})
    return pd.concat([pd.read_parquet(os.path.join(folder, p)) for p in parts], ignore_index=True)


def assert_complete_and_empty(output, inputs: int, reason_prefix: str | None) -> dict:
    stats = json.load(open(os.path.join(str(output), "stats.json")))
    assert stats["inputs"] == inputs and stats["kept"] == 0 and stats["dropped"] == inputs
    assert stats["shards"] == [] and stats["kept_in_shards"] == 0
    ledger = _ledger(output)
    assert len(ledger) == inputs and ledger.uid.is_unique
    assert (ledger.status == "dropped").all()
    if reason_prefix:
        assert ledger.reason.str.contains(":").all()
        assert ledger.reason.str.startswith(reason_prefix).all(), ledger.reason.tolist()
        assert sum(stats["dropped_by_reason"].values()) == inputs
    shards = os.path.join(str(output), "shards")
    assert not os.path.isdir(shards) or not [f for f in os.listdir(shards) if f.endswith((".tar", ".parquet"))]
    return stats


def _run(args, output, capsys) -> str:
    code = main([*args, "--output", str(output), "--runner", "FnApiRunner"])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    return out


@pytest.mark.parametrize("name", sorted(recipes()))
def test_a_recipe_whose_stages_reject_everything_writes_a_complete_output(name, tiny, coca, tmp_path, capsys):
    args, reason = reject_all(name, tmp_path, tiny, coca)
    out = _run(["--pipeline", name, *args], tmp_path / "out", capsys)
    assert_complete_and_empty(tmp_path / "out", len(CAPTIONS), reason)
    assert f"{len(CAPTIONS)} inputs -> 0 kept (0 in 0 shard(s)" in out


@pytest.mark.parametrize("name", sorted(recipes()))
def test_a_recipe_on_an_empty_input_writes_a_complete_output(name, tiny, coca, tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("url,caption\n")  # a URL list with its columns and no rows
    flags = _extra_flags(name, tmp_path, tiny, coca)
    out = _run(["--pipeline", name, "--input", str(empty), *flags], tmp_path / "out", capsys)
    assert_complete_and_empty(tmp_path / "out", 0, None)
    assert "0 inputs -> 0 kept" in out
