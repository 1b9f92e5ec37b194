"""The local demo's writes: storing the demo galaxies, simulated volunteers' votes and the
first model, all through the other apps' own services (nothing here bypasses them)."""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from tqdm import tqdm

from classifications.models import SubjectStatus
from classifications.services import Submission, submit_classification
from classifications.volunteers import Volunteer
from classifier.simulation import (
    Appearance,
    annotations_from_counts,
    appearance_from_image,
    appearance_from_metadata,
    simulated_annotations,
)
from core.storage import read_bytes
from galaxies import imaging
from galaxies.models import Galaxy
from galaxies.selectors import PUBLISHED_VOTES, existing_id_strs
from galaxies.services import PreparedGalaxy, write_galaxies
from retraining.models import ModelVersion, TrainingRun
from retraining.pipeline import execute_run_inline, install_pretrained_model
from retraining.runs import cancel_training_run, start_training_run
from workflows.models import Workflow
from workflows.shipped import GZ2

from . import shipped_pack, sources

SIMULATED_VOLUNTEER_PREFIX = "sim"
GALAXY_BATCH = 100


@dataclass
class DemoReport:
    created: int
    skipped: int


def pack_candidates() -> list[PreparedGalaxy]:
    """The shipped pack's real SDSS galaxies, their real GZ2 votes in ``metadata``."""
    from classifier.tree import DecisionTree

    prepared = []
    for galaxy in shipped_pack.galaxies(DecisionTree.load("gz2")):
        prepared.append(PreparedGalaxy(
            id_str=galaxy.id_str, ra=0.0, dec=0.0, survey=shipped_pack.SURVEY, pixel_scale=round(shipped_pack.PIXEL_SCALE, 4),
            image_bytes=galaxy.image_path.read_bytes(), image_ext="jpg", is_simulated=False,
            metadata={"source": "SDSS image and Galaxy Zoo 2 votes as published for the Kaggle Galaxy Challenge "
                                "(Willett et al. 2013); see platform/demo/pack/README.md",
                      "kaggle_galaxy_id": galaxy.kaggle_galaxy_id, "pack_tag": galaxy.tag,
                      "coordinates": "not published with the Kaggle data (anonymised ids): ra/dec are 0",
                      PUBLISHED_VOTES: {"workflow": GZ2, "counts": galaxy.counts, "image": "SDSS",
                                        "voters": "Galaxy Zoo 2 volunteers",
                                        "note": "round(40 x published vote fraction)"}}))
    return prepared


def load_demo_galaxies(*, include_synthetic: bool = False, progress: bool = False) -> DemoReport:
    """Store the demo galaxies; idempotent. The shipped pack's real galaxies, and with
    ``include_synthetic`` the second set: Hubble XDF cut-outs and simulated galaxies,
    generated from the image inside scikit-image. A fresh clone needs neither ../shared
    nor a download."""
    candidates = pack_candidates()
    if include_synthetic:
        candidates += [PreparedGalaxy(id_str=c.id_str, ra=c.ra, dec=c.dec, survey=c.survey,
                                      pixel_scale=c.pixel_scale, metadata=c.metadata, is_simulated=c.is_simulated,
                                      image_bytes=imaging.encode_jpeg(c.rgb), image_ext="jpg")
                       for c in sources.xdf_galaxies() + sources.simulated_galaxies()]
    have = existing_id_strs(id_strs=[c.id_str for c in candidates])
    missing = [c for c in candidates if c.id_str not in have]
    created = 0
    batches = [missing[i:i + GALAXY_BATCH] for i in range(0, len(missing), GALAXY_BATCH)]
    for batch in tqdm(batches, desc="demo galaxies", unit="batch", disable=not progress):
        created += write_galaxies(prepared=batch)[1]
    return DemoReport(created=created, skipped=len(candidates) - len(missing))


def appearance_of(galaxy: Galaxy) -> Appearance:
    """Known parameters of a simulated galaxy, else measurements of its image."""
    known = appearance_from_metadata(galaxy.metadata or {})
    return known or appearance_from_image(io.BytesIO(read_bytes(galaxy.image.name)))


def expected_answers(galaxy: Galaxy, workflow: Workflow) -> dict[str, str]:
    """The answers a simulated galaxy's known parameters imply for this workflow, if stored."""
    path = ((galaxy.metadata or {}).get("expected_answers") or {}).get(workflow.slug) or []
    return {step["question"]: step["answer"] for step in path if isinstance(step, Mapping) and "question" in step}


def real_vote_counts(galaxy: Galaxy, workflow: Workflow) -> np.ndarray | None:
    """The galaxy's real (published) votes for this workflow's tree, if the pack carries them."""
    real = (galaxy.metadata or {}).get(PUBLISHED_VOTES) or {}
    if real.get("workflow") != workflow.slug:
        return None
    return workflow.decision_tree.counts_vector(real.get("counts") or {})


def seed_simulated_votes(*, workflow: Workflow, galaxies: Iterable[Galaxy], votes_per_galaxy: tuple[int, int] = (3, 8),
                         seed: int = 0) -> int:
    """Simulated volunteers classify each galaxy (a random number of them within the range),
    through the normal submit service with ``is_simulated=True``; returns how many
    classifications were stored. On a galaxy with real votes for this tree each answer is
    drawn from those votes; otherwise from its known parameters or image, each volunteer with
    their own noise level."""
    rng = random.Random(seed)
    draws = np.random.default_rng(seed)
    tree = workflow.decision_tree
    noise = [rng.uniform(0.05, 0.3) for _ in range(votes_per_galaxy[1])]
    stored = 0
    for galaxy in galaxies:
        real = real_vote_counts(galaxy, workflow)
        if real is None:
            appearance, expected = appearance_of(galaxy), expected_answers(galaxy, workflow)
        for volunteer in rng.sample(range(len(noise)), rng.randint(*votes_per_galaxy)):
            annotations = (annotations_from_counts(tree, real, draws) if real is not None
                           else simulated_annotations(tree, appearance, rng, noise[volunteer], expected))
            result = submit_classification(
                submission=Submission(
                    workflow_slug=workflow.slug, galaxy_id_str=galaxy.id_str, annotations=annotations,
                    idempotency_key=f"sim-{uuid.uuid4().hex}"),
                volunteer=Volunteer(key=f"{SIMULATED_VOLUNTEER_PREFIX}:{volunteer}"), is_simulated=True)
            stored += result.created
    return stored


def seed_demo_votes(*, workflow: Workflow, seed_fraction: float, log: Callable[[str], None]) -> None:
    """When the workflow has too few votes, simulated volunteers classify ``seed_fraction`` of
    its galaxies (3–8 votes each, far from retirement)."""
    statuses = SubjectStatus.objects.filter(workflow=workflow, retired_at__isnull=True)
    if statuses.filter(classification_count__gt=0).count() >= 2 * settings.RETRAIN_MIN_GALAXIES:
        return
    unvoted = list(statuses.filter(classification_count=0).select_related("galaxy").order_by("random_key"))
    chosen = [s.galaxy for s in unvoted[:max(2 * settings.RETRAIN_MIN_GALAXIES, int(seed_fraction * len(unvoted)))]]
    log(f"simulated volunteers classify {len(chosen)} '{workflow.slug}' galaxies ...")
    stored = seed_simulated_votes(workflow=workflow, galaxies=chosen)
    log(f"  {stored} simulated classifications stored (is_simulated=True)")


def install_default_model(*, workflow: Workflow, log: Callable[[str], None] = print) -> ModelVersion:
    """The shipped gz2 model becomes the workflow's active version, with predictions for every
    galaxy (seconds: no training). Its metrics are the model card's hold-out figures on the pack."""
    card = shipped_pack.model_card()
    version = install_pretrained_model(
        workflow=workflow, checkpoint=shipped_pack.MODEL,
        metrics={**card["pack_metrics"], "note": card["pack_metrics_note"]},
        train_metrics={**card["validation_metrics"], "trained_on": card["trained_on"], "rebuild": card["rebuild"]})
    log(f"shipped default model active as v{version.number} (sha256 {version.checkpoint_sha256[:12]}…, "
        f"Kaggle RMSE {card['pack_metrics']['rmse_kaggle']:.3f} on the {card['pack_metrics']['n_galaxies']} "
        "pack galaxies it never saw)")
    return version


def prepare_demo_model(*, workflow: Workflow, overrides: dict | None = None, seed_fraction: float = 0.6,
                       log: Callable[[str], None] = print) -> TrainingRun | ModelVersion | None:
    """The demo workflow's first model. Simulated volunteers first give some galaxies votes (so
    the crowd's answers show and the Retrain button has data). The gz2 workflow then activates
    the shipped default model; any other trains one in this process (``RETRAIN_DEMO_PRESET``).
    Does nothing when a model is already active."""
    if ModelVersion.objects.filter(workflow=workflow, is_active=True).exists():
        log(f"'{workflow.slug}' already has an active model")
        return None
    seed_demo_votes(workflow=workflow, seed_fraction=seed_fraction, log=log)
    if workflow.slug == GZ2 and shipped_pack.MODEL.is_file():
        return install_default_model(workflow=workflow, log=log)
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
