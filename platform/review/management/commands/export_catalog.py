"""Export a workflow's catalogue (votes, fractions, model posterior, BALD, retirement, expert
labels, flags) as CSV, FITS or Parquet, streamed in chunks."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import DomainError
from retraining.models import ModelVersion
from review.export import FORMATS, export_catalog
from workflows.models import Workflow


class Command(BaseCommand):
    help = "Write WORKFLOW's catalogue to --out in --format csv|fits|parquet (see review/export.py for columns)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow", help="workflow slug")
        parser.add_argument("--format", choices=FORMATS, required=True)
        parser.add_argument("--out", required=True, type=Path)
        parser.add_argument("--model-version", type=int, help="model version number (default: the active one)")
        parser.add_argument("--chunk-size", type=int, help="galaxies per chunk (default: settings.EXPORT_CHUNK_SIZE)")

    def handle(self, *args, **options) -> None:
        workflow = Workflow.objects.filter(slug=options["workflow"]).first()
        if workflow is None:
            raise CommandError(f"no workflow {options['workflow']!r}; one of "
                               f"{', '.join(Workflow.objects.values_list('slug', flat=True))}")
        version = None
        if options["model_version"] is not None:
            version = ModelVersion.objects.filter(workflow=workflow, number=options["model_version"]).first()
            if version is None:
                raise CommandError(f"{workflow.slug} has no model version {options['model_version']}")
        out: Path = options["out"]
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent}: no such directory")
        if options["chunk_size"] is not None and options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1")
        try:
            rows = export_catalog(workflow=workflow, fmt=options["format"], out=out, model_version=version,
                                  chunk_size=options["chunk_size"])
        except DomainError as exc:
            raise CommandError(exc.message)
        self.stdout.write(self.style.SUCCESS(f"{rows} galaxies written to {out}"))
