"""Reading stored files without a shared disk: per-node checkpoint copies keyed and verified
by sha256, many reads in order."""

import hashlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from core.storage import StoredFileCorrupt, local_copy, read_many


@pytest.fixture(autouse=True)
def _cache_dir(settings, tmp_path):
    settings.STORAGE_CACHE_DIR = tmp_path / "cache"


def test_local_copy_is_downloaded_once_and_keyed_by_its_hash(settings):
    data = b"weights" * 1000
    digest = hashlib.sha256(data).hexdigest()
    name = default_storage.save("models/w/run1.pt", ContentFile(data))
    copy = local_copy(name, sha256=digest)
    assert copy == settings.STORAGE_CACHE_DIR / "sha256" / f"{digest}.pt" and copy.read_bytes() == data
    default_storage.delete(name)
    assert local_copy(name, sha256=digest) == copy  # served from this node's cache, no new read


def test_a_copy_whose_hash_differs_is_refused_and_not_kept(settings):
    name = default_storage.save("models/w/run2.pt", ContentFile(b"tampered"))
    with pytest.raises(StoredFileCorrupt, match="expected " + "0" * 64) as caught:
        local_copy(name, sha256="0" * 64)
    assert caught.value.field == "sha256"
    assert list((settings.STORAGE_CACHE_DIR / "sha256").iterdir()) == []


def test_read_many_keeps_the_order_of_the_names():
    names = [default_storage.save(f"galaxies/g{i}.txt", ContentFile(str(i).encode())) for i in range(20)]
    assert read_many(names) == [str(i).encode() for i in range(20)]
    with pytest.raises(FileNotFoundError):
        read_many([*names[:3], "galaxies/missing.txt"])
