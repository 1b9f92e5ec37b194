"""Store the demo galaxies: the shipped pack of real SDSS galaxies, optionally the synthetic set."""

from django.core.management.base import BaseCommand, CommandParser

from demo.services import load_demo_galaxies


class Command(BaseCommand):
    help = "Load the demo galaxies (no ../shared or network needed); idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--with-synthetic", action="store_true",
                            help="also the Hubble XDF cut-outs and the simulated galaxies")

    def handle(self, *args, **options) -> None:
        report = load_demo_galaxies(include_synthetic=options["with_synthetic"],
                                    progress=options["verbosity"] > 0)
        self.stdout.write(self.style.SUCCESS(
            f"demo galaxies: {report.created} created, {report.skipped} already present"))
