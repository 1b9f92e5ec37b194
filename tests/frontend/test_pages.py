"""Server side of the volunteer UI: pages, live stats, field guide, history, and keeping an
anonymous volunteer's history on sign-up."""

import uuid

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from classifications.models import Classification
from classifications.services import Submission, submit_classification
from classifications.volunteers import Volunteer
from frontend.models import FieldGuideExample
from frontend.services import import_field_guide_images, pick_field_guide_examples
from galaxies.selectors import PUBLISHED_VOTES
from tests.frontend.conftest import make_galaxies
from tests.platform.factories import decals_smooth_path, volunteer_client
from workflows.models import Workflow
from workflows.shipped import DECALS_DR5, GZ2

pytestmark = pytest.mark.django_db

FEATURED_EDGE_ON = [{"question": "smooth-or-featured", "answer": "featured-or-disk"},
                    {"question": "disk-edge-on", "answer": "yes"},
                    {"question": "edge-on-bulge", "answer": "none"},
                    {"question": "merging", "answer": "none"}]


@pytest.fixture
def decals():
    return Workflow.objects.get(slug=DECALS_DR5)


def vote(workflow, galaxy, annotations, *, volunteer="v1", simulated=False):
    return submit_classification(submission=Submission(workflow_slug=workflow.slug, galaxy_id_str=galaxy.id_str,
                                                       annotations=annotations, idempotency_key=uuid.uuid4().hex),
                                 volunteer=Volunteer.anonymous(volunteer), is_simulated=simulated).classification


def test_pages_render_and_set_the_csrf_cookie(client):
    for path in ("/", "/classify/", f"/classify/{DECALS_DR5}/", "/me/", "/accounts/login/", "/accounts/signup/"):
        response = client.get(path)
        assert response.status_code == 200, path
    assert "csrftoken" in client.get("/classify/").cookies
    page = client.get("/classify/").content.decode()
    assert f'data-workflow="{GZ2}"' in page and f"/api/workflows/{GZ2}/" in page  # the default workflow
    assert "site.css" in client.get("/accounts/login/").content.decode()  # allauth inside the site layout
    assert client.get("/classify/no-such-workflow/").status_code == 404


def test_site_stats_count_real_volunteers_and_report_no_model(decals):
    galaxies = make_galaxies(3, size=16)
    vote(decals, galaxies[0], decals_smooth_path(), volunteer="a")
    vote(decals, galaxies[1], decals_smooth_path(), volunteer="a")
    vote(decals, galaxies[1], decals_smooth_path(), volunteer="b")
    vote(decals, galaxies[2], decals_smooth_path(), volunteer="bot", simulated=True)
    body = volunteer_client().get("/api/site/stats/").json()
    assert body == {"galaxies": 3, "classifications": 4, "volunteers": 2, "model_version": None}
    assert "no model yet" in volunteer_client().get("/").content.decode()


def test_field_guide_lists_every_answer_with_attached_examples(decals):
    (galaxy,) = make_galaxies(1, size=16)
    FieldGuideExample.objects.create(workflow=decals, question="bar", answer="strong", galaxy=galaxy, caption="clear bar")
    body = volunteer_client().get(f"/api/site/field-guide/{DECALS_DR5}/").json()
    tree = decals.decision_tree
    assert [q["key"] for q in body["questions"]] == list(tree.question_keys)
    bar = next(q for q in body["questions"] if q["key"] == "bar")
    strong = next(a for a in bar["answers"] if a["key"] == "strong")
    assert strong["examples"] == [{"image_url": galaxy.image.url, "caption": "clear bar", "galaxy": galaxy.id_str}]
    assert strong["help"] == tree.question("bar").answer("strong").help
    assert strong["column"] == "bar_strong"
    assert all(a["examples"] == [] for a in bar["answers"] if a["key"] != "strong")


def test_field_guide_example_must_name_an_answer_of_the_tree(decals):
    (galaxy,) = make_galaxies(1, size=16)
    with pytest.raises(ValidationError, match="answer"):
        FieldGuideExample(workflow=decals, question="bar", answer="enormous", galaxy=galaxy).full_clean()
    with pytest.raises(ValidationError, match="question"):
        FieldGuideExample(workflow=decals, question="colour", answer="red", galaxy=galaxy).full_clean()
    with pytest.raises(ValidationError, match="galaxy or upload"):
        FieldGuideExample(workflow=decals, question="bar", answer="strong").full_clean()


def test_pick_examples_takes_the_strongest_agreement(decals):
    clear, mixed, few = make_galaxies(3, size=16)
    for i in range(5):
        vote(decals, clear, FEATURED_EDGE_ON, volunteer=f"c{i}")
    for i in range(5):
        vote(decals, mixed, FEATURED_EDGE_ON if i < 3 else decals_smooth_path(), volunteer=f"m{i}")
    vote(decals, few, FEATURED_EDGE_ON, volunteer="f0")  # one vote: below min_votes
    created = pick_field_guide_examples(workflow=decals, per_answer=2, min_votes=4, min_fraction=0.5)
    edge_on = list(FieldGuideExample.objects.filter(question="disk-edge-on", answer="yes").order_by("position"))
    assert [e.galaxy for e in edge_on] == [clear]  # `mixed` had only 3 votes on disk-edge-on
    featured = list(FieldGuideExample.objects.filter(question="smooth-or-featured", answer="featured-or-disk")
                    .order_by("position"))
    assert [e.galaxy for e in featured] == [clear, mixed]
    assert featured[1].caption == "60% of 5 volunteers here"
    assert created == FieldGuideExample.objects.count()
    # Answers that already have examples keep them.
    assert pick_field_guide_examples(workflow=decals, per_answer=2, min_votes=4) == 0


def test_pick_examples_needs_a_confident_share_and_can_use_published_votes(decals):
    mixed, simulated, published = make_galaxies(3, size=16)
    for i in range(5):
        vote(decals, mixed, FEATURED_EDGE_ON if i < 3 else decals_smooth_path(), volunteer=f"m{i}")
        vote(decals, simulated, FEATURED_EDGE_ON, volunteer=f"sim{i}", simulated=True)
    column = "smooth-or-featured_featured-or-disk"
    published.metadata = {PUBLISHED_VOTES: {"workflow": decals.slug, "image": "SDSS", "voters": "Galaxy Zoo 2 volunteers",
                                            "counts": {column: 35, "smooth-or-featured_smooth": 5}}}
    published.save()
    # 60% is not confident, and simulated volunteers never make an example.
    pick_field_guide_examples(workflow=decals, per_answer=2, min_votes=4)
    picked = FieldGuideExample.objects.all()
    assert {e.galaxy for e in picked} == {mixed} and {e.question for e in picked} == {"merging"}  # 5 of 5 "none"
    picked.delete()
    assert pick_field_guide_examples(workflow=decals, per_answer=2, min_votes=10, published=True) == 1
    example = FieldGuideExample.objects.get()
    assert (example.galaxy, example.answer) == (published, "featured-or-disk")
    assert example.caption == "SDSS, 88% of 40 Galaxy Zoo 2 volunteers"


@pytest.mark.shared_data
def test_import_tutorial_images_for_matching_answers(decals, shared_data, tmp_path):
    directory = shared_data / "field_guide_examples"
    created, skipped = import_field_guide_images(workflow=decals, directory=directory)
    tree = decals.decision_tree
    assert created == FieldGuideExample.objects.count() > 50
    for example in FieldGuideExample.objects.all():
        assert tree.question(example.question).answer(example.answer) is not None
        assert example.image.name.endswith(".jpg")
    assert any("odd-feature" in reason and reason.startswith("row ") for reason in skipped)
    with pytest.raises(FileNotFoundError, match="index.csv"):
        import_field_guide_images(workflow=decals, directory=tmp_path)


def test_import_command_names_an_unknown_workflow(tmp_path):
    with pytest.raises(Exception, match="--workflow: no workflow 'nope'"):
        call_command("import_field_guide_images", str(tmp_path), "--workflow", "nope")


def test_history_page_shows_labels_and_filters_favourites(client, decals):
    galaxies = make_galaxies(2, size=16)
    assert client.post("/api/volunteers/anonymous/").status_code == 201  # as classify.js does first
    for galaxy, path in zip(galaxies, (decals_smooth_path(), FEATURED_EDGE_ON)):
        response = client.post("/api/classifications/", {
            "workflow": decals.slug, "galaxy": galaxy.id_str, "annotations": path,
            "idempotency_key": uuid.uuid4().hex}, content_type="application/json")
        assert response.status_code == 201
    favourite = Classification.objects.get(galaxy=galaxies[1])
    assert client.put(f"/api/me/classifications/{favourite.id}/favourite/", {"is_favourite": True},
                      content_type="application/json").status_code == 200
    page = client.get("/me/").content.decode()
    assert galaxies[0].id_str in page and galaxies[1].id_str in page
    assert "Yes, edge-on disk" in page and "Cigar-shaped" not in page
    favourites = client.get("/me/?favourites=1").content.decode()
    assert galaxies[1].id_str in favourites and galaxies[0].id_str not in favourites
    assert "Nothing here yet" in volunteer_client().get("/me/").content.decode()  # another browser sees nothing


def test_signing_up_keeps_the_anonymous_history(client, decals):
    mine, shared = make_galaxies(2, size=16)
    assert client.post("/api/volunteers/anonymous/").status_code == 201
    for galaxy in (mine, shared):
        client.post("/api/classifications/", {"workflow": decals.slug, "galaxy": galaxy.id_str,
                                               "annotations": decals_smooth_path(), "idempotency_key": uuid.uuid4().hex},
                    content_type="application/json")
    response = client.post("/accounts/signup/", {"email": "vera@example.org",
                                                 "password1": "orbit-nebula-42", "password2": "orbit-nebula-42"})
    assert response.status_code == 302
    history = client.get("/api/me/classifications/").json()["results"]
    assert sorted(c["galaxy"] for c in history) == sorted([mine.id_str, shared.id_str])
    assert Classification.objects.filter(volunteer_key__startswith="anon:").count() == 0


def test_claiming_leaves_galaxies_the_account_already_classified(decals, django_user_model):
    from frontend.services import claim_anonymous_classifications

    user = django_user_model.objects.create_user("ada", password="x")
    both, only_anon = make_galaxies(2, size=16)
    submit_classification(submission=Submission(workflow_slug=decals.slug, galaxy_id_str=both.id_str,
                                                annotations=decals_smooth_path(), idempotency_key=uuid.uuid4().hex),
                          volunteer=Volunteer.for_user(user.id))
    vote(decals, both, decals_smooth_path(), volunteer="s1")
    vote(decals, only_anon, decals_smooth_path(), volunteer="s1")
    assert claim_anonymous_classifications(anonymous_key="anon:s1", user_id=user.id) == 1
    assert Classification.objects.get(galaxy=only_anon).volunteer_key == f"user:{user.id}"
    assert Classification.objects.get(galaxy=both, volunteer_key="anon:s1").counted
