"""A workflow with an active model whose predictions are written directly (no training), so
the workbench's reads and writes can be tested on exact numbers; and one user per role."""

import random
import uuid

import pytest
from django.contrib.auth import get_user_model

from classifications.services import Submission, ensure_subject_statuses, submit_classification
from classifications.volunteers import Volunteer
from retraining.models import ModelVersion, Prediction
from review.access import grant_scientist
from review.services import flag_galaxy, record_expert_classification, set_retirement
from tests.platform.factories import GalaxyFactory, decals_smooth_path
from workflows.models import Workflow

WORKFLOW = "gz-decals-dr5"
BAR_STRONG = "bar_strong"


@pytest.fixture
def workflow(db) -> Workflow:
    return Workflow.objects.get(slug=WORKFLOW)


def predict(version: ModelVersion, galaxy, *, fractions: list[float], width: float = 0.2,
            acquisition: float = 0.1, entropy: float = 1.0) -> Prediction:
    """Intervals exactly ``width`` wide (not clipped to [0, 1]: the widths under test stay exact)."""
    return Prediction.objects.create(
        model_version=version, galaxy=galaxy, fractions=fractions,
        lower=[f - width / 2 for f in fractions], upper=[f + width / 2 for f in fractions],
        acquisition=acquisition, entropy=entropy)


def uniform_fractions(workflow: Workflow, **overrides: float) -> list[float]:
    """Every question's answers equally likely, except the columns given (question kept summing to 1
    is not needed by the reads under test)."""
    tree = workflow.decision_tree
    out = []
    for question in tree.questions:
        for answer in question.answers:
            out.append(overrides.get(f"{question.key}_{answer.key}", 1 / len(question.answers)))
    return out


def make_version(workflow: Workflow, *, number: int = 1, active: bool = True) -> ModelVersion:
    return ModelVersion.objects.create(
        workflow=workflow, number=number, checkpoint=f"models/v{number}.pt", checkpoint_sha256="0" * 64,
        tree_hash=workflow.tree_hash, answer_columns=list(workflow.decision_tree.answer_columns),
        predictions_complete=True, is_active=active)


@pytest.fixture
def scored(workflow):
    """Twelve galaxies predicted by an active v1: acquisition rises with the index, bar_strong
    is 0.1·index (so ≥ 0.5 from the sixth), the interval width of bar_strong falls with it."""
    galaxies = [GalaxyFactory(id_str=f"JREVIEW{i:02d}", ra=10.0 + i, dec=0.0, survey="north" if i % 2 else "south")
                for i in range(12)]
    ensure_subject_statuses(workflow=workflow)
    version = make_version(workflow)
    for i, galaxy in enumerate(galaxies):
        predict(version, galaxy, fractions=uniform_fractions(workflow, **{BAR_STRONG: round(0.1 * i, 3)}),
                width=0.6 - 0.04 * i, acquisition=0.01 * i, entropy=2.0 - 0.1 * i)
    return {"version": version, "galaxies": galaxies}


def vote(workflow: Workflow, galaxy, annotations, count: int, prefix: str = "v") -> None:
    for n in range(count):
        submit_classification(submission=Submission(workflow_slug=workflow.slug, galaxy_id_str=galaxy.id_str,
                                                    annotations=annotations, idempotency_key=uuid.uuid4().hex),
                              volunteer=Volunteer.anonymous(f"{prefix}-{galaxy.pk}-{n}-{random.random()}"))


@pytest.fixture
def users(db):
    model = get_user_model()
    volunteer = model.objects.create_user("vol", "vol@example.org", "pw-12345678")
    scientist = model.objects.create_user("sci", "sci@example.org", "pw-12345678")
    grant_scientist(email="sci@example.org")
    admin = model.objects.create_superuser("boss", "boss@example.org", "pw-12345678")
    return {"anonymous": None, "volunteer": volunteer, "scientist": scientist, "admin": admin}


@pytest.fixture
def catalogue(scored, workflow, users):
    """The scored galaxies with votes, an expert label, two flags, a forced retirement whose
    reason is a spreadsheet formula, and an unpredicted galaxy with a hostile survey name."""
    galaxies = scored["galaxies"]
    vote(workflow, galaxies[0], decals_smooth_path(), 3)
    scientist = users["scientist"].pk
    record_expert_classification(workflow=workflow, galaxy=galaxies[1], expert_id=scientist,
                                 annotations=decals_smooth_path())
    flag_galaxy(galaxy=galaxies[2], kind="artifact", user_id=scientist)
    flag_galaxy(galaxy=galaxies[2], kind="interesting", user_id=scientist)
    set_retirement(workflow=workflow, galaxy=galaxies[3], retire=True, reason="=cmd|' /C calc'!A0", user_id=scientist)
    # A galaxy the model never predicted, with a hostile survey name.
    GalaxyFactory(id_str="JNOPRED", ra=1.0, dec=-2.0, survey="@SUM(A1)")
    ensure_subject_statuses(workflow=workflow)
    return scored
