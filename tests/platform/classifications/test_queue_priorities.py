"""set_queue_priorities: every status row of the workflow gets its galaxy's score, or the default."""

import pytest

from classifications.models import SubjectStatus
from classifications.services import ensure_subject_statuses, set_queue_priorities
from tests.platform.factories import GalaxyFactory
from workflows.models import Workflow

pytestmark = pytest.mark.django_db


def test_scores_become_priorities_and_unscored_galaxies_get_the_default():
    scored, unscored = GalaxyFactory.create_batch(2)
    ensure_subject_statuses()
    decals, gz2 = Workflow.objects.get(slug="gz-decals-dr5"), Workflow.objects.get(slug="gz2")
    gz2_before = dict(SubjectStatus.objects.filter(workflow=gz2).values_list("galaxy_id", "priority"))
    # Any queryset with galaxy_id and the score field will do; here gz2's fixed random keys.
    scores = SubjectStatus.objects.filter(workflow=gz2, galaxy=scored)

    updated = set_queue_priorities(workflow_id=decals.id, scores=scores, score_field="random_key", default=-1.0)

    assert updated == SubjectStatus.objects.filter(workflow=decals).count() == 2
    priorities = dict(SubjectStatus.objects.filter(workflow=decals).values_list("galaxy_id", "priority"))
    assert priorities == {scored.pk: scores.get().random_key, unscored.pk: -1.0}
    assert dict(SubjectStatus.objects.filter(workflow=gz2).values_list("galaxy_id", "priority")) == gz2_before
