"""A Beam FileSystem for `mnt://` paths, stored in a local folder: remote-storage paths offline.

It behaves like an object store (no directories; a "folder" is a key prefix; `exists` is true
for objects only), so code that works on `mnt://` goes through Beam's FileSystems the way it
does on gs:// or s3://, without network or credentials. Point `MountedFileSystem.root` at a
folder (the `mounted` fixture does).
"""
from __future__ import annotations

import os
import shutil

import pytest
from apache_beam.io.filesystem import FileMetadata, FileSystem

SCHEME = "mnt"
PREFIX = f"{SCHEME}://"


class MountedFileSystem(FileSystem):
    root: str | None = None

    @classmethod
    def scheme(cls):
        return SCHEME

    def _local(self, path: str) -> str:
        assert path.startswith(PREFIX) and self.root, path
        return os.path.join(self.root, path[len(PREFIX):])

    def _remote(self, local: str) -> str:
        return PREFIX + os.path.relpath(local, self.root).replace(os.sep, "/")

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path):
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def mkdirs(self, path):
        pass

    def has_dirs(self):
        return False

    def _list(self, dir_or_prefix):
        for folder, _, files in os.walk(self.root):
            for name in sorted(files):
                local = os.path.join(folder, name)
                remote = self._remote(local)
                if remote.startswith(dir_or_prefix):
                    yield FileMetadata(remote, os.path.getsize(local), os.path.getmtime(local))

    def create(self, path, mime_type=None, compression_type=None):
        local = self._local(path)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        return open(local, "wb")

    def open(self, path, mime_type=None, compression_type=None):
        return open(self._local(path), "rb")

    def copy(self, source_file_names, destination_file_names):
        for src, dst in zip(source_file_names, destination_file_names):
            os.makedirs(os.path.dirname(self._local(dst)), exist_ok=True)
            shutil.copyfile(self._local(src), self._local(dst))

    def rename(self, source_file_names, destination_file_names):
        for src, dst in zip(source_file_names, destination_file_names):
            os.makedirs(os.path.dirname(self._local(dst)), exist_ok=True)
            os.replace(self._local(src), self._local(dst))

    def exists(self, path):
        return os.path.isfile(self._local(path))

    def size(self, path):
        return os.path.getsize(self._local(path))

    def last_updated(self, path):
        return os.path.getmtime(self._local(path))

    def checksum(self, path):
        return str(self.size(path))

    def metadata(self, path):
        local = self._local(path)
        return FileMetadata(path, os.path.getsize(local), os.path.getmtime(local))

    def delete(self, paths):
        for path in paths:
            local = self._local(path)
            if os.path.isdir(local):
                shutil.rmtree(local)
            else:
                os.remove(local)


@pytest.fixture
def mounted(tmp_path):
    """`mnt://` paths stored under a fresh temporary folder."""
    MountedFileSystem.root = str(tmp_path / "mnt")
    os.makedirs(MountedFileSystem.root)
    yield MountedFileSystem.root
    MountedFileSystem.root = None
