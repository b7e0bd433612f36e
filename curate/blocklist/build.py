"""Every block list of a run built once, before the run, into compact files under the output.

A list's files are named by its kind and the digest of its bytes, so a rerun with the same list
reuses them and a changed list is built anew; a manifest names the run's lists in flag order.
Workers open the manifest and memory-map the files: no worker parses a list. They live under
`<output>/_spill/blocklists/`, removed with `_spill/` when the run completes, so the output a
team shares holds no copy of its hash lists.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading

from apache_beam.io.filesystems import FileSystems

from curate.blocklist.index import is_complete, write_index
from curate.blocklist.lists import read_list
from curate.blocklist.names import NEAR_KINDS
from curate.blocklist.options import BlockSettings
from curate.io import files as fs
from curate.io.spill import SPILL_DIR

MANIFEST = "manifest.json"
_BUILT: dict = {}
_BUILD_LOCK = threading.Lock()


def index_root(output: str) -> str:
    return fs.join(output, SPILL_DIR, "blocklists")


def manifest_path(output: str) -> str:
    return fs.join(index_root(output), MANIFEST)


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with FileSystems.open(path) as f:
        while block := f.read(2**24):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: str):
    """Size and modification time: a list edited between two runs of one process is rebuilt."""
    if "://" in path:
        return path
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def build_indexes(settings: BlockSettings, output: str) -> str:
    """Build what is missing, write the manifest; returns its path. Once per process and run."""
    key = (settings, output, tuple(_stamp(s.path) for s in settings.lists))
    with _BUILD_LOCK:
        if key not in _BUILT:
            _BUILT[key] = _build(settings, output)
        return _BUILT[key]


def _build(settings: BlockSettings, output: str) -> str:
    entries = []
    for spec in settings.lists:
        near = spec.kind in NEAR_KINDS and settings.radius(spec.kind) > 0
        digest = _file_digest(spec.path)
        folder = fs.join(index_root(output), f"{spec.kind}-{digest[:20]}{'-mih' if near else ''}")
        if not is_complete(folder):
            rows, digest = read_list(spec)
            write_index(folder, rows, near, {"kind": spec.kind, "entries": len(rows), "digest": digest})
        meta = json.loads(fs.read_bytes(fs.join(folder, "meta.json")))
        entries.append({"name": spec.name, "kind": spec.kind, "folder": folder, "entries": meta["entries"],
                        "digest": meta["digest"], "radius": settings.radius(spec.kind)})
    manifest = {"lists": entries}
    path = manifest_path(output)
    fs.write_bytes(path, json.dumps(manifest, indent=1).encode())
    return path
