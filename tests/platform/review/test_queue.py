"""The review queue: sorted by each score, filtered by predicted answers, survey, flags,
expert labels, retirement and cone, paginated with a bounded page size."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from classifications.models import SubjectStatus
from review.models import ExpertClassification, Flag, ReviewScore
from review.services import refresh_review_scores
from tests.platform.factories import decals_smooth_path

from .conftest import BAR_STRONG, WORKFLOW, vote

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(users):
    client = APIClient()
    client.force_authenticate(users["scientist"])

    def get(**params):
        return client.get(reverse("review-queue", args=[WORKFLOW]), params)

    return get


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id_str"] for item in response.json()["results"]]


def index(name: str) -> int:
    return int(name[-2:])


def test_sorted_by_bald_highest_first_by_default(api, scored):
    assert [index(n) for n in names(api())] == list(range(11, -1, -1))
    assert [index(n) for n in names(api(order="asc"))] == list(range(12))


def test_sorted_by_entropy(api, scored):
    assert [index(n) for n in names(api(sort="entropy"))] == list(range(12))


def test_filtered_by_a_predicted_answer_range(api, scored):
    assert sorted(index(n) for n in names(api(min=f"{BAR_STRONG}:0.5"))) == [5, 6, 7, 8, 9, 10, 11]
    both = api(min=f"{BAR_STRONG}:0.3", max=f"{BAR_STRONG}:0.45")
    assert sorted(index(n) for n in names(both)) == [3, 4]
    assert both.json()["results"][0]["answers"][BAR_STRONG]["fraction"] == pytest.approx(0.4)


def test_sorted_by_interval_width_of_an_answer(api, scored):
    widest = names(api(sort="width", answer=BAR_STRONG))
    assert [index(n) for n in widest] == list(range(12))
    item = api(sort="width", answer=BAR_STRONG, page_size=1).json()["results"][0]
    assert item["answers"][BAR_STRONG]["upper"] - item["answers"][BAR_STRONG]["lower"] == pytest.approx(0.6)


def test_width_needs_an_answer_and_answers_must_exist(api, scored):
    response = api(sort="width")
    assert response.status_code == 400 and response.json()["field"] == "answer"
    response = api(min="bar_gigantic:0.5")
    assert response.status_code == 400 and response.json()["field"] == "answer"
    response = api(min="bar_strong:high")
    assert response.status_code == 400 and response.json()["field"] == "min"
    response = api(sort="prettiest")
    assert response.status_code == 400 and response.json()["field"] == "sort"


def test_page_size_is_bounded_and_pages_walk_the_order(api, scored, settings):
    settings.REVIEW_MAX_PAGE_SIZE = 5
    assert api(page_size=6).status_code == 400
    first, second, third = (api(page_size=5, page=p).json() for p in (1, 2, 3))
    assert first["has_next"] and second["has_next"] and not third["has_next"]
    order = [item["id_str"] for page in (first, second, third) for item in page["results"]]
    assert [index(n) for n in order] == list(range(11, -1, -1))


def test_filtered_by_survey_flags_expert_and_retirement(api, scored, users, workflow):
    galaxies = scored["galaxies"]
    assert all(index(n) % 2 for n in names(api(survey="north")))
    Flag.objects.create(galaxy=galaxies[2], kind="artifact", created_by=users["scientist"])
    resolved = Flag.objects.create(galaxy=galaxies[4], kind="artifact", created_by=users["scientist"])
    resolved.resolved_at = resolved.created_at
    resolved.save()
    assert names(api(flag="any")) == ["JREVIEW02"]
    assert names(api(flag="artifact")) == ["JREVIEW02"]
    assert names(api(flag="interesting")) == []
    assert "JREVIEW02" not in names(api(flag="none")) and len(names(api(flag="none"))) == 11
    ExpertClassification.objects.create(workflow=workflow, workflow_version=1, galaxy=galaxies[7],
                                        expert=users["scientist"], annotations=decals_smooth_path())
    assert names(api(expert="labelled")) == ["JREVIEW07"]
    assert len(names(api(expert="unlabelled"))) == 11
    SubjectStatus.objects.filter(workflow=workflow, galaxy=galaxies[9]).update(retired_at=resolved.created_at,
                                                                                retirement_reason="admin")
    retired = api(retired="yes").json()["results"]
    assert [r["id_str"] for r in retired] == ["JREVIEW09"] and retired[0]["retirement_reason"] == "admin"
    assert "JREVIEW09" not in names(api(retired="no"))


def test_cone_and_name_search(api, scored):
    cone = api(ra=13, dec=0, radius=1.5).json()["results"]
    assert sorted(index(r["id_str"]) for r in cone) == [2, 3, 4]
    assert {round(r["separation_deg"], 6) for r in cone} == {0.0, 1.0}
    assert names(api(q="JREVIEW05")) == ["JREVIEW05"]
    assert names(api(q=str(scored["galaxies"][6].pk))) == ["JREVIEW06"]
    assert len(names(api(q="JREVIEW0"))) == 10
    assert names(api(q="JREVIEW05", ra=13, dec=0, radius=1.5)) == []
    assert api(ra=13, dec=0, radius=90).status_code == 400


def test_sorted_by_votes_and_by_disagreement(api, scored, workflow, settings):
    settings.REVIEW_MIN_VOTES = 5
    galaxies = scored["galaxies"]
    # The model says every galaxy is a third smooth; ten smooth votes disagree more than five.
    vote(workflow, galaxies[1], decals_smooth_path(), 10)
    vote(workflow, galaxies[8], decals_smooth_path(), 5)
    vote(workflow, galaxies[4], decals_smooth_path(), 2)
    assert names(api(sort="votes"))[:3] == ["JREVIEW01", "JREVIEW08", "JREVIEW04"]
    refresh_review_scores(model_version_id=scored["version"].pk)
    ranked = api(sort="disagreement").json()["results"]
    assert [r["id_str"] for r in ranked[:2]] == ["JREVIEW01", "JREVIEW08"]
    assert ranked[0]["disagreement"] > ranked[1]["disagreement"] > 0
    assert all(r["disagreement"] is None for r in ranked[2:])  # fewer than five votes
    assert ReviewScore.objects.get(galaxy=galaxies[1]).votes_at_refresh == 10


def test_no_active_model_is_a_clear_conflict(api, workflow, users):
    response = api()
    assert response.status_code == 409 and response.json()["code"] == "no_active_model"


def test_queue_page_renders_the_grid(client, users, scored):
    client.force_login(users["scientist"])
    response = client.get(reverse("workbench-queue", args=[WORKFLOW]), {"min": f"{BAR_STRONG}:0.95"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "JREVIEW11" in body and "JREVIEW10" in body and "JREVIEW09" not in body
    assert client.get(reverse("workbench-queue", args=[WORKFLOW]), {"sort": "width"}).status_code == 400


def test_sorted_by_change_since_the_previous_version(api, scored, workflow):
    """``changed`` is the largest |Δ mean| against the version before; galaxies the previous
    version did not predict have none and are left out of the sort."""
    from .conftest import make_version, predict, uniform_fractions

    galaxies, version = scored["galaxies"], scored["version"]
    version.is_active = False
    version.save(update_fields=["is_active"])
    newer = make_version(workflow, number=2)
    shifts = {3: 0.3, 7: 0.1, 9: 0.2}  # v2 moves bar_strong by these; the others are new to v2
    for i, galaxy in enumerate(galaxies):
        if i in shifts:
            predict(newer, galaxy, fractions=uniform_fractions(workflow, **{BAR_STRONG: round(0.1 * i + shifts[i], 3)}))
    refresh_review_scores(model_version_id=newer.pk)
    ranked = api(sort="changed").json()["results"]
    assert [(r["id_str"], round(r["changed"], 6)) for r in ranked] == [
        ("JREVIEW03", 0.3), ("JREVIEW09", 0.2), ("JREVIEW07", 0.1)]


@pytest.mark.parametrize("extremes", [2, 5, 1000])
def test_width_sort_through_the_stored_extremes_equals_the_full_sort(api, workflow, settings, extremes):
    """However few extremes are stored, every page (both orders, with a filter, ties included)
    is the one sorting every prediction's width gives."""
    import random

    from review.models import IntervalExtreme
    from tests.platform.factories import GalaxyFactory

    from .conftest import make_version, predict, uniform_fractions

    settings.REVIEW_WIDTH_EXTREMES = extremes
    rng = random.Random(extremes)
    galaxies = [GalaxyFactory(id_str=f"JWIDTH{i:02d}") for i in range(30)]
    version = make_version(workflow)
    for galaxy in galaxies:
        predict(version, galaxy, width=rng.choice([0.1, 0.2, 0.25, 0.3, 0.5]),  # many ties
                fractions=uniform_fractions(workflow, **{BAR_STRONG: rng.choice([0.2, 0.6])}))
    refresh_review_scores(model_version_id=version.pk)
    stored = IntervalExtreme.objects.filter(model_version=version, answer=list(version.answer_columns).index(BAR_STRONG))
    assert stored.filter(end=IntervalExtreme.End.WIDEST).count() >= min(extremes, 30)
    for order, reverse_ in (("desc", True), ("asc", False)):
        for bound in ({}, {"min": f"{BAR_STRONG}:0.5"}):
            a = stored[0].answer
            exact = {p.galaxy.id_str: (p.upper[a] - p.lower[a], p.galaxy_id)
                     for p in version.predictions.select_related("galaxy") if not bound or p.fractions[a] >= 0.5}
            expected = sorted(exact, key=exact.get, reverse=reverse_)
            got = [n for page in (1, 2, 3, 4) for n in names(api(sort="width", answer=BAR_STRONG, order=order,
                                                                  page_size=8, page=page, **bound))]
            assert got == expected, (order, bound)


def test_votes_sort_breaks_ties_by_id_in_the_sort_direction(api, scored, workflow):
    galaxies = scored["galaxies"]
    vote(workflow, galaxies[2], decals_smooth_path(), 1)
    descending = names(api(sort="votes"))
    assert descending[0] == "JREVIEW02" and [index(n) for n in descending[1:]] == [11, 10, 9, 8, 7, 6, 5, 4, 3, 1, 0]
    assert names(api(sort="votes", order="asc")) == list(reversed(descending))
