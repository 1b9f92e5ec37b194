"""One volunteer, one vote: anonymous votes count only under an identity the server issued
(a signed token, rate-limited per address); without one they are refused and nothing is stored."""

import copy
import uuid

import pytest
from django.core import signing
from rest_framework.test import APIClient

from classifications.models import Classification, SubjectStatus
from classifications.services import ensure_subject_statuses
from classifications.volunteers import COOKIE_NAME, token_for
from tests.platform.factories import GalaxyFactory, decals_smooth_path, volunteer_client
from workflows.shipped import DECALS_DR5

pytestmark = pytest.mark.django_db
IDENTITY_URL = "/api/volunteers/anonymous/"


@pytest.fixture
def galaxy():
    made = GalaxyFactory()
    ensure_subject_statuses()
    return made


def vote(galaxy) -> dict:
    return {"workflow": DECALS_DR5, "galaxy": galaxy.id_str, "annotations": decals_smooth_path(),
            "idempotency_key": uuid.uuid4().hex}


def count(galaxy) -> int:
    return SubjectStatus.objects.get(galaxy=galaxy, workflow__slug=DECALS_DR5).classification_count


def test_cookie_less_votes_are_refused_and_nothing_is_stored(galaxy):
    """The issue's attack: 40 cookie-less posts used to be 40 volunteers and retired the galaxy."""
    statuses = {APIClient().post("/api/classifications/", vote(galaxy), format="json").status_code for _ in range(40)}
    batch = APIClient().post("/api/classifications/batch/", {"classifications": [vote(galaxy)]}, format="json")
    assert statuses == {403} and batch.status_code == 403
    assert batch.json()["code"] == "volunteer_identity_required" and batch.json()["field"] == "volunteer"
    assert Classification.objects.count() == 0 and count(galaxy) == 0


def test_an_issued_identity_is_one_volunteer_kept_by_the_cookie(galaxy):
    client = APIClient()
    issued = client.post(IDENTITY_URL)
    assert issued.status_code == 201 and issued.json()["volunteer"].startswith("anon:")
    cookie = issued.cookies[COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    again = client.post(IDENTITY_URL)
    assert again.status_code == 200 and again.json()["volunteer"] == issued.json()["volunteer"]
    first = client.post("/api/classifications/", vote(galaxy), format="json").json()
    second = client.post("/api/classifications/", vote(galaxy), format="json").json()
    assert (first["counted"], second["counted"]) == (True, False)
    assert set(Classification.objects.values_list("volunteer_key", flat=True)) == {issued.json()["volunteer"]}
    assert count(galaxy) == 1


def test_scripts_may_send_the_token_as_a_header(galaxy):
    token = APIClient().post(IDENTITY_URL).json()["token"]
    response = APIClient().post("/api/classifications/", vote(galaxy), format="json", HTTP_X_VOLUNTEER=token)
    assert response.status_code == 201 and response.json()["counted"] is True


@pytest.mark.parametrize("token", [
    "0123456789abcdef",  # unsigned
    token_for("someone") + "x",  # altered signature
    token_for("someone").replace("someone", "someone-else"),  # another id under someone's signature
    signing.TimestampSigner(salt="another.purpose").sign("someone"),  # signed for something else
])
def test_forged_or_altered_tokens_are_refused(galaxy, token):
    client = APIClient()
    client.cookies[COOKIE_NAME] = token
    assert client.post("/api/classifications/", vote(galaxy), format="json").status_code == 403
    assert Classification.objects.count() == 0


def test_an_expired_token_is_refused(galaxy, settings):
    client = volunteer_client()
    assert client.post("/api/classifications/", vote(galaxy), format="json").status_code == 201
    settings.VOLUNTEER_TOKEN_MAX_AGE = -1
    assert client.post("/api/classifications/", vote(galaxy), format="json").status_code == 403


def test_issuing_is_rate_limited_per_address_on_the_shared_cache(settings):
    framework = copy.deepcopy(settings.REST_FRAMEWORK)
    framework["DEFAULT_THROTTLE_RATES"]["volunteer_ip"] = "2/hour"
    settings.REST_FRAMEWORK = framework
    clients = [APIClient() for _ in range(3)]
    statuses = [client.post(IDENTITY_URL).status_code for client in clients]
    assert statuses == [201, 201, 429]
    assert clients[2].post(IDENTITY_URL, REMOTE_ADDR="127.0.0.2").status_code == 201  # another address
    # Holding an identity is not a new one: it is answered whatever the address's count.
    assert clients[0].post(IDENTITY_URL).status_code == 200


def test_the_queue_and_history_work_without_an_identity(galaxy):
    client = APIClient()
    assert client.get(f"/api/workflows/{DECALS_DR5}/next/").status_code == 200
    assert client.get("/api/me/classifications/").json()["results"] == []
    assert COOKIE_NAME not in client.cookies, "only the identity endpoint issues identities"
