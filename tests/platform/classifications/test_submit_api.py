import uuid

import pytest

from classifications.models import Classification, SubjectStatus
from classifications.serializers import ClassificationOutputSerializer
from classifications.services import ensure_subject_statuses
from galaxies.models import Galaxy
from galaxies.serializers import GalaxySerializer
from tests.platform.factories import GalaxyFactory, decals_smooth_path, volunteer_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return volunteer_client()


def submit(client, galaxy, annotations, key=None, workflow="gz-decals-dr5"):
    return client.post("/api/classifications/", {
        "workflow": workflow, "galaxy": galaxy.id_str, "annotations": annotations,
        "idempotency_key": key or uuid.uuid4().hex}, format="json")


def test_valid_classification_is_stored_and_counted(client):
    galaxy = GalaxyFactory()
    response = submit(client, galaxy, decals_smooth_path())
    assert response.status_code == 201, response.json()
    status = SubjectStatus.objects.get(galaxy=galaxy, workflow__slug="gz-decals-dr5")
    assert status.classification_count == 1
    assert status.vote_counts == {"smooth-or-featured_smooth": 1, "how-rounded_round": 1, "merging_none": 1}


def test_replayed_key_returns_original_and_changes_nothing(client):
    galaxy = GalaxyFactory()
    first = submit(client, galaxy, decals_smooth_path(), key="key-12345678")
    again = submit(client, galaxy, decals_smooth_path(), key="key-12345678")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Classification.objects.count() == 1
    assert SubjectStatus.objects.get(galaxy=galaxy, workflow__slug="gz-decals-dr5").classification_count == 1


def test_a_key_reused_for_a_different_classification_is_409_and_changes_nothing(client):
    galaxy, other = GalaxyFactory.create_batch(2)
    assert submit(client, galaxy, decals_smooth_path(), key="key-reused-1").status_code == 201
    cigar = [dict(a, answer="cigar-shaped") if a["question"] == "how-rounded" else a for a in decals_smooth_path()]
    for response in (submit(client, galaxy, cigar, key="key-reused-1"),  # other answers
                     submit(client, other, decals_smooth_path(), key="key-reused-1"),  # other galaxy
                     submit(client, galaxy, decals_smooth_path(), key="key-reused-1", workflow="gz2")):  # other workflow
        assert response.status_code == 409, response.json()
        assert response.json()["code"] == "idempotency_key_reused" and response.json()["field"] == "idempotency_key"
    assert submit(client, galaxy, decals_smooth_path(), key="key-reused-1").status_code == 200  # same body: replay
    assert Classification.objects.count() == 1
    assert SubjectStatus.objects.get(galaxy=galaxy, workflow__slug="gz-decals-dr5").vote_counts["how-rounded_round"] == 1


def test_second_classification_by_same_volunteer_does_not_count(client):
    galaxy = GalaxyFactory()
    submit(client, galaxy, decals_smooth_path())
    second = submit(client, galaxy, decals_smooth_path())
    assert second.status_code == 201 and second.json()["counted"] is False
    assert SubjectStatus.objects.get(galaxy=galaxy, workflow__slug="gz-decals-dr5").classification_count == 1


def test_incomplete_path_is_rejected_naming_the_question(client):
    galaxy = GalaxyFactory()
    response = submit(client, galaxy, decals_smooth_path()[:2])
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "annotations" and body["error"]["rule"] == "incomplete"
    assert body["error"]["question"] == "merging"
    assert Classification.objects.count() == 0


def test_unknown_galaxy_is_404_and_retired_is_409(client):
    galaxy = GalaxyFactory()
    assert submit(client, type("G", (), {"id_str": "nope"})(), decals_smooth_path()).status_code == 404
    ensure_subject_statuses()
    SubjectStatus.objects.filter(galaxy=galaxy).update(retired_at="2026-01-01T00:00:00Z")
    response = submit(client, galaxy, decals_smooth_path())
    assert response.status_code == 409 and response.json()["code"] == "subject_retired"


def test_bodies_are_what_the_serializers_give_for_the_stored_rows(client):
    """The hot paths build their bodies by hand: they must match the DRF serializers (and the
    schema) field for field, for a new classification, a replay and the queue."""
    galaxy = GalaxyFactory(pixel_scale=0.262)
    ensure_subject_statuses()
    response = client.post("/api/classifications/", {
        "workflow": "gz-decals-dr5", "galaxy": galaxy.id_str, "annotations": decals_smooth_path(),
        "idempotency_key": "body-key-1", "started_at": "2026-03-01T10:00:00+01:00",
        "finished_at": "2026-03-01T09:00:05.250Z", "selection": "priority"}, format="json")
    assert response.status_code == 201
    stored = Classification.objects.select_related("galaxy", "workflow").get()
    assert response.json() == ClassificationOutputSerializer(stored).data
    assert response.json()["started_at"] == "2026-03-01T09:00:00Z"
    replay = submit(client, galaxy, decals_smooth_path(), key="body-key-1")
    assert replay.status_code == 200 and replay.json() == ClassificationOutputSerializer(stored).data

    other = GalaxyFactory(survey="", image="")
    ensure_subject_statuses()
    queue = volunteer_client().get("/api/workflows/gz-decals-dr5/next/?limit=5").json()["results"]
    assert sorted(item["galaxy"]["id_str"] for item in queue) == sorted([galaxy.id_str, other.id_str])
    for item in queue:
        shown = Galaxy.objects.get(id_str=item["galaxy"]["id_str"])
        status = SubjectStatus.objects.get(galaxy=shown, workflow__slug="gz-decals-dr5")
        assert item == {"galaxy": GalaxySerializer(shown).data, "selection": item["selection"],
                        "priority": status.priority, "classification_count": status.classification_count}
        assert item["selection"] in ("priority", "random")
    assert {item["galaxy"]["image_url"] is None for item in queue} == {True, False}
