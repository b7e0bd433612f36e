"""Distinct, real-sized JPEGs for the scale benchmarks: smooth noise, ~90 KB, distinct bytes and pHash.

`python benchmarks/scale_images.py FOLDER N` writes img<i>.jpg + img<i>.txt (a caption drawn from
the Markov chain over the bundled real captions) for i < N, skipping files already there.
"""
from __future__ import annotations

import io
import os
import shutil
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus import markov_captions  # noqa: E402


def jpeg(i: int) -> bytes:
    small = np.random.default_rng(i).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small).resize((512, 384), Image.BICUBIC).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_folder(folder: str, n: int) -> str:
    os.makedirs(folder, exist_ok=True)
    captions = markov_captions(n, seed=1)
    for i in range(n):
        path = os.path.join(folder, f"img{i:07d}.jpg")
        if not os.path.exists(path):
            with open(path + ".tmp", "wb") as f:
                f.write(jpeg(i))
            os.replace(path + ".tmp", path)
            with open(os.path.join(folder, f"img{i:07d}.txt"), "w") as f:
                f.write(captions[i] or "a photo")
    return folder


def subset(folder: str, n: int, into: str) -> str:
    """A folder of the first n images as hard links (one generated pool, several sizes; a symlink
    out of the input folder is refused as input:outside_input), copies across file systems."""
    os.makedirs(into, exist_ok=True)
    for i in range(n):
        for ext in ("jpg", "txt"):
            name = f"img{i:07d}.{ext}"
            link = os.path.join(into, name)
            if not os.path.lexists(link):
                try:
                    os.link(os.path.join(folder, name), link)
                except OSError:
                    shutil.copyfile(os.path.join(folder, name), link)
    return into


if __name__ == "__main__":
    write_folder(sys.argv[1], int(sys.argv[2]))
