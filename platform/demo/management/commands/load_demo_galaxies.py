"""Store the demo galaxies (Hubble XDF cutouts from scikit-image, simulated galaxies)."""

from django.core.management.base import BaseCommand, CommandParser

from demo.services import load_demo_galaxies


class Command(BaseCommand):
    help = "Load the demo galaxies (no ../shared or network needed); idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-simulated", action="store_true", help="only the real Hubble XDF cutouts")

    def handle(self, *args, **options) -> None:
        report = load_demo_galaxies(include_simulated=not options["no_simulated"],
                                    progress=options["verbosity"] > 0)
        self.stdout.write(self.style.SUCCESS(
            f"demo galaxies: {report.created} created, {report.skipped} already present"))
