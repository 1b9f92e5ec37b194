"""`make demo`: demo galaxies, an admin account, the dev server and a real Celery worker."""

from __future__ import annotations

import signal
import subprocess
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from demo.services import load_demo_galaxies
from demo.services import prepare_demo_model as train_first_model
from galaxies.models import Galaxy
from workflows.models import Workflow
from workflows.shipped import GZ2

DEMO_WORKFLOW = GZ2
DEMO_ADMIN_USERNAME = "admin"
DEMO_ADMIN_PASSWORD = "admin"  # local demo only; the message tells the user to change it elsewhere
WORKER_STOP_TIMEOUT_S = 15


def prepare_demo_model(*, stdout) -> None:
    """Seed simulated votes and activate the first model for the demo (the shipped default gz2
    model: no training at start-up).

    Called once per `manage.py demo` after the galaxies and the admin exist; idempotent (nothing
    happens once the workflow has an active model), so the site opens on a model-driven queue.
    """
    workflow = Workflow.objects.filter(slug=DEMO_WORKFLOW).first()
    if workflow is None:
        stdout.write(f"No '{DEMO_WORKFLOW}' workflow: the demo starts without a model (random queue).")
        return
    train_first_model(workflow=workflow, log=stdout.write)


def ensure_demo_admin() -> bool:
    """Create the ``admin``/``admin`` superuser when there is no superuser; True if created."""
    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return False
    users.objects.create_superuser(DEMO_ADMIN_USERNAME, "admin@example.invalid", DEMO_ADMIN_PASSWORD)
    return True


def worker_command() -> list[str]:
    return [sys.executable, "-m", "celery", "--workdir", str(settings.BASE_DIR / "platform"), "-A", "config", "worker",
            "-Q", "default,gpu", "--concurrency", "1", "--prefetch-multiplier", "1", "-l", "info"]


class Command(BaseCommand):
    help = "Run the local demo: demo galaxies, admin/admin, dev server and a Celery worker (Ctrl-C stops both)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument("--no-worker", action="store_true", help="run only the web server")
        parser.add_argument("--with-synthetic", action="store_true",
                            help="also load the second set: Hubble XDF cut-outs and simulated galaxies")
        parser.add_argument("--setup-only", action="store_true",
                            help="load galaxies, create the admin and prepare the model, then exit")

    def handle(self, *args, **options) -> None:
        self.setup(include_synthetic=options["with_synthetic"])
        base = f"http://{options['host']}:{options['port']}"
        self.stdout.write(self.style.SUCCESS(
            f"\nVolunteer site:  {base}/\nAdmin:           {base}/admin/  "
            f"(username '{DEMO_ADMIN_USERNAME}', password '{DEMO_ADMIN_PASSWORD}' unless you changed it)\n"
            f"API docs:        {base}/api/docs/\n"))
        if options["setup_only"]:
            return
        # Ctrl-C and `kill` both end the server through the finally below, which stops the worker.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        worker = None
        if not options["no_worker"]:
            self.stdout.write("Starting a Celery worker (queues default, gpu): " + " ".join(worker_command()[1:]))
            worker = subprocess.Popen(worker_command(), cwd=settings.BASE_DIR)
        try:
            call_command("runserver", f"{options['host']}:{options['port']}", use_reloader=False)
        finally:
            if worker is not None:
                self.stop_worker(worker)

    def setup(self, *, include_synthetic: bool = False) -> None:
        galaxies_before = Galaxy.objects.count()
        report = load_demo_galaxies(include_synthetic=include_synthetic, progress=True)
        self.stdout.write(f"Demo galaxies: {report.created} added, {report.skipped} already present "
                          f"({galaxies_before + report.created} galaxies in total)")
        if ensure_demo_admin():
            self.stdout.write(self.style.WARNING(
                f"Created the superuser '{DEMO_ADMIN_USERNAME}' with password '{DEMO_ADMIN_PASSWORD}' "
                "(local demo only: change it before exposing this site)"))
        prepare_demo_model(stdout=self.stdout)
        self.attach_field_guide_examples()

    def attach_field_guide_examples(self) -> None:
        """Answer buttons show pack galaxies whose published Galaxy Zoo 2 votes agree (>= 80% of
        >= 10 votes). The volunteer UI's own command does it: nothing in platform/ imports frontend."""
        if Workflow.objects.filter(slug=DEMO_WORKFLOW).exists():
            call_command("pick_field_guide_examples", workflow=DEMO_WORKFLOW, per_answer=3, min_votes=10,
                         min_fraction=0.8, published=True, stdout=self.stdout)

    def stop_worker(self, worker: subprocess.Popen) -> None:
        if worker.poll() is None:
            self.stdout.write("Stopping the Celery worker...")
            worker.terminate()
            try:
                worker.wait(timeout=WORKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
