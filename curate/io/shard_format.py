"""Output shards: names, schemas and the bytes of one sample's tar members.

A shard is assembled from the fragments the workers holding the images wrote (fragments.py,
shard_plan.py): tar records are encoded here once per sample, with no clock in the headers,
so a rerun writes the same bytes.
"""
from __future__ import annotations

import json
import tarfile

import pyarrow as pa

from curate.io import files as fs, strict_json
from curate.io.ledger_batch import ledger_row
from curate.sample import Sample

SHARDS_DIR = "shards"
SIZES_FILE = "sizes.json"  # open_clip's training loader reads sample counts from it
IMAGE_COLUMNS = ("jpg", "png", "webp", "gif", "bmp", "tiff")  # img2dataset names its column by format


def shard_name(index: int) -> str:
    return f"{index:05d}"


def sidecar_schema(ledger_schema: pa.Schema) -> pa.Schema:
    """img2dataset's sidecar leads with `key` (the tar key, here the uid)."""
    return pa.schema([pa.field("key", pa.string()), *ledger_schema])


def parquet_shard_schema(ledger_schema: pa.Schema) -> pa.Schema:
    fields = list(sidecar_schema(ledger_schema))
    return pa.schema(fields + [pa.field(c, pa.binary()) for c in IMAGE_COLUMNS])


def sidecar_row(sample: Sample) -> dict:
    row = ledger_row(sample, None)
    row["key"] = sample.uid
    return row


def sample_members(sample: Sample, row: dict) -> list[tuple[str, bytes]]:
    """The tar members of one kept sample: image, caption, json of its sidecar row."""
    meta = {k: v for k, v in row.items() if v is not None}
    return [
        (f"{sample.uid}.{sample.image_format or 'jpg'}", sample.image),
        *((f"{sample.uid}.{ext}", text.encode("utf-8")) for ext, text in text_members(sample)),
        (f"{sample.uid}.json", strict_json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8")),
    ]


def text_members(sample: Sample) -> list[tuple[str, str]]:
    """`txt` (the training text: the alt-text, or the synthetic caption where the caption mix
    chose it) and, for a captioned sample, `syn.txt` (its first synthetic caption)."""
    synthetic = sample.values.get("syn_caption")
    if synthetic is None:
        return [("txt", sample.caption)]
    return [("txt", synthetic if sample.values.get("txt_is_synthetic") else sample.caption), ("syn.txt", synthetic)]


def tar_record(name: str, data: bytes) -> bytes:
    """One member as it stands in a tar: header block(s), data, NUL padding to 512 bytes."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # reproducible bytes
    header = info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
    return header + data + tarfile.NUL * (-len(data) % tarfile.BLOCKSIZE)


def tar_end(size: int) -> bytes:
    """The end-of-archive marker (two zero blocks), padded as tarfile pads a stream."""
    end = 2 * tarfile.BLOCKSIZE
    return tarfile.NUL * (end + (-(size + end) % tarfile.RECORDSIZE))


def write_sizes(output: str, shards: list[dict]) -> None:
    sizes = {s["file"]: s["count"] for s in shards}
    fs.write_bytes(fs.join(output, SHARDS_DIR, SIZES_FILE), json.dumps(sizes, indent=1).encode())
