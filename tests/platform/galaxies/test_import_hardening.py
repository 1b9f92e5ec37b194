"""Hostile import files: each refused with an error naming its row and id, and nothing written.
The files are made in tmp_path: a named pipe, a symlink and ``../`` out of the images folder,
a gzip bomb, a 12000² PNG (its header only), and oversized files."""

import gzip
import io
import os
import signal
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from galaxies.models import Galaxy
from galaxies.services import CatalogError, import_catalog
from tests.platform.factories import png_bytes

pytestmark = pytest.mark.django_db


def catalog(folder: Path, *file_locs: str) -> Path:
    rows = [f"G{i},{10 + i},5,{loc}" for i, loc in enumerate(file_locs)]
    path = folder / "cat.csv"
    path.write_text("\n".join(["id_str,ra,dec,file_loc", *rows]) + "\n")
    return path


def refused(folder: Path, images: Path, *file_locs: str) -> list[tuple[int, str, str]]:
    with pytest.raises(CatalogError) as caught:
        import_catalog(catalog_path=catalog(folder, *file_locs), images_dir=images)
    assert Galaxy.objects.count() == 0
    return [(e.row, e.id_str, e.message) for e in caught.value.errors]


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "good.png").write_bytes(png_bytes(size=24))
    return folder


def test_paths_outside_the_images_folder_are_refused(tmp_path, images):
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes(size=24, colour=(200, 0, 0)))
    (images / "sub").mkdir()
    (images / "link.png").symlink_to(secret)
    (images / "sub" / "inner.png").symlink_to(images / "good.png")  # a link that stays inside is fine
    (images / "zero.png").symlink_to("/dev/zero")
    errors = refused(tmp_path, images, "good.png", str(secret), "../secret.png", "sub/../../secret.png",
                     "link.png", "sub/inner.png", "/dev/zero", "zero.png")
    assert [(row, id_str) for row, id_str, _ in errors] == [(2, "G1"), (3, "G2"), (4, "G3"), (5, "G4"), (7, "G6"),
                                                            (8, "G7")]
    inside, outside = "must be a path inside the images folder", "leads outside the images folder"
    assert [inside if inside in message else outside if outside in message else message
            for _, _, message in errors] == [inside, inside, inside, outside, inside, outside]


def test_a_named_pipe_is_refused_without_opening_it(tmp_path, images):
    os.mkfifo(images / "pipe.png")

    def hung(signum, frame):
        raise AssertionError("the import blocked on the named pipe")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        errors = refused(tmp_path, images, "good.png", "pipe.png")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert errors == [(2, "G1", "pipe.png is not a regular file")]


def fits_header_block(width: int, height: int) -> bytes:
    header = fits.Header([("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 2), ("NAXIS1", width), ("NAXIS2", height)])
    return header.tostring().encode()


def gzip_bomb(path: Path, *, expanded_bytes: int) -> int:
    """A .fits.gz of a float image of zeros: the same 16 MiB member repeated (gzip readers
    concatenate members), so it is built in well under a second. Returns its compressed size."""
    member = gzip.compress(bytes(16 * 2**20), compresslevel=9)
    side = int((expanded_bytes / 4) ** 0.5)
    with path.open("wb") as out:
        out.write(gzip.compress(fits_header_block(side, side)))
        for _ in range(expanded_bytes // (16 * 2**20)):
            out.write(member)
    return path.stat().st_size


def test_a_gzip_bomb_is_refused_without_expanding_it(tmp_path, images, settings):
    size = gzip_bomb(images / "bomb.fits.gz", expanded_bytes=2 * 2**30)
    assert size < 3 * 2**20
    settings.IMPORT_MAX_DECOMPRESSED_BYTES = 32 * 2**20
    tracemalloc.start()
    try:
        errors = refused(tmp_path, images, "bomb.fits.gz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert errors == [(1, "G0", "bomb.fits.gz: decompresses to more than the 32.0 MB allowed")]
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MB: the bomb was expanded"


def test_a_fits_image_with_too_many_pixels_is_refused_from_its_header(tmp_path, images, settings):
    """Within the byte caps but over the pixel limit (a cube of 3 planes counts 3 times)."""
    settings.IMPORT_MAX_PIXELS = 100 * 100
    fits.PrimaryHDU(np.zeros((3, 60, 60), dtype=np.float32)).writeto(images / "cube.fits")
    errors = refused(tmp_path, images, "cube.fits")
    assert errors == [(1, "G0", "cube.fits: image: 60x60x3 pixels, more than the 10,000 allowed")]


def header_only_png(width: int, height: int) -> bytes:
    """A PNG that declares width x height: its header and an empty first data chunk, which is
    all a reader sees before decoding pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def test_a_12000_square_png_is_refused_by_its_pixel_count(tmp_path, images):
    (images / "huge.png").write_bytes(header_only_png(12000, 12000))
    with pytest.warns(Image.DecompressionBombWarning), Image.open(images / "huge.png") as image:
        assert image.size == (12000, 12000)  # what the file claims, read from its header
    errors = refused(tmp_path, images, "good.png", "huge.png")
    assert errors == [(2, "G1", "huge.png: 12000x12000 pixels, more than the 25,000,000 allowed")]


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path, images, settings):
    settings.IMPORT_MAX_FILE_BYTES = 4096
    (images / "big.png").write_bytes(png_bytes(size=24) + bytes(5000))
    total = (images / "big.png").stat().st_size
    errors = refused(tmp_path, images, "good.png", "big.png")
    assert errors == [(2, "G1", f"big.png is {total:,} bytes, more than the 4,096 bytes allowed")]


def test_large_images_are_shown_shrunk_and_the_fits_source_is_kept_whole(tmp_path, images, settings):
    settings.DISPLAY_IMAGE_MAX_PX = 512
    wide = io.BytesIO()
    Image.new("RGB", (1024, 600), (30, 60, 90)).save(wide, format="PNG")
    (images / "wide.png").write_bytes(wide.getvalue())
    yy, xx = np.mgrid[0:700, 0:700]
    plane = (np.exp(-((xx - 350) ** 2 + (yy - 350) ** 2) / 2000.0) + np.random.default_rng(0).normal(0, 0.01, (700, 700)))
    fits.PrimaryHDU(plane.astype(np.float32)).writeto(images / "big.fits")
    (images / "small.png").write_bytes(png_bytes(size=24))
    import_catalog(catalog_path=catalog(tmp_path, "wide.png", "big.fits", "small.png"), images_dir=images)

    wide_galaxy, fits_galaxy, small_galaxy = (Galaxy.objects.get(id_str=f"G{i}") for i in range(3))
    assert Image.open(wide_galaxy.image).size == (512, 300)
    assert Image.open(fits_galaxy.image).size == (512, 512)
    assert fits_galaxy.fits_source.read() == (images / "big.fits").read_bytes()
    assert small_galaxy.image.read() == (images / "small.png").read_bytes()  # small images are stored as they came
