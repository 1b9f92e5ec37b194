"""Writes: importing a survey catalog of galaxies (JPEG/PNG or FITS cutouts). Every row of a
catalog is checked before anything is written; each batch is then written in one
transaction, and image files saved for a batch that fails are deleted."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.table import Table
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from tqdm import tqdm

from . import imaging
from .models import Galaxy
from .selectors import galaxies_by_id_str
from .signals import galaxies_saved

BAND_COLUMN = re.compile(r"^file_loc_(?P<band>[A-Za-z]{1,3})$")
FIELD_COLUMNS = {"id_str", "ra", "dec", "file_loc", "survey", "pixel_scale"}
IMPORT_KEY = "_import"  # metadata key for import bookkeeping (source files, checksum, row)


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based data row (the header is not counted)
    id_str: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row} ({self.id_str or 'no id_str'}): {self.message}"


class CatalogError(Exception):
    """The catalog cannot be imported; ``errors`` names the bad rows (empty for file-level errors)."""

    def __init__(self, message: str, *, errors: Sequence[RowError] = ()):
        super().__init__(message)
        self.message = message
        self.errors = list(errors)


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    radec_from_names: int = 0
    radec_from_wcs: int = 0
    galaxy_ids: list[int] = field(default_factory=list)


@dataclass
class PreparedGalaxy:
    """A galaxy ready to write: fields plus the bytes of its display image and FITS source."""

    id_str: str
    ra: float
    dec: float
    image_bytes: bytes
    image_ext: str
    survey: str = ""
    pixel_scale: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    is_simulated: bool = False
    fits_bytes: bytes | None = None
    fits_ext: str = ""

    @property
    def checksum(self) -> str:
        digest = hashlib.sha256(self.image_bytes)
        digest.update(self.fits_bytes or b"")
        return digest.hexdigest()


# --- reading the catalog --------------------------------------------------------------------

def read_catalog(path: Path) -> pd.DataFrame:
    """The catalog as a DataFrame of plain Python-friendly columns (CSV or FITS table)."""
    if not path.is_file():
        raise CatalogError(f"catalog not found: {path}")
    try:
        if imaging.is_fits_path(path):
            table = Table.read(path)
            table.remove_columns([name for name in table.colnames if len(table[name].shape) > 1])
            frame = table.to_pandas()
            for column in frame.columns:
                if frame[column].dtype == object:
                    frame[column] = frame[column].map(lambda v: v.decode() if isinstance(v, bytes) else v)
        else:
            frame = pd.read_csv(path, dtype={"id_str": str}, skipinitialspace=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc}") from exc
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame


@dataclass(frozen=True)
class _Layout:
    """Where each row's image files are: one ``file_loc`` (maybe with ``{band}``) or one column per band."""

    band_columns: dict[str, str]  # band -> column
    bands: list[str]
    has_radec: bool


def _layout(frame: pd.DataFrame, *, catalog_path: Path, bands: Sequence[str]) -> _Layout:
    columns = set(frame.columns)
    if "id_str" not in columns:
        raise CatalogError(f"{catalog_path.name}: missing required column 'id_str'")
    has_radec = {"ra", "dec"} <= columns
    if ("ra" in columns) != ("dec" in columns):
        raise CatalogError(f"{catalog_path.name}: has only one of the columns 'ra'/'dec'")
    band_columns = {m["band"]: c for c in frame.columns if (m := BAND_COLUMN.match(c))}
    if band_columns:
        return _Layout(band_columns=band_columns, bands=list(band_columns), has_radec=has_radec)
    if "file_loc" not in columns:
        raise CatalogError(f"{catalog_path.name}: missing required column 'file_loc' "
                           "(or one 'file_loc_<band>' column per band)")
    return _Layout(band_columns={}, bands=list(bands), has_radec=has_radec)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _inside(images_dir: Path, name: str) -> Path:
    """``name`` as a file under ``images_dir``: a catalog names files relative to --images, and
    one that reaches outside it (absolute, ``..``, or a symlink out) would copy any file the
    importing user can read into public media."""
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"{name!r} must be a path inside the images folder (no absolute paths or '..')")
    resolved = (images_dir / relative).resolve()
    if not resolved.is_relative_to(images_dir.resolve()):
        raise ValueError(f"{name!r} leads outside the images folder")
    return resolved


def _source_paths(record: dict[str, Any], *, layout: _Layout, images_dir: Path) -> tuple[list[Path], list[str]]:
    if layout.band_columns:
        names = [_text(record[column]) for column in layout.band_columns.values()]
        if not all(names):
            missing = [c for c, n in zip(layout.band_columns.values(), names, strict=True) if not n]
            raise ValueError(f"empty {', '.join(missing)}")
        return [_inside(images_dir, n) for n in names], layout.bands
    file_loc = _text(record["file_loc"])
    if not file_loc:
        raise ValueError("empty file_loc")
    if "{band}" in file_loc:
        if not layout.bands:
            raise ValueError("file_loc has a {band} pattern: give the bands with --bands, e.g. g,r,i")
        return [_inside(images_dir, file_loc.format(band=band)) for band in layout.bands], layout.bands
    return [_inside(images_dir, file_loc)], list(layout.bands)


def read_limits() -> imaging.ReadLimits:
    """The import's file, decompression, pixel and display-size limits (settings IMPORT_*)."""
    return imaging.ReadLimits(
        max_file_bytes=settings.IMPORT_MAX_FILE_BYTES, max_decompressed_bytes=settings.IMPORT_MAX_DECOMPRESSED_BYTES,
        max_pixels=settings.IMPORT_MAX_PIXELS, display_max_px=settings.DISPLAY_IMAGE_MAX_PX)


def _coordinate(record: dict[str, Any], name: str) -> float:
    raw = record[name]
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name} is not a number: {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} is missing or not finite")
    return value


def _optional_float(record: dict[str, Any], name: str) -> float | None:
    if not _text(record.get(name)):
        return None
    return _coordinate(record, name)


def _prepare_row(record: dict[str, Any], *, row: int, layout: _Layout, images_dir: Path, survey: str,
                 pixel_scale: float | None, catalog_name: str) -> tuple[PreparedGalaxy, str]:
    """Validate one row and render its display image; raises ValueError naming what is wrong.

    Returns the galaxy and where its coordinates came from ('columns', 'id_str' or 'wcs').
    """
    id_str = _text(record["id_str"])
    if not id_str:
        raise ValueError("empty id_str")
    if len(id_str) > Galaxy._meta.get_field("id_str").max_length:
        raise ValueError("id_str longer than 100 characters")
    paths, bands = _source_paths(record, layout=layout, images_dir=images_dir)
    limits = read_limits()

    fits_bytes, fits_ext, wcs_radec, wcs_scale = None, "", None, None
    try:
        if any(imaging.is_fits_path(p) for p in paths):
            if not all(imaging.is_fits_path(p) for p in paths):
                raise ValueError("mixes FITS and non-FITS files")
            fits_bands, raw = imaging.read_fits_bands(paths, bands or None, limits=limits)
            image_bytes, image_ext = imaging.encode_jpeg(imaging.fits_to_rgb(fits_bands), limits=limits), "jpg"
            if len(paths) == 1:
                fits_bytes, fits_ext = raw[0], paths[0].name.split(".", 1)[1].lower()
            else:
                fits_bytes, fits_ext = imaging.multi_band_fits_bytes(fits_bands), "fits.gz"
            wcs_radec, wcs_scale = fits_bands.centre_radec(), fits_bands.pixel_scale_arcsec
            bands = fits_bands.names
        elif len(paths) > 1:
            raise ValueError("one file per band needs FITS files")
        else:
            image_bytes, image_ext, _ = imaging.read_raster(paths[0], limits=limits)
    except imaging.ImageReadError as exc:
        raise ValueError(str(exc)) from exc

    if layout.has_radec:
        ra, dec, origin = _coordinate(record, "ra"), _coordinate(record, "dec"), "columns"
    elif (from_name := imaging.radec_from_iau_name(id_str)) is not None:
        (ra, dec), origin = from_name, "id_str"
    elif wcs_radec is not None:
        (ra, dec), origin = wcs_radec, "wcs"
    else:
        raise ValueError("no ra/dec columns, id_str is not an IAU name (Jhhmmss.ss+ddmmss.s) and the file has no WCS")
    if not 0.0 <= ra < 360.0:
        raise ValueError(f"ra {ra} outside [0, 360)")
    if not -90.0 <= dec <= 90.0:
        raise ValueError(f"dec {dec} outside [-90, 90]")

    scale = _optional_float(record, "pixel_scale") or pixel_scale or wcs_scale
    if scale is not None and scale <= 0:
        raise ValueError(f"pixel_scale {scale} must be positive")

    metadata = {k: _json_value(v) for k, v in record.items()
                if k not in FIELD_COLUMNS and not BAND_COLUMN.match(k)}
    prepared = PreparedGalaxy(
        id_str=id_str, ra=ra, dec=dec, survey=_text(record.get("survey")) or survey, pixel_scale=scale,
        metadata=metadata, image_bytes=image_bytes, image_ext=image_ext, fits_bytes=fits_bytes, fits_ext=fits_ext)
    prepared.metadata[IMPORT_KEY] = {
        "catalog": catalog_name, "row": row, "sources": [p.name for p in paths], "bands": bands,
        "radec_from": origin}
    return prepared, origin


# --- writing -------------------------------------------------------------------------------

def _file_stem(id_str: str, checksum: str) -> str:
    # The checksum in the name busts browser caches when an import replaces the image.
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', id_str).strip('._') or 'galaxy'}-{checksum[:10]}"


def _unchanged(galaxy: Galaxy, prepared: PreparedGalaxy) -> bool:
    return (galaxy.ra, galaxy.dec, galaxy.survey, galaxy.pixel_scale, galaxy.metadata, galaxy.is_simulated) == (
        prepared.ra, prepared.dec, prepared.survey, prepared.pixel_scale, prepared.metadata, prepared.is_simulated)


def write_galaxies(*, prepared: Sequence[PreparedGalaxy]) -> tuple[list[int], int, int, int]:
    """Create or update galaxies in one transaction; returns (ids, created, updated, skipped).

    A galaxy with the same ``id_str`` and identical fields is skipped; new image bytes replace
    its files (the old files are deleted once the transaction commits). If anything fails the
    files saved so far are deleted, so a failed batch leaves nothing behind.
    """
    saved: list[str] = []
    replaced: list[str] = []

    def save(folder: str, stem: str, ext: str, data: bytes) -> str:
        name = default_storage.save(f"{folder}/{stem}.{ext}", ContentFile(data))
        saved.append(name)
        return name

    try:
        with transaction.atomic():
            existing = galaxies_by_id_str(id_strs=[p.id_str for p in prepared])
            new, changed, skipped, ids = [], [], 0, []
            for item in prepared:
                item.metadata = {**item.metadata, IMPORT_KEY: {**item.metadata.get(IMPORT_KEY, {}),
                                                               "checksum": item.checksum}}
                galaxy = existing.get(item.id_str)
                old_checksum = (galaxy.metadata.get(IMPORT_KEY) or {}).get("checksum") if galaxy else None
                if galaxy is not None and old_checksum == item.checksum and _unchanged(galaxy, item):
                    skipped += 1
                    ids.append(galaxy.id)
                    continue
                if galaxy is None:
                    galaxy = Galaxy(id_str=item.id_str)
                    new.append(galaxy)
                else:
                    changed.append(galaxy)
                if old_checksum != item.checksum or not galaxy.image:
                    stem = _file_stem(item.id_str, item.checksum)
                    replaced += [f.name for f in (galaxy.image, galaxy.fits_source) if f]
                    galaxy.image = save("galaxies", stem, item.image_ext, item.image_bytes)
                    galaxy.fits_source = save("fits", stem, item.fits_ext, item.fits_bytes) if item.fits_bytes else ""
                galaxy.ra, galaxy.dec, galaxy.survey = item.ra, item.dec, item.survey
                galaxy.pixel_scale, galaxy.metadata, galaxy.is_simulated = item.pixel_scale, item.metadata, item.is_simulated
                galaxy.full_clean(validate_unique=False, validate_constraints=False)
            created = Galaxy.objects.bulk_create(new)
            Galaxy.objects.bulk_update(changed, ["ra", "dec", "survey", "pixel_scale", "metadata", "is_simulated",
                                                 "image", "fits_source"])
            ids += [g.id for g in created] + [g.id for g in changed]
            galaxies_saved.send(sender=Galaxy, galaxy_ids=ids)
            transaction.on_commit(lambda: [default_storage.delete(name) for name in replaced])
    except BaseException:
        for name in saved:
            default_storage.delete(name)
        raise
    return ids, len(created), len(changed), skipped


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def import_catalog(*, catalog_path: Path, images_dir: Path, survey: str = "", pixel_scale: float | None = None,
                   bands: Sequence[str] = (), batch_size: int = 200, progress: bool = False) -> ImportReport:
    """Import a catalog of galaxies; see docs/import.md for the columns and image layouts.

    All rows are checked first (files readable, coordinates valid, ids unique); any bad row
    raises ``CatalogError`` listing every bad row, and nothing is written. Then each batch of
    ``batch_size`` rows is written atomically. Re-running is idempotent.
    """
    if batch_size < 1:
        raise CatalogError("batch size must be at least 1")
    if pixel_scale is not None and pixel_scale <= 0:
        raise CatalogError("pixel scale must be positive")
    catalog_path, images_dir = Path(catalog_path), Path(images_dir)
    if not images_dir.is_dir():
        raise CatalogError(f"images folder not found: {images_dir}")
    frame = read_catalog(catalog_path)
    layout = _layout(frame, catalog_path=catalog_path, bands=bands)
    records = frame.to_dict(orient="records")
    options = dict(layout=layout, images_dir=images_dir, survey=survey, pixel_scale=pixel_scale,
                   catalog_name=catalog_path.name)

    errors: list[RowError] = []
    first_row: dict[str, int] = {}
    for row, record in enumerate(tqdm(records, desc="checking", unit="row", disable=not progress), start=1):
        id_str = _text(record.get("id_str"))
        if id_str in first_row:
            errors.append(RowError(row, id_str, f"duplicate id_str (first at row {first_row[id_str]})"))
            continue
        if id_str:
            first_row[id_str] = row
        try:
            _prepare_row(record, row=row, **options)
        except ValueError as exc:
            errors.append(RowError(row, id_str, str(exc)))
    if errors:
        raise CatalogError(f"{catalog_path.name}: {len(errors)} bad row(s), nothing imported", errors=errors)

    report = ImportReport(rows=len(records))
    bar = tqdm(total=len(records), desc="importing", unit="galaxy", disable=not progress)
    for offset, batch in zip(range(0, len(records), batch_size), _batches(records, batch_size), strict=True):
        prepared = []
        for row, record in enumerate(batch, start=offset + 1):
            try:
                galaxy, origin = _prepare_row(record, row=row, **options)
            except ValueError as exc:  # a file changed since the check
                raise CatalogError(f"{catalog_path.name}: row {row} failed during import; rows up to {offset} "
                                   "were imported, re-run after fixing it",
                                   errors=[RowError(row, _text(record.get("id_str")), str(exc))]) from exc
            report.radec_from_names += origin == "id_str"
            report.radec_from_wcs += origin == "wcs"
            prepared.append(galaxy)
        ids, created, updated, skipped = write_galaxies(prepared=prepared)
        report.galaxy_ids += ids
        report.created, report.updated, report.skipped = (
            report.created + created, report.updated + updated, report.skipped + skipped)
        bar.update(len(batch))
    bar.close()
    return report

