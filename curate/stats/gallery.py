"""A look at the data itself: kept images with their captions, and dropped captions by reason.

Images are read from the shards as written (WebDataset tars or Parquet shards), streaming from
the first shard files until enough are found; samples in a shard are in uid order, which is
a pseudo-random order, so the first ones are a fair sample.
"""
from __future__ import annotations

import io
import textwrap

import pandas as pd
import pyarrow.parquet as pq

from curate.io import files as fs
from curate.io.shard_format import IMAGE_COLUMNS, SHARDS_DIR
from curate.io.webdataset_source import iter_tar_groups
from curate.stats.collect import RunStats
from curate.stats.reader import RunOutput, iter_parquet

_IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tiff")


def kept_images(run: RunOutput, n: int = 12) -> list[tuple[str, bytes, str]]:
    """(uid, image bytes, caption) of the first n samples in the shards."""
    found: list[tuple[str, bytes, str]] = []
    files = sorted(run.shard_files()["file"])
    tars = [f for f in files if f.endswith(".tar")]
    # with tars, the .parquet files are their sidecars (no images); without, the shards themselves
    for name in tars or [f for f in files if f.endswith(".parquet")]:
        path = fs.join(run.path, SHARDS_DIR, name)
        samples = _from_tar(path) if name.endswith(".tar") else _from_parquet(path)
        for sample in samples:
            found.append(sample)
            if len(found) >= n:
                return found
    return found


def _from_tar(path: str):
    for key, group in iter_tar_groups(path):
        image = next((group[e] for e in _IMAGE_EXTS if e in group), None)
        if image is not None:
            yield key, image, group.get("txt", b"").decode("utf-8", "replace")


def _from_parquet(path: str):
    with fs.open_read(path) as f:
        names = pq.read_schema(f).names
    images = [c for c in IMAGE_COLUMNS if c in names]
    for table in iter_parquet([path], ["uid", "caption", *images]):
        for row in table.to_pylist():
            image = next((row[c] for c in images if row[c] is not None), None)
            if image is not None:
                yield row["uid"], image, row["caption"] or ""


def show_kept(rs: RunStats, n: int = 12, columns: int = 4, width: int = 38):
    """A grid of kept images with their captions (None when the run wrote no images)."""
    from PIL import Image

    from curate.stats.plots import _figure

    samples = kept_images(rs.run, n)
    if not samples:
        return None
    rows = -(-len(samples) // columns)
    fig, axes = _figure(rows, columns, 3.2 * columns, 3.6 * rows)
    for ax in axes:
        ax.axis("off")
    for ax, (uid, data, caption) in zip(axes, samples):
        try:
            image = Image.open(io.BytesIO(data))
            image.thumbnail((256, 256))
            ax.imshow(image)
        except Exception:  # a picture that cannot be shown still gets its caption
            ax.text(0.5, 0.5, "(undecodable)", ha="center")
        ax.set_title("\n".join(textwrap.wrap(caption, width)[:3]), fontsize=8)
    fig.tight_layout()
    return fig


def dropped_examples(rs: RunStats, per_reason: int = 3) -> pd.DataFrame:
    """A few dropped captions for each reason, from the first ledger parts read."""
    wanted = ["reason", "caption", "url"]
    seen: dict[str, list[dict]] = {}
    for table in rs.run.iter_ledger_tables(wanted):
        for row in table.to_pylist():
            reason = row.get("reason")
            if reason and len(seen.setdefault(reason, [])) < per_reason:
                seen[reason].append(row)
        if seen and all(len(v) >= per_reason for v in seen.values()) and len(seen) >= len(rs.funnel.by_reason()):
            break
    rows = [r for reason in sorted(seen) for r in seen[reason]]
    return pd.DataFrame(rows, columns=[c for c in wanted if c in rs.run.ledger_columns])
