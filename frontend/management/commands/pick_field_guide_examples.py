from django.core.management.base import BaseCommand, CommandError

from frontend.services import pick_field_guide_examples
from workflows.models import Workflow
from workflows.shipped import DEFAULT_WORKFLOW


class Command(BaseCommand):
    help = "Attach field-guide examples: the galaxies whose votes agree most strongly on each answer."

    def add_arguments(self, parser):
        parser.add_argument("--workflow", default=DEFAULT_WORKFLOW, help=f"Workflow slug (default {DEFAULT_WORKFLOW}).")
        parser.add_argument("--per-answer", type=int, default=3, help="Examples per answer (default 3).")
        parser.add_argument("--min-votes", type=int, default=5,
                            help="Only galaxies with at least this many votes on the question (default 5).")
        parser.add_argument("--min-fraction", type=float, default=0.8,
                            help="Share of the votes the answer needs (default 0.8).")
        parser.add_argument("--published", action="store_true",
                            help="Use the votes published with the galaxies (e.g. Galaxy Zoo 2's) instead of this site's.")
        parser.add_argument("--replace", action="store_true", help="Replace the galaxy examples picked before.")

    def handle(self, *args, workflow, per_answer, min_votes, min_fraction, published, replace, **options):
        found = Workflow.objects.filter(slug=workflow).first()
        if found is None:
            raise CommandError(f"--workflow: no workflow '{workflow}'")
        created = pick_field_guide_examples(workflow=found, per_answer=per_answer, min_votes=min_votes,
                                            min_fraction=min_fraction, published=published, replace=replace)
        self.stdout.write(f"{created} field-guide examples attached to {workflow}")
