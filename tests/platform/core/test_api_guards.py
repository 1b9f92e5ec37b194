"""The inputs schema fuzzing found to answer 500, each now a JSON 4xx with nothing stored, and a
database outage a JSON 503 the client can retry after."""

import json
import uuid
from unittest import mock

import pytest
from django.db import OperationalError

from classifications.models import Classification
from classifications.services import ensure_subject_statuses
from core.pagination import MAX_PAGE_SIZE
from tests.platform.factories import GalaxyFactory, decals_smooth_path, volunteer_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def galaxy():
    galaxy = GalaxyFactory()
    ensure_subject_statuses()
    return galaxy


def vote(galaxy, **changes) -> dict:
    return {"workflow": "gz-decals-dr5", "galaxy": galaxy.id_str, "annotations": decals_smooth_path(),
            "idempotency_key": uuid.uuid4().hex, **changes}


def post_raw(path: str, body: str):
    return volunteer_client().generic("POST", path, body.encode("utf-8", "surrogatepass"), content_type="application/json")


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def test_deeply_nested_json_is_a_400(galaxy):
    body = json.dumps(vote(galaxy))[:-1] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert "nested deeper" in assert_json_error(post_raw("/api/classifications/", body), 400)["detail"]
    assert Classification.objects.count() == 0


@pytest.mark.parametrize("text, rule", [("J1\\u0000", "NUL"), ("J1\\ud800", "unpaired surrogates")])
@pytest.mark.parametrize("field", ["galaxy", "idempotency_key", "annotations"])
def test_text_no_database_can_store_is_a_400(galaxy, field, text, rule):
    body = json.dumps(vote(galaxy))
    if field == "annotations":
        body = body.replace('"smooth"', f'"{text}"', 1)
    else:
        body = body.replace(f'"{field}": "', f'"{field}": "{text}', 1)
    assert rule in assert_json_error(post_raw("/api/classifications/", body), 400)["detail"]
    assert Classification.objects.count() == 0


def test_a_batch_with_one_unstorable_item_stores_nothing(galaxy):
    """The batch that committed its valid items and then answered 500 to every retry."""
    items = [vote(galaxy), vote(galaxy)]
    body = json.dumps({"classifications": items}).replace('"smooth"', '"smooth\\u0000"', 3)
    assert_json_error(post_raw("/api/classifications/batch/", body), 400)
    assert Classification.objects.count() == 0
    ok = volunteer_client().post("/api/classifications/batch/", {"classifications": items[:1]}, format="json")
    assert ok.status_code == 200 and ok.json()["results"][0]["status"] == 201


@pytest.mark.parametrize("path", ["/api/galaxies/J1%00/", "/api/galaxies/?limit=1%00", "/api/workflows/?x%00=1"])
def test_nul_in_a_path_or_query_is_a_400(galaxy, path):
    assert "NUL" in assert_json_error(volunteer_client().get(path), 400)["message"]


@pytest.mark.parametrize("path", ["/api/training-runs/99999999999999999999/",
                                  "/api/me/classifications/9223372036854775808/favourite/",
                                  "/api/model-versions/123456789012345678901234567890/activate/"])
def test_ids_past_the_database_range_are_a_json_404(path):
    client = volunteer_client()
    response = client.put(path, {"is_favourite": True}, format="json") if "favourite" in path else client.get(path)
    assert assert_json_error(response, 404)["code"] == "not_found"


def test_a_missing_classification_is_a_404_not_a_500():
    response = volunteer_client().put("/api/me/classifications/12345/favourite/", {"is_favourite": True}, format="json")
    assert_json_error(response, 404)


@pytest.mark.parametrize("query, field", [("limit=10000000", "limit"), ("limit=0", "limit"), ("limit=abc", "limit"),
                                          ("offset=100000000000000000000", "offset"), ("offset=-1", "offset")])
def test_page_bounds_are_enforced_as_400s(galaxy, query, field):
    body = assert_json_error(volunteer_client().get(f"/api/galaxies/?{query}"), 400)
    assert body["field"] == field


def test_the_largest_page_is_served(galaxy):
    response = volunteer_client().get(f"/api/galaxies/?limit={MAX_PAGE_SIZE}")
    assert response.status_code == 200 and response.json()["count"] == 1


def test_a_database_outage_is_a_json_503_with_retry_after():
    outage = OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")
    with mock.patch("django.db.backends.utils.CursorWrapper.execute", side_effect=outage):
        response = volunteer_client().get("/api/workflows/")
    body = assert_json_error(response, 503)
    assert body["code"] == "unavailable"
    assert int(response["Retry-After"]) > 0
