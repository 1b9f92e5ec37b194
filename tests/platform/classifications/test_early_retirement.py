import uuid

import pytest

from classifications.errors import SubjectRetired
from classifications.models import SubjectStatus
from classifications.services import Submission, submit_classification
from classifications.volunteers import Volunteer
from tests.platform.factories import GalaxyFactory, decals_smooth_path
from workflows.models import Workflow

pytestmark = pytest.mark.django_db

FEATURED_PATH = [{"question": "smooth-or-featured", "answer": "featured-or-disk"},
                 {"question": "disk-edge-on", "answer": "yes"},
                 {"question": "edge-on-bulge", "answer": "rounded"},
                 {"question": "merging", "answer": "none"}]


def classify(workflow, galaxy, paths):
    """Each path from a different volunteer, until the galaxy retires; returns its status."""
    for number, path in enumerate(paths):
        result = submit_classification(submission=Submission(workflow_slug=workflow.slug,
                                                             galaxy_id_str=galaxy.id_str, annotations=path,
                                                             idempotency_key=uuid.uuid4().hex),
                                       volunteer=Volunteer.anonymous(f"session-{number}"))
        if result.status.is_retired:
            break
    return SubjectStatus.objects.get(workflow=workflow, galaxy__id_str=galaxy.id_str)


@pytest.fixture
def workflow():
    workflow = Workflow.objects.get(slug="gz-decals-dr5")
    workflow.retirement_count = 40
    workflow.early_retirement = True
    workflow.save()
    return workflow


def test_unanimous_votes_retire_early_by_consensus(workflow):
    galaxy = GalaxyFactory()
    status = classify(workflow, galaxy, [decals_smooth_path()] * 15)
    assert status.is_retired
    assert status.retirement_reason == SubjectStatus.RetirementReason.CONSENSUS
    assert 5 <= status.classification_count < 15
    with pytest.raises(SubjectRetired):
        classify(workflow, galaxy, [decals_smooth_path()])


def test_split_votes_keep_the_galaxy_in_the_queue(workflow):
    galaxy = GalaxyFactory()
    status = classify(workflow, galaxy, [decals_smooth_path(), FEATURED_PATH] * 8)
    assert not status.is_retired and status.classification_count == 16


def test_without_early_retirement_only_the_count_retires(workflow):
    workflow.early_retirement = False
    workflow.save()
    galaxy = GalaxyFactory()
    status = classify(workflow, galaxy, [decals_smooth_path()] * 15)
    assert not status.is_retired


EDGE_ON_PATH = FEATURED_PATH
FACE_ON_PATH = [{"question": "smooth-or-featured", "answer": "featured-or-disk"},
                {"question": "disk-edge-on", "answer": "no"}, {"question": "bar", "answer": "no"},
                {"question": "has-spiral-arms", "answer": "no"}, {"question": "bulge-size", "answer": "small"},
                {"question": "merging", "answer": "none"}]


@pytest.mark.parametrize("agreement, retires", [(Workflow.RetirementAgreement.EVERY_QUESTION, False),
                                                (Workflow.RetirementAgreement.MAJORITY_PATH, True)])
def test_an_undecided_question_off_the_majority_path_holds_the_galaxy_only_under_every_question(
        workflow, agreement, retires):
    """A smooth galaxy whose two featured votes split on edge-on: that question stays open (a tie),
    but it is off the galaxy's majority path, so only the every-question promise waits for it."""
    workflow.retirement_agreement = agreement
    workflow.save()
    status = classify(workflow, GalaxyFactory(), [EDGE_ON_PATH, FACE_ON_PATH] + [decals_smooth_path()] * 16)
    assert status.is_retired is retires
    if retires:
        assert status.retirement_reason == SubjectStatus.RetirementReason.CONSENSUS
        assert status.classification_count < 18
    else:
        assert status.classification_count == 18
        assert status.vote_counts["disk-edge-on_yes"] == status.vote_counts["disk-edge-on_no"] == 1
