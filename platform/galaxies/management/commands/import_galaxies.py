"""Import a catalog of galaxies (CSV or FITS table) with JPEG/PNG or FITS cutouts."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from galaxies.services import CatalogError, import_catalog

MAX_ERRORS_SHOWN = 30


class Command(BaseCommand):
    help = "Import galaxies from CATALOG (CSV or FITS table); see docs/import.md."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("catalog", type=Path)
        parser.add_argument("--images", type=Path, required=True,
                            help="folder that file_loc paths are relative to")
        parser.add_argument("--survey", default="", help="survey name, unless the catalog has a survey column")
        parser.add_argument("--pixel-scale", type=float, default=None,
                            help="arcsec per pixel of the display images (FITS: taken from the WCS otherwise)")
        parser.add_argument("--bands", default="",
                            help="comma-separated bands for a file_loc with a {band} pattern, e.g. g,r,i")
        parser.add_argument("--batch-size", type=int, default=200, help="rows written per transaction")

    def handle(self, *args, **options) -> None:
        bands = [b.strip() for b in options["bands"].split(",") if b.strip()]
        try:
            report = import_catalog(
                catalog_path=options["catalog"], images_dir=options["images"], survey=options["survey"],
                pixel_scale=options["pixel_scale"], bands=bands, batch_size=options["batch_size"],
                progress=options["verbosity"] > 0)
        except CatalogError as exc:
            lines = [exc.message] + [f"  {error}" for error in exc.errors[:MAX_ERRORS_SHOWN]]
            if len(exc.errors) > MAX_ERRORS_SHOWN:
                lines.append(f"  ... and {len(exc.errors) - MAX_ERRORS_SHOWN} more")
            raise CommandError("\n".join(lines)) from exc
        if report.radec_from_names:
            self.stdout.write(f"ra/dec derived from the IAU names in id_str for {report.radec_from_names} rows "
                              "(the catalog has no ra/dec columns)")
        if report.radec_from_wcs:
            self.stdout.write(f"ra/dec taken from the FITS WCS (image centre) for {report.radec_from_wcs} rows")
        self.stdout.write(self.style.SUCCESS(
            f"{report.rows} rows: {report.created} created, {report.updated} updated, "
            f"{report.skipped} unchanged (skipped)"))
