"""Remote ledger parts (gs://, s3://, any scheme Beam knows) read by DuckDB through Beam.

curate reads and writes every remote path through Beam's FileSystems (its credentials, its
gs:// and s3:// clients from the `dataflow` / aws extras). DuckDB reads files through its own
file systems, or through an fsspec file system registered with it: `BeamFileSystem` is that
bridge, so a ledger on gs:// is read with the same client and credentials as the run that
wrote it, and nothing else (no DuckDB extension downloaded at run time). Reads are ranged
(Parquet footers, then the column chunks a query needs), buffered 4 MiB at a time.
"""
from __future__ import annotations

import datetime

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

BLOCK = 4 << 20


def _filesystems():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


class _BeamFile(AbstractBufferedFile):
    """One remote file, read in ranges through one open Beam stream (seek, then read)."""

    _stream = None

    def _fetch_range(self, start: int, end: int) -> bytes:
        if self._stream is None:
            self._stream = _filesystems().open(self.path)
        self._stream.seek(start)
        return self._stream.read(end - start)

    def close(self):
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        super().close()


class BeamFileSystem(AbstractFileSystem):
    """fsspec view of Beam's FileSystems for one scheme (read only)."""

    cachable = False

    def __init__(self, scheme: str):
        super().__init__()
        self.scheme = scheme
        self.protocol = scheme

    def _full(self, path: str) -> str:
        return path if "://" in path else f"{self.scheme}://{path}"

    def _metadata(self, path: str):
        found = _filesystems().match([self._full(path)])[0].metadata_list
        if not found:
            raise FileNotFoundError(self._full(path))
        return found[0]

    def info(self, path, **kwargs):
        meta = self._metadata(path)
        return {"name": self._full(path), "size": meta.size_in_bytes, "type": "file"}

    def modified(self, path):
        seconds = self._metadata(path).last_updated_in_seconds or 0
        return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)

    def ls(self, path, detail=True, **kwargs):
        prefix = self._full(path).rstrip("/") + "/"
        found = [{"name": m.path, "size": m.size_in_bytes, "type": "file"}
                 for m in _filesystems().match([prefix + "*"])[0].metadata_list]
        return found if detail else [f["name"] for f in found]

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None, **kwargs):
        if mode != "rb":
            raise PermissionError(f"{self._full(path)}: the ledger is read, never written, through DuckDB")
        return _BeamFile(self, self._full(path), mode, block_size=block_size or BLOCK,
                         size=self.info(path)["size"], cache_type="readahead")


def register_schemes(con, paths: list[str]) -> None:
    """Register a BeamFileSystem for each remote scheme among `paths` (none for local paths)."""
    for scheme in sorted({p.split("://", 1)[0] for p in paths if "://" in p}):
        con.register_filesystem(BeamFileSystem(scheme))
