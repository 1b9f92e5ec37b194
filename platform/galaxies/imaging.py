"""Image helpers for the import: read JPEG/PNG and FITS cutouts, turn multi-band FITS into a
colour display image (Lupton et al. 2004 asinh RGB), parse IAU names. No Django here."""

from __future__ import annotations

import bz2
import gzip
import io
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.visualization import make_lupton_rgb
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales
from PIL import Image

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.bz2", ".fit.bz2")
RASTER_FORMATS = {"JPEG": "jpg", "PNG": "png"}

# Effective wavelengths (nm): bands are ordered red -> green -> blue from these.
BAND_WAVELENGTH_NM = {"u": 355, "g": 475, "r": 620, "i": 750, "z": 900, "y": 1000,
                      "Y": 1020, "J": 1250, "H": 1650, "K": 2200, "Ks": 2150}
# Relative weights for calibrated fluxes (nanomaggies): the Legacy Surveys viewer's grz
# weights (legacypipe's sdss_rgb), extended to u and i by interpolation. They balance the
# colours of typical galaxies; an unknown band gets 1.
BAND_WEIGHT = {"u": 8.0, "g": 6.0, "r": 3.4, "i": 2.6, "z": 2.2, "y": 2.0}

# Display stretch, in units of the combined sky noise: the sky sits just above black, and
# the asinh keeps bright bulges from saturating while faint arms stay visible.
SKY_FLOOR_SIGMA = 0.5
LINEAR_RANGE_SIGMA = 12.0
ASINH_Q = 8.0

IAU_NAME = re.compile(
    r"^(?:[A-Za-z0-9_ ]*?\s*)?J(?P<h>\d{2})(?P<m>\d{2})(?P<s>\d{2}(?:\.\d+)?)"
    r"(?P<sign>[+-])(?P<d>\d{2})(?P<dm>\d{2})(?P<ds>\d{2}(?:\.\d+)?)$")


class ImageReadError(ValueError):
    """A file that is missing, unreadable or not an image of the expected kind."""


@dataclass(frozen=True)
class ReadLimits:
    """What one import file may cost. Catalogs come from outside: without these a named pipe
    hangs the import, a 2 MB gzip of zeros takes gigabytes, and a 12000² image goes to volunteers."""

    max_file_bytes: int
    max_decompressed_bytes: int
    max_pixels: int  # all planes of one file together
    display_max_px: int  # longest side of the image volunteers see; the FITS source is kept whole


def _megabytes(count: int) -> str:
    return f"{count / 2**20:.1f} MB" if count >= 2**20 else f"{count:,} bytes"


def read_regular_file(path: Path, *, limits: ReadLimits) -> bytes:
    """The bytes of a regular file no larger than the limit. The type is checked before
    opening (opening a FIFO blocks until a writer comes) and again on the open descriptor,
    opened non-blocking, in case the path was swapped in between."""
    try:
        before = os.stat(path)
    except FileNotFoundError as exc:
        raise ImageReadError(f"file not found: {path.name}") from exc
    except OSError as exc:
        raise ImageReadError(f"cannot read {path.name}: {exc.strerror}") from exc
    if not stat.S_ISREG(before.st_mode):
        raise ImageReadError(f"{path.name} is not a regular file")
    if before.st_size > limits.max_file_bytes:
        raise ImageReadError(f"{path.name} is {_megabytes(before.st_size)}, more than the "
                             f"{_megabytes(limits.max_file_bytes)} allowed")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ImageReadError(f"cannot read {path.name}: {exc.strerror}") from exc
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ImageReadError(f"{path.name} is not a regular file")
        data = handle.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise ImageReadError(f"{path.name} grew past the {_megabytes(limits.max_file_bytes)} allowed while read")
    return data


def _check_pixels(shape: tuple[int, ...], label: str, limits: ReadLimits) -> None:
    """``shape`` in numpy order (planes, rows, columns), from a header, before any pixel is decoded."""
    if int(np.prod(shape, dtype=np.int64)) > limits.max_pixels:
        size = "x".join(str(n) for n in reversed(shape))
        raise ImageReadError(f"{label}: {size} pixels, more than the {limits.max_pixels:,} allowed")


def fit_for_display(image: Image.Image, *, limits: ReadLimits) -> Image.Image:
    """The image shrunk (aspect kept) so its longest side is at most ``display_max_px``."""
    if max(image.size) <= limits.display_max_px:
        return image
    image = image.copy()
    image.thumbnail((limits.display_max_px, limits.display_max_px), Image.Resampling.LANCZOS)
    return image


def is_fits_path(path: str | Path) -> bool:
    return str(path).lower().endswith(FITS_SUFFIXES)


def radec_from_iau_name(name: str) -> tuple[float, float] | None:
    """RA/Dec in degrees from an IAU-style name such as ``J000411.19+020924.0``, else None.

    IAU names truncate the coordinates, so the result is good to ~0.01 s / 0.1 arcsec.
    """
    match = IAU_NAME.match(name.strip())
    if not match:
        return None
    ra = 15.0 * (int(match["h"]) + int(match["m"]) / 60 + float(match["s"]) / 3600)
    dec = int(match["d"]) + int(match["dm"]) / 60 + float(match["ds"]) / 3600
    if int(match["m"]) >= 60 or float(match["s"]) >= 60 or int(match["dm"]) >= 60 or float(match["ds"]) >= 60:
        return None
    return ra, -dec if match["sign"] == "-" else dec


def read_raster(path: Path, *, limits: ReadLimits) -> tuple[bytes, str, tuple[int, int]]:
    """The display bytes, extension (jpg/png) and size, after fully decoding the file once.

    The pixel count is checked from the header before decoding; an image larger than the
    display size is stored shrunk (re-encoded in its own format), a smaller one as it came.
    """
    data = read_regular_file(path, limits=limits)
    try:
        with warnings.catch_warnings():  # Pillow's bomb warning: the pixel check below words it per row
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            image_format = image.format
            if image_format not in RASTER_FORMATS:
                raise ImageReadError(f"{path.name} is {image_format}, expected JPEG or PNG (or FITS)")
            _check_pixels(image.size[::-1], path.name, limits)
            image.load()
            shown = fit_for_display(image, limits=limits)
            if shown is not image:
                buffer = io.BytesIO()
                if image_format == "JPEG":
                    shown.convert("RGB").save(buffer, format="JPEG", quality=92)
                else:
                    shown.save(buffer, format="PNG")
                data = buffer.getvalue()
            size = shown.size
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"unreadable image {path.name}: {exc}") from exc
    return data, RASTER_FORMATS[image_format], size


@dataclass
class FitsBands:
    """Image planes of one subject, bluest first, with the WCS of the first plane."""

    names: list[str]
    planes: list[np.ndarray]
    headers: list[fits.Header]
    wcs: WCS | None

    @property
    def pixel_scale_arcsec(self) -> float | None:
        if self.wcs is None or not self.wcs.has_celestial:
            return None
        return float(np.mean(proj_plane_pixel_scales(self.wcs.celestial)) * 3600.0)

    def centre_radec(self) -> tuple[float, float] | None:
        if self.wcs is None or not self.wcs.has_celestial:
            return None
        ny, nx = self.planes[0].shape
        sky = self.wcs.celestial.pixel_to_world_values((nx - 1) / 2, (ny - 1) / 2)
        return float(sky[0]) % 360.0, float(sky[1])


def _decompress(data: bytes, name: str, limits: ReadLimits) -> bytes:
    """Stream-decompress .gz/.bz2 up to the byte cap: a bomb is refused once it passes the
    cap, never expanded whole."""
    lower = name.lower()
    if lower.endswith(".gz"):
        stream = gzip.GzipFile(fileobj=io.BytesIO(data))
    elif lower.endswith(".bz2"):
        stream = bz2.BZ2File(io.BytesIO(data))
    else:
        return data
    with stream:
        expanded = stream.read(limits.max_decompressed_bytes + 1)
    if len(expanded) > limits.max_decompressed_bytes:
        raise ImageReadError(f"decompresses to more than the {_megabytes(limits.max_decompressed_bytes)} allowed")
    return expanded


def _open_fits_bytes(data: bytes, name: str, limits: ReadLimits) -> fits.HDUList:
    return fits.open(io.BytesIO(_decompress(data, name, limits)), memmap=False)


def _first_image_hdu(hdus: fits.HDUList, limits: ReadLimits) -> fits.ImageHDU | fits.PrimaryHDU:
    for hdu in hdus:
        if not hdu.is_image or len(hdu.shape) < 2:
            continue
        # From the header, before the data is read (a tile-compressed HDU expands on access).
        _check_pixels(tuple(hdu.shape), "image", limits)
        if hdu.data is not None and hdu.data.ndim >= 2:
            return hdu
    raise ImageReadError("no image data in any HDU")


def _wcs_or_none(header: fits.Header) -> WCS | None:
    try:
        with warnings.catch_warnings():  # deprecated-keyword fixes (RADECSYS) are harmless here
            warnings.simplefilter("ignore")
            wcs = WCS(header, naxis=2)
    except Exception:  # noqa: BLE001 - a broken WCS only costs us the pixel scale
        return None
    return wcs if wcs.has_celestial else None


def _check_plane(plane: np.ndarray, label: str) -> np.ndarray:
    plane = np.asarray(plane, dtype=np.float32)
    if plane.shape[0] < 8 or plane.shape[1] < 8:
        raise ImageReadError(f"{label}: image too small ({plane.shape[1]}x{plane.shape[0]})")
    finite = np.isfinite(plane)
    if finite.mean() < 0.5:
        raise ImageReadError(f"{label}: mostly NaN/inf pixels")
    if not finite.all():
        plane = np.where(finite, plane, np.float32(0.0))
    return plane


def read_fits_bands(paths: list[Path], band_names: list[str] | None = None, *,
                    limits: ReadLimits) -> tuple[FitsBands, list[bytes]]:
    """Read one FITS file (2-D image or a cube of planes) or one file per band.

    Band names come from ``band_names`` (one per file), else the cube's ``BANDn``/``BANDS``
    keywords. Returns the bands and the raw bytes of each file (kept as the FITS source).
    """
    raw, names, planes, headers = [], [], [], []
    for index, path in enumerate(paths):
        data = read_regular_file(path, limits=limits)
        try:
            with _open_fits_bytes(data, path.name, limits) as hdus:
                hdu = _first_image_hdu(hdus, limits)
                cube = np.asarray(hdu.data, dtype=np.float32)
                header = hdu.header.copy()
        except ImageReadError as exc:
            raise ImageReadError(f"{path.name}: {exc}") from exc
        except (OSError, ValueError, TypeError, EOFError) as exc:
            raise ImageReadError(f"unreadable FITS {path.name}: {exc}") from exc
        raw.append(data)
        if cube.ndim == 2:
            cube = cube[np.newaxis]
        elif cube.ndim > 3:
            raise ImageReadError(f"{path.name}: {cube.ndim}-D data, expected 2-D or a 3-D cube of bands")
        for plane_index, plane in enumerate(cube):
            label = f"{path.name}[{plane_index}]"
            planes.append(_check_plane(plane, label))
            headers.append(header)
            if band_names and len(paths) > 1:
                names.append(band_names[index])
            else:
                names.append(str(header.get(f"BAND{plane_index}", "")).strip()
                             or (header.get("BANDS", "") or "")[plane_index:plane_index + 1]
                             or (band_names[plane_index] if band_names and plane_index < len(band_names) else "")
                             or f"band{plane_index}")
    shapes = {plane.shape for plane in planes}
    if len(shapes) > 1:
        raise ImageReadError(f"bands have different shapes {sorted(shapes)}; reproject them to one grid first")
    return FitsBands(names=names, planes=planes, headers=headers, wcs=_wcs_or_none(headers[0])), raw


def _red_to_blue(bands: FitsBands) -> list[int]:
    known = all(name in BAND_WAVELENGTH_NM for name in bands.names)
    order = list(range(len(bands.names)))
    if known:
        order.sort(key=lambda i: BAND_WAVELENGTH_NM[bands.names[i]])
    # Unknown names: trust the given order, which by convention runs blue -> red (g, r, z).
    return order[::-1]


def fits_to_rgb(bands: FitsBands) -> np.ndarray:
    """A uint8 RGB display image (north up as stored, y flipped to screen order).

    Each band is sky-subtracted (sigma-clipped median), weighted (``BAND_WEIGHT``), and the
    three reddest-to-bluest planes are combined with the Lupton asinh stretch, whose linear
    range is set from the combined sky noise so every cutout gets a comparable look.
    """
    order = _red_to_blue(bands)
    if len(order) > 3:
        order = [order[0], order[len(order) // 2], order[-1]]
    scaled = []
    for i in order:
        plane = bands.planes[i]
        _, median, _ = sigma_clipped_stats(plane, sigma=3.0, maxiters=5)
        scaled.append((plane - np.float32(median)) * np.float32(BAND_WEIGHT.get(bands.names[i], 1.0)))
    while len(scaled) < 3:  # one band: grey; two bands: green is their mean
        scaled.insert(1, np.mean(scaled, axis=0) if len(scaled) == 2 else scaled[0])
    intensity = np.mean(scaled, axis=0)
    _, _, noise = sigma_clipped_stats(intensity, sigma=3.0, maxiters=5)
    noise = float(noise) if np.isfinite(noise) and noise > 0 else float(np.std(intensity)) or 1.0
    rgb = make_lupton_rgb(*scaled, minimum=-SKY_FLOOR_SIGMA * noise,
                          stretch=LINEAR_RANGE_SIGMA * noise, Q=ASINH_Q)
    return np.ascontiguousarray(rgb[::-1])


def encode_jpeg(rgb: np.ndarray, *, quality: int = 92, limits: ReadLimits | None = None) -> bytes:
    """JPEG bytes of an RGB array, shrunk to the display size when ``limits`` are given."""
    image = Image.fromarray(rgb)
    if limits is not None:
        image = fit_for_display(image, limits=limits)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


def multi_band_fits_bytes(bands: FitsBands) -> bytes:
    """One gzipped multi-extension FITS with an image HDU per band (EXTNAME = band)."""
    hdus = fits.HDUList([fits.PrimaryHDU()])
    for name, plane, header in zip(bands.names, bands.planes, bands.headers, strict=True):
        hdu = fits.ImageHDU(data=plane, header=header.copy(), name=name.upper())
        hdu.header["FILTER"] = name
        hdus.append(hdu)
    buffer = io.BytesIO()
    hdus.writeto(buffer)
    return gzip.compress(buffer.getvalue(), compresslevel=6)
