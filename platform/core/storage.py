"""Stored files (images, checkpoints, snapshots) are read through Django's storage API only —
local disk or an S3 bucket (settings ``STORAGES``) — so web and worker nodes share the
database, the broker and the storage, never a disk."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.core.files.storage import default_storage

from core.errors import DomainError

# Parallel reads of many small objects: one S3 GET is a network round trip, so a chunk of
# images is fetched by a pool of threads (boto3 clients are thread-safe).
READ_THREADS = 8
BLOCK = 1 << 20
T = TypeVar("T")


class StoredFileCorrupt(DomainError):
    status_code = 500
    code = "stored_file_corrupt"


def read_bytes(name: str) -> bytes:
    with default_storage.open(name, "rb") as handle:
        return handle.read()


def read_many(names: Sequence[str], *, read: Callable[[str], T] = read_bytes) -> list[T]:
    """``read(name)`` of every name, in order, by a pool of threads."""
    if len(names) < 2:
        return [read(name) for name in names]
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        return list(pool.map(read, names))


def sha256_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def local_copy(name: str, *, sha256: str) -> Path:
    """A verified copy of the stored file ``name`` on this node's disk, downloaded once into
    ``STORAGE_CACHE_DIR/sha256/`` under its hash (torch needs a seekable local file, and a
    worker predicting many chunks must not fetch the checkpoint for each). The download is
    hashed before it is renamed into place, so a damaged or replaced object is never used."""
    target = Path(settings.STORAGE_CACHE_DIR) / "sha256" / f"{sha256}{Path(name).suffix}"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=".download-")
    try:
        with os.fdopen(handle, "wb") as out, default_storage.open(name, "rb") as source:
            for block in iter(lambda: source.read(BLOCK), b""):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != sha256:
            raise StoredFileCorrupt(f"stored file {name} has sha256 {digest.hexdigest()}, expected {sha256}",
                                    field="sha256")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target
