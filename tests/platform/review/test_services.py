"""Expert labels, flags and retirement overrides: validated, stored apart, recorded, reversible."""

import pytest

from classifications.models import Classification, SubjectStatus
from review.errors import (
    FlagAlreadyResolved,
    InvalidExpertAnnotations,
    ReasonRequired,
    RetirementUnchanged,
)
from review.models import ExpertClassification, RetirementOverride
from review.services import flag_galaxy, record_expert_classification, resolve_flag, set_retirement
from tests.platform.factories import GalaxyFactory, decals_smooth_path

from .conftest import vote

pytestmark = pytest.mark.django_db


@pytest.fixture
def galaxy(workflow):
    from classifications.services import ensure_subject_statuses

    galaxy = GalaxyFactory()
    ensure_subject_statuses(workflow=workflow)
    return galaxy


def test_expert_label_goes_through_the_tree_and_never_counts_as_a_vote(workflow, galaxy, users):
    vote(workflow, galaxy, decals_smooth_path(), 2)
    label = record_expert_classification(workflow=workflow, galaxy=galaxy, expert_id=users["scientist"].pk,
                                         annotations=decals_smooth_path(), comment="clear elliptical")
    assert label.workflow_version == workflow.version
    assert label.annotations == decals_smooth_path()
    status = SubjectStatus.objects.get(workflow=workflow, galaxy=galaxy)
    assert status.classification_count == 2 and status.vote_counts["smooth-or-featured_smooth"] == 2
    assert Classification.objects.filter(galaxy=galaxy).count() == 2


def test_an_expert_revising_replaces_their_label(workflow, galaxy, users):
    expert = users["scientist"].pk
    record_expert_classification(workflow=workflow, galaxy=galaxy, expert_id=expert, annotations=decals_smooth_path())
    featured = [{"question": "smooth-or-featured", "answer": "featured-or-disk"},
                {"question": "disk-edge-on", "answer": "yes"}, {"question": "edge-on-bulge", "answer": "none"},
                {"question": "merging", "answer": "none"}]
    record_expert_classification(workflow=workflow, galaxy=galaxy, expert_id=expert, annotations=featured)
    record_expert_classification(workflow=workflow, galaxy=galaxy, expert_id=users["admin"].pk,
                                 annotations=decals_smooth_path())
    labels = ExpertClassification.objects.filter(galaxy=galaxy)
    assert labels.count() == 2
    assert labels.get(expert_id=expert).annotations == featured


@pytest.mark.parametrize("annotations, rule", [
    ([{"question": "smooth-or-featured", "answer": "smooth"}], "incomplete"),
    ([{"question": "bar", "answer": "strong"}], "wrong_question"),
    ("smooth", "not_a_list"),
])
def test_expert_label_rejected_like_a_volunteer_vote(workflow, galaxy, users, annotations, rule):
    with pytest.raises(InvalidExpertAnnotations) as caught:
        record_expert_classification(workflow=workflow, galaxy=galaxy, expert_id=users["scientist"].pk,
                                     annotations=annotations)
    assert caught.value.field == "annotations" and caught.value.detail["error"]["rule"] == rule
    assert not ExpertClassification.objects.exists()


def test_flag_then_resolve_once(galaxy, users):
    flag = flag_galaxy(galaxy=galaxy, kind="bad_image", comment="satellite trail", user_id=users["scientist"].pk)
    assert flag.is_open
    resolved = resolve_flag(flag_id=flag.pk, user_id=users["admin"].pk, resolution="re-imaged")
    assert not resolved.is_open and resolved.resolved_by == users["admin"]
    with pytest.raises(FlagAlreadyResolved):
        resolve_flag(flag_id=flag.pk, user_id=users["admin"].pk)


def test_unknown_flag_kind(galaxy, users):
    with pytest.raises(InvalidExpertAnnotations) as caught:
        flag_galaxy(galaxy=galaxy, kind="pretty", user_id=users["scientist"].pk)
    assert caught.value.field == "kind"


def test_force_retire_and_undo_are_recorded(workflow, galaxy, users):
    vote(workflow, galaxy, decals_smooth_path(), 1)
    user = users["scientist"].pk
    retired = set_retirement(workflow=workflow, galaxy=galaxy, retire=True, reason="star, not a galaxy", user_id=user)
    status = SubjectStatus.objects.get(workflow=workflow, galaxy=galaxy)
    assert status.retired_at is not None and status.retirement_reason == SubjectStatus.RetirementReason.ADMIN
    assert retired.previous_retired_at is None and retired.action == "retire"
    with pytest.raises(RetirementUnchanged):
        set_retirement(workflow=workflow, galaxy=galaxy, retire=True, reason="again", user_id=user)
    undone = set_retirement(workflow=workflow, galaxy=galaxy, retire=False, reason="it is a galaxy", user_id=user)
    status.refresh_from_db()
    assert status.retired_at is None and status.retirement_reason == ""
    assert undone.previous_retired_at is not None
    assert undone.previous_retirement_reason == "admin"
    assert list(RetirementOverride.objects.values_list("action", flat=True)) == ["unretire", "retire"]
    assert status.classification_count == 1  # the votes are untouched


def test_retirement_needs_a_reason(workflow, galaxy, users):
    with pytest.raises(ReasonRequired):
        set_retirement(workflow=workflow, galaxy=galaxy, retire=True, reason="  ", user_id=users["scientist"].pk)
    assert not RetirementOverride.objects.exists()
    assert SubjectStatus.objects.get(workflow=workflow, galaxy=galaxy).retired_at is None


def test_unretire_an_active_galaxy_is_refused(workflow, galaxy, users):
    with pytest.raises(RetirementUnchanged):
        set_retirement(workflow=workflow, galaxy=galaxy, retire=False, reason="why", user_id=users["scientist"].pk)


def test_a_scientist_bans_the_volunteer_behind_a_dossier_pseudonym(workflow, galaxy, users):
    from review.errors import UnknownVolunteer
    from review.selectors import galaxy_dossier
    from review.services import shadow_ban_volunteer

    vote(workflow, galaxy, decals_smooth_path(), count=3)
    shown = galaxy_dossier(workflow=workflow, galaxy=galaxy)["classifications"][0]["pseudonym"]
    with pytest.raises(UnknownVolunteer):
        shadow_ban_volunteer(workflow=workflow, galaxy=galaxy, pseudonym="volunteer-0000000000", reason="",
                             user_id=users["scientist"].pk)
    ban = shadow_ban_volunteer(workflow=workflow, galaxy=galaxy, pseudonym=shown, reason="stuffing",
                               user_id=users["scientist"].pk)
    assert ban.withdrawn_votes == 1 and ban.banned_by == users["scientist"]
    assert SubjectStatus.objects.get(workflow=workflow, galaxy=galaxy).classification_count == 2
    assert not Classification.objects.filter(volunteer_key=ban.volunteer_key, counted=True).exists()


def test_a_scientist_lifts_the_ban_of_the_volunteer_behind_a_pseudonym(workflow, galaxy, users):
    from review.selectors import galaxy_dossier
    from review.services import lift_shadow_ban_volunteer, shadow_ban_volunteer

    vote(workflow, galaxy, decals_smooth_path(), count=3)
    shown = galaxy_dossier(workflow=workflow, galaxy=galaxy)["classifications"][0]["pseudonym"]
    shadow_ban_volunteer(workflow=workflow, galaxy=galaxy, pseudonym=shown, reason="", user_id=users["scientist"].pk)
    assert lift_shadow_ban_volunteer(workflow=workflow, galaxy=galaxy, pseudonym=shown) == 1
    assert SubjectStatus.objects.get(workflow=workflow, galaxy=galaxy).classification_count == 3
