"""The local demo's writes: storing the demo galaxies, simulated volunteers' votes and the
first model, all through the other apps' own services (nothing here bypasses them)."""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from django.conf import settings
from tqdm import tqdm

from classifications.models import SubjectStatus
from classifications.services import Submission, submit_classification
from classifications.volunteers import Volunteer
from classifier.simulation import Appearance, appearance_from_image, appearance_from_metadata, simulated_annotations
from core.storage import read_bytes
from galaxies import imaging
from galaxies.models import Galaxy
from galaxies.selectors import existing_id_strs
from galaxies.services import PreparedGalaxy, write_galaxies
from retraining.models import ModelVersion, TrainingRun
from retraining.pipeline import execute_run_inline
from retraining.runs import cancel_training_run, start_training_run
from workflows.models import Workflow

from . import sources

SIMULATED_VOLUNTEER_PREFIX = "sim"
GALAXY_BATCH = 100


@dataclass
class DemoReport:
    created: int
    skipped: int


def load_demo_galaxies(*, include_simulated: bool = True, progress: bool = False) -> DemoReport:
    """Store the demo galaxies (Hubble XDF cutouts and simulated galaxies); idempotent.

    They are generated from the image shipped inside scikit-image, so a fresh clone needs
    neither ../shared nor a download.
    """
    candidates = sources.xdf_galaxies()
    if include_simulated:
        candidates += sources.simulated_galaxies()
    have = existing_id_strs(id_strs=[c.id_str for c in candidates])
    missing = [c for c in candidates if c.id_str not in have]
    created = 0
    batches = [missing[i:i + GALAXY_BATCH] for i in range(0, len(missing), GALAXY_BATCH)]
    for batch in tqdm(batches, desc="demo galaxies", unit="batch", disable=not progress):
        prepared = [PreparedGalaxy(id_str=c.id_str, ra=c.ra, dec=c.dec, survey=c.survey,
                                   pixel_scale=c.pixel_scale, metadata=c.metadata, is_simulated=c.is_simulated,
                                   image_bytes=imaging.encode_jpeg(c.rgb), image_ext="jpg") for c in batch]
        created += write_galaxies(prepared=prepared)[1]
    return DemoReport(created=created, skipped=len(candidates) - len(missing))


def appearance_of(galaxy: Galaxy) -> Appearance:
    """Known parameters of a simulated galaxy, else measurements of its image."""
    known = appearance_from_metadata(galaxy.metadata or {})
    return known or appearance_from_image(io.BytesIO(read_bytes(galaxy.image.name)))


def expected_answers(galaxy: Galaxy, workflow: Workflow) -> dict[str, str]:
    """The answers a simulated galaxy's known parameters imply for this workflow, if stored."""
    path = ((galaxy.metadata or {}).get("expected_answers") or {}).get(workflow.slug) or []
    return {step["question"]: step["answer"] for step in path if isinstance(step, Mapping) and "question" in step}


def seed_simulated_votes(*, workflow: Workflow, galaxies: Iterable[Galaxy], votes_per_galaxy: tuple[int, int] = (3, 8),
                         seed: int = 0) -> int:
    """Simulated volunteers classify each galaxy (a random number of them within the range,
    each with their own noise level), through the normal submit service with
    ``is_simulated=True``; returns how many classifications were stored."""
    rng = random.Random(seed)
    tree = workflow.decision_tree
    noise = [rng.uniform(0.05, 0.3) for _ in range(votes_per_galaxy[1])]
    stored = 0
    for galaxy in galaxies:
        appearance, expected = appearance_of(galaxy), expected_answers(galaxy, workflow)
        for volunteer in rng.sample(range(len(noise)), rng.randint(*votes_per_galaxy)):
            result = submit_classification(
                submission=Submission(
                    workflow_slug=workflow.slug, galaxy_id_str=galaxy.id_str,
                    annotations=simulated_annotations(tree, appearance, rng, noise[volunteer], expected),
                    idempotency_key=f"sim-{uuid.uuid4().hex}"),
                volunteer=Volunteer(key=f"{SIMULATED_VOLUNTEER_PREFIX}:{volunteer}"), is_simulated=True)
            stored += result.created
    return stored


def prepare_demo_model(*, workflow: Workflow, overrides: dict | None = None, seed_fraction: float = 0.6,
                       log: Callable[[str], None] = print) -> TrainingRun | None:
    """Train the demo workflow's first model in this process (``RETRAIN_DEMO_PRESET``) so the
    site opens on a finished run, stored predictions and a model-driven queue. When the
    workflow has too few votes, simulated volunteers first classify ``seed_fraction`` of its
    galaxies (3–8 votes each, far from retirement). Does nothing when a model is already active."""
    if ModelVersion.objects.filter(workflow=workflow, is_active=True).exists():
        log(f"'{workflow.slug}' already has an active model")
        return None
    statuses = SubjectStatus.objects.filter(workflow=workflow, retired_at__isnull=True)
    if statuses.filter(classification_count__gt=0).count() < 2 * settings.RETRAIN_MIN_GALAXIES:
        unvoted = list(statuses.filter(classification_count=0).select_related("galaxy").order_by("random_key"))
        chosen = [s.galaxy for s in unvoted[:max(2 * settings.RETRAIN_MIN_GALAXIES, int(seed_fraction * len(unvoted)))]]
        log(f"simulated volunteers classify {len(chosen)} '{workflow.slug}' galaxies ...")
        stored = seed_simulated_votes(workflow=workflow, galaxies=chosen)
        log(f"  {stored} simulated classifications stored (is_simulated=True)")
    for orphan in TrainingRun.objects.filter(workflow=workflow, status__in=TrainingRun.ACTIVE_STATUSES):
        log(f"cancelling run {orphan.pk} left {orphan.status} by an earlier session")
        cancel_training_run(run_id=orphan.pk)
    run = start_training_run(workflow=workflow, trigger=TrainingRun.Trigger.DEMO, full_retrain=True,
                             preset=settings.RETRAIN_DEMO_PRESET,
                             overrides={**settings.RETRAIN_DEMO_OVERRIDES, **(overrides or {})})
    log(f"training the first '{workflow.slug}' model (run {run.pk}, simulated volunteers' votes) ...")
    run = execute_run_inline(run_id=run.pk, log=log)
    if run.status == TrainingRun.Status.SUCCEEDED:
        version = run.model_version
        log(f"model v{version.number} active after {run.duration_seconds:.0f} s "
            f"(hold-out RMSE {version.metrics.get('rmse') or float('nan'):.3f})")
    else:
        log(f"demo training run {run.pk} {run.status}: {run.error.strip().splitlines()[-1:] or ''}")
    return run
