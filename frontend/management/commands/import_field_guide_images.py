from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from frontend.services import import_field_guide_images
from workflows.models import Workflow
from workflows.shipped import DECALS_DR5


class Command(BaseCommand):
    help = "Upload field-guide example images listed in DIR/index.csv (columns file, question, answer)."

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)
        parser.add_argument("--workflow", default=DECALS_DR5, help=f"Workflow slug (default {DECALS_DR5}: the tutorial images are for its tree).")

    def handle(self, *args, directory, workflow, **options):
        found = Workflow.objects.filter(slug=workflow).first()
        if found is None:
            raise CommandError(f"--workflow: no workflow '{workflow}'")
        try:
            created, skipped = import_field_guide_images(workflow=found, directory=directory)
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
        for reason in skipped:
            self.stderr.write(f"skipped {reason}")
        self.stdout.write(f"{created} images attached to {workflow}, {len(skipped)} rows skipped")
