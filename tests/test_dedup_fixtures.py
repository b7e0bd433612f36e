"""Duplicates built from the bundled real photos, written as img2dataset-style WebDataset shards."""
from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import tarfile

from tests.image_variants import variants
from tests.conftest import SAMPLE

PHOTOS = sorted(glob.glob(os.path.join(SAMPLE, "images", "*.jpg")))
GROUP_PHOTOS = PHOTOS[:10]  # each appears with its copies
UNRELATED = PHOTOS[10:16]  # each appears once
EVAL_PHOTOS = PHOTOS[:2]  # planted in the eval set (resized), so their groups are contaminated
EVAL_ONLY = PHOTOS[20]  # an eval image no training sample resembles
# byte copy, re-encodes, resizes, slight crop, recolours (the radius-6 column of the table catches all)
COPIES = ("jpeg_q50", "jpeg_q20", "png", "resize_50", "resize_25", "crop_1", "grayscale",
          "brightness_120", "saturation_150")
RADIUS = 6
# clip_score in the shards' json ranks copies (--dedup_keep best_score); these two win their groups
TOP_SCORED = ("g3-original", "g4-bytecopy")
EVAL_RADIUS = 12


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def training_items():
    """(key, image bytes, ext, caption, url, group) of every training sample; group None = unrelated."""
    items = []
    for g, path in enumerate(GROUP_PHOTOS):
        data, stem = _read(path), os.path.basename(path)[:-4]
        items.append((f"g{g}-original", data, "jpg", f"photo {stem}", f"http://www.photos.example/{stem}.jpg", g))
        items.append((f"g{g}-bytecopy", data, "jpg", f"same bytes {stem}", f"http://mirror.example/{stem}.jpg", g))
        for name, copy in variants(data, COPIES).items():
            ext = "png" if name == "png" else "jpg"
            items.append((f"g{g}-{name}", copy, ext, f"{name} of {stem}", f"http://cdn.example/{name}/{stem}.{ext}", g))
    # the original's URL again, spelled differently, serving a re-encoded copy
    stem = os.path.basename(GROUP_PHOTOS[3])[:-4]
    items.append(("g3-sameurl", variants(_read(GROUP_PHOTOS[3]), ["jpeg_q90"])["jpeg_q90"], "jpg",
                  "crawled again", f"HTTPS://photos.example/{stem}.jpg", 3))
    for u, path in enumerate(UNRELATED):
        items.append((f"u{u}", _read(path), "jpg", f"unrelated {u}", f"http://other.example/{u}.jpg", None))
    return items


def score(key: str) -> float:
    if key in TOP_SCORED:
        return 0.99
    return int(hashlib.md5(key.encode()).hexdigest()[:6], 16) / 2**24 * 0.9


def _member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_shards(folder, items, shards: int = 2) -> str:
    """img2dataset's layout: NNNNN.tar with <key>.jpg/.txt/.json (url, key, status, sha256, ...)."""
    os.makedirs(folder, exist_ok=True)
    for s in range(shards):
        with tarfile.open(os.path.join(folder, f"{s:05d}.tar"), "w") as tar:
            for n, (key, data, ext, caption, url, _) in enumerate(items[s::shards]):
                tar_key = f"{s:05d}{n:04d}"
                meta = {"url": url, "key": tar_key, "status": "success", "caption": caption,
                        "sha256": hashlib.sha256(data).hexdigest(), "name": key, "clip_score": score(key)}
                _member(tar, f"{tar_key}.{ext}", data)
                _member(tar, f"{tar_key}.txt", caption.encode())
                _member(tar, f"{tar_key}.json", json.dumps(meta).encode())
    return folder


def write_eval_folder(folder) -> str:
    """Eval images as an image folder: resized copies of EVAL_PHOTOS plus one unrelated image."""
    os.makedirs(folder, exist_ok=True)
    for path in EVAL_PHOTOS:
        with open(os.path.join(folder, "eval-" + os.path.basename(path)), "wb") as f:
            f.write(variants(_read(path), ["resize_50"])["resize_50"])
    with open(os.path.join(folder, "eval-" + os.path.basename(EVAL_ONLY)), "wb") as f:
        f.write(_read(EVAL_ONLY))
    return folder
