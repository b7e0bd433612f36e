"""Per-shard sample counts and bytes, from the `<shard>_stats.json` files and the files' sizes."""
from __future__ import annotations

import pandas as pd

from curate.stats.reader import RunOutput

COLUMNS = ["shard", "file", "count", "image_bytes", "file_bytes", "sidecar_bytes", "formats"]


def shard_table(run: RunOutput) -> pd.DataFrame:
    """One row per shard: samples, image bytes, the shard file's and its Parquet sidecar's size."""
    files = run.shard_files()
    sizes = dict(zip(files["file"], files["bytes"]))
    rows = []
    for stats in sorted(run.shard_sidecar_stats(), key=lambda s: s["shard"]):
        sidecar = f"{stats['shard']}.parquet"
        rows.append({
            "shard": stats["shard"], "file": stats["file"], "count": stats["count"],
            "image_bytes": stats.get("image_bytes", 0), "file_bytes": sizes.get(stats["file"], 0),
            # a parquet-format shard is its own sidecar
            "sidecar_bytes": sizes.get(sidecar, 0) if sidecar != stats["file"] else 0,
            "formats": ", ".join(f"{k}:{v}" for k, v in sorted(stats.get("formats", {}).items())),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def shard_summary(table: pd.DataFrame) -> dict:
    if table.empty:
        return {"shards": 0, "samples": 0, "bytes": 0}
    counts = table["count"]
    return {"shards": len(table), "samples": int(counts.sum()),
            "bytes": int(table["file_bytes"].sum() + table["sidecar_bytes"].sum()),
            "count_min": int(counts.min()), "count_median": float(counts.median()), "count_max": int(counts.max()),
            "imbalance_max_over_mean": float(counts.max() / counts.mean()) if counts.mean() else float("nan"),
            "mean_bytes_per_sample": float(table["file_bytes"].sum() / counts.sum()) if counts.sum() else float("nan")}
