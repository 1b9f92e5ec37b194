"""import_catalog: validation by row, atomic batches, idempotent re-runs, FITS and CSV catalogs."""

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from django.core.management import CommandError, call_command
from PIL import Image

from classifications.models import SubjectStatus
from galaxies.models import Galaxy
from galaxies.services import IMPORT_KEY, CatalogError, import_catalog
from tests.platform.factories import png_bytes
from workflows.models import Workflow

pytestmark = pytest.mark.django_db


def write_images(folder: Path, names: list[str]) -> None:
    for index, name in enumerate(names):
        (folder / name).write_bytes(png_bytes(size=24, colour=(index * 20 % 255, 40, 90)))


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def media_files(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


@pytest.fixture
def five_rows(tmp_path):
    write_images(tmp_path, [f"g{i}.png" for i in range(5)])
    rows = [f"G{i},{10 + i},{-5 + i},g{i}.png,{i * 0.1}" for i in range(5)]
    return write_csv(tmp_path / "cat.csv", "id_str,ra,dec,file_loc,redshift", rows), tmp_path


def test_import_creates_galaxies_with_metadata_and_statuses(five_rows):
    catalog, folder = five_rows
    report = import_catalog(catalog_path=catalog, images_dir=folder, survey="Test", pixel_scale=0.3, batch_size=2)
    assert (report.created, report.updated, report.skipped) == (5, 0, 0)
    galaxy = Galaxy.objects.get(id_str="G3")
    assert (galaxy.ra, galaxy.dec, galaxy.survey, galaxy.pixel_scale) == (13.0, -2.0, "Test", 0.3)
    assert galaxy.metadata["redshift"] == pytest.approx(0.3)
    assert galaxy.metadata[IMPORT_KEY]["row"] == 4
    assert galaxy.image.read() == (folder / "g3.png").read_bytes()
    assert SubjectStatus.objects.filter(galaxy=galaxy).count() == Workflow.objects.count() > 0


def test_rerun_is_idempotent_and_changed_rows_are_updated(five_rows, settings):
    catalog, folder = five_rows
    import_catalog(catalog_path=catalog, images_dir=folder)
    files_before = sorted(media_files(settings))
    again = import_catalog(catalog_path=catalog, images_dir=folder)
    assert (again.created, again.updated, again.skipped) == (0, 0, 5)
    assert sorted(media_files(settings)) == files_before
    assert Galaxy.objects.count() == 5
    assert SubjectStatus.objects.count() == 5 * Workflow.objects.count()

    (folder / "g1.png").write_bytes(png_bytes(size=24, colour=(250, 0, 0)))
    changed = import_catalog(catalog_path=catalog, images_dir=folder)
    assert (changed.created, changed.updated, changed.skipped) == (0, 1, 4)
    assert Galaxy.objects.get(id_str="G1").image.read() == (folder / "g1.png").read_bytes()


def test_bad_row_in_the_middle_writes_nothing_and_names_the_row(tmp_path, settings):
    write_images(tmp_path, ["a.png", "c.png"])
    (tmp_path / "b.png").write_bytes(b"not an image at all")
    catalog = write_csv(tmp_path / "cat.csv", "id_str,ra,dec,file_loc",
                        ["A,1,1,a.png", "B,2,2,b.png", "C,3,3,c.png", "D,4,4,missing.png"])
    with pytest.raises(CatalogError) as caught:
        import_catalog(catalog_path=catalog, images_dir=tmp_path, batch_size=1)
    assert [(e.row, e.id_str) for e in caught.value.errors] == [(2, "B"), (4, "D")]
    assert "unreadable image" in caught.value.errors[0].message
    assert "not found" in caught.value.errors[1].message
    assert Galaxy.objects.count() == 0
    assert media_files(settings) == []


@pytest.mark.parametrize(("ra", "dec", "expected"), [
    ("nan", "1", "ra is missing"), ("", "1", "ra is missing"), ("10", "91", "dec 91.0 outside"),
    ("360", "0", "ra 360.0 outside"), ("abc", "0", "ra is not a number"),
])
def test_bad_coordinates_are_rejected(tmp_path, ra, dec, expected):
    write_images(tmp_path, ["a.png", "b.png"])
    catalog = write_csv(tmp_path / "cat.csv", "id_str,ra,dec,file_loc", ["A,1,1,a.png", f"B,{ra},{dec},b.png"])
    with pytest.raises(CatalogError) as caught:
        import_catalog(catalog_path=catalog, images_dir=tmp_path)
    [error] = caught.value.errors
    assert (error.row, error.id_str) == (2, "B") and expected in error.message
    assert not Galaxy.objects.exists()


def test_duplicate_id_in_catalog_names_both_rows(tmp_path):
    write_images(tmp_path, ["a.png", "b.png", "c.png"])
    catalog = write_csv(tmp_path / "cat.csv", "id_str,ra,dec,file_loc", ["A,1,1,a.png", "B,2,2,b.png", "A,3,3,c.png"])
    with pytest.raises(CatalogError) as caught:
        import_catalog(catalog_path=catalog, images_dir=tmp_path)
    assert [str(e) for e in caught.value.errors] == ["row 3 (A): duplicate id_str (first at row 1)"]


def test_missing_required_column_is_a_clear_command_error(tmp_path):
    write_images(tmp_path, ["a.png"])
    catalog = write_csv(tmp_path / "cat.csv", "name,ra,dec,file_loc", ["A,1,1,a.png"])
    with pytest.raises(CommandError, match="cat.csv: missing required column 'id_str'"):
        call_command("import_galaxies", str(catalog), "--images", str(tmp_path), verbosity=0)


def test_command_lists_bad_rows(tmp_path):
    write_images(tmp_path, ["a.png"])
    catalog = write_csv(tmp_path / "cat.csv", "id_str,ra,dec,file_loc", ["A,1,1,a.png", "B,1,100,a.png"])
    with pytest.raises(CommandError, match=r"row 2 \(B\): dec 100.0 outside"):
        call_command("import_galaxies", str(catalog), "--images", str(tmp_path), verbosity=0)


def test_failed_write_leaves_no_rows_or_files(five_rows, settings):
    catalog, folder = five_rows
    from galaxies.signals import galaxies_saved

    def fail(**kwargs):
        raise RuntimeError("database went away")

    galaxies_saved.connect(fail, dispatch_uid="test-failing-receiver")
    try:
        with pytest.raises(RuntimeError):
            import_catalog(catalog_path=catalog, images_dir=folder)
    finally:
        galaxies_saved.disconnect(dispatch_uid="test-failing-receiver")
    assert not Galaxy.objects.exists()
    assert media_files(settings) == []


def test_ra_dec_from_iau_names_when_columns_are_missing(tmp_path):
    write_images(tmp_path, ["a.png", "b.png"])
    catalog = write_csv(tmp_path / "cat.csv", "id_str,file_loc",
                        ["J000411.19+020924.0,a.png", "J005130.07-011511.2,b.png"])
    report = import_catalog(catalog_path=catalog, images_dir=tmp_path)
    assert report.radec_from_names == 2
    south = Galaxy.objects.get(id_str="J005130.07-011511.2")
    assert south.ra == pytest.approx(15 * (0 + 51 / 60 + 30.07 / 3600))
    assert south.dec == pytest.approx(-(1 + 15 / 60 + 11.2 / 3600))


def test_fits_table_catalog(tmp_path):
    write_images(tmp_path, ["a.png", "b.png"])
    Table({"id_str": ["A", "B"], "ra": [10.5, 20.25], "dec": [-3.0, 4.0], "file_loc": ["a.png", "b.png"],
           "mag_r": [17.5, 18.25]}).write(tmp_path / "cat.fits")
    import_catalog(catalog_path=tmp_path / "cat.fits", images_dir=tmp_path)
    galaxy = Galaxy.objects.get(id_str="B")
    assert (galaxy.ra, galaxy.dec, galaxy.metadata["mag_r"]) == (20.25, 4.0, 18.25)


def synthetic_cube(path: Path, *, bands: str = "grz", size: int = 40) -> None:
    yy, xx = np.mgrid[0:size, 0:size]
    blob = np.exp(-((xx - size / 2) ** 2 + (yy - size / 2) ** 2) / 30.0)
    rng = np.random.default_rng(0)
    cube = np.stack([blob * (i + 1) + rng.normal(0, 0.01, blob.shape) for i in range(len(bands))]).astype(np.float32)
    header = fits.Header({"BANDS": bands, "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0,
                          "CRVAL2": 2.0, "CRPIX1": size / 2 + 0.5, "CRPIX2": size / 2 + 0.5,
                          "CD1_1": -7.2777e-5, "CD2_2": 7.2777e-5, "CD1_2": 0.0, "CD2_1": 0.0})
    fits.PrimaryHDU(cube, header=header).writeto(path)


def test_fits_cube_becomes_a_colour_image_and_is_kept(tmp_path):
    synthetic_cube(tmp_path / "cube.fits")
    (tmp_path / "broken.fits").write_bytes(b"SIMPLE  = T" + b" " * 100)
    catalog = write_csv(tmp_path / "cat.csv", "id_str,file_loc", ["C1,cube.fits"])
    report = import_catalog(catalog_path=catalog, images_dir=tmp_path)
    assert report.radec_from_wcs == 1
    galaxy = Galaxy.objects.get(id_str="C1")
    assert (galaxy.ra, galaxy.dec) == pytest.approx((150.0, 2.0), abs=1e-4)
    assert galaxy.pixel_scale == pytest.approx(0.262, rel=1e-3)
    image = np.asarray(Image.open(galaxy.image))
    assert image.shape == (40, 40, 3)
    assert image[20, 20].mean() > 150 > image[2, 2].mean()
    assert galaxy.fits_source.read() == (tmp_path / "cube.fits").read_bytes()

    bad = write_csv(tmp_path / "bad.csv", "id_str,ra,dec,file_loc", ["X,1,1,broken.fits"])
    with pytest.raises(CatalogError) as caught:
        import_catalog(catalog_path=bad, images_dir=tmp_path)
    assert caught.value.errors[0].row == 1 and "FITS" in caught.value.errors[0].message


@pytest.mark.shared_data
def test_decals_rings_subset(shared_data, tmp_path):
    rows = (shared_data / "decals_rings" / "catalog.csv").read_text().splitlines()[:21]
    catalog = write_csv(tmp_path / "first20.csv", rows[0], rows[1:])
    report = import_catalog(catalog_path=catalog, images_dir=shared_data / "decals_rings", survey="DECaLS DR5")
    assert (report.created, report.radec_from_names) == (20, 20)
    galaxy = Galaxy.objects.get(id_str="J000411.19+020924.0")
    assert galaxy.ra == pytest.approx(1.046625) and galaxy.dec == pytest.approx(2.1566667)
    assert galaxy.metadata["ring"] == 1 and "smooth-or-featured_featured-or-disk_fraction" in galaxy.metadata
    assert Image.open(galaxy.image).size == (424, 424)


@pytest.mark.shared_data
def test_decals_grz_fits_cubes(shared_data, tmp_path):
    catalog = write_csv(tmp_path / "cat.csv", "id_str,file_loc",
                        ["a,decals_grz_example_a.fits", "b,decals_grz_example_b.fits"])
    import_catalog(catalog_path=catalog, images_dir=shared_data / "fits")
    galaxy = Galaxy.objects.get(id_str="a")
    image = np.asarray(Image.open(galaxy.image)).astype(float)
    assert image.shape == (509, 509, 3)
    centre, sky = image[230:280, 230:280].mean(), np.median(image)
    assert centre > 100 and sky < 40  # bright galaxy on a dark sky
    assert galaxy.metadata[IMPORT_KEY]["bands"] == ["g", "r", "z"]
    assert galaxy.ra == pytest.approx(359.995016, abs=1e-5)


@pytest.mark.shared_data
def test_sdss_one_file_per_band(shared_data, tmp_path):
    catalog = write_csv(tmp_path / "cat.csv", "id_str,survey,file_loc_g,file_loc_r,file_loc_i",
                        ["field,SDSS,sdss_field_g.fits.bz2,sdss_field_r.fits.bz2,sdss_field_i.fits.bz2"])
    import_catalog(catalog_path=catalog, images_dir=shared_data / "fits")
    galaxy = Galaxy.objects.get(id_str="field")
    assert Image.open(galaxy.image).size == (512, 372)  # shown at most 512 px; the FITS is kept whole
    assert galaxy.fits_source.name.endswith(".fits.gz")
    with fits.open(io.BytesIO(gzip.decompress(galaxy.fits_source.read()))) as hdus:
        assert [h.name for h in hdus[1:]] == ["G", "R", "I"]
        assert hdus["R"].data.shape == (496, 682)
    assert galaxy.survey == "SDSS" and galaxy.pixel_scale > 0
