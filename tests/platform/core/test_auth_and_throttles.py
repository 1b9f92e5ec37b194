"""Levers an attacker had: Basic auth costing a password hash per request, unthrottled submits
and queue requests, and unlimited password guesses at the admin's and allauth's login."""

import base64
import copy
import uuid
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from rest_framework.test import APIClient

from classifications.models import Classification
from classifications.services import ensure_subject_statuses
from tests.platform.factories import GalaxyFactory, decals_smooth_path, volunteer_client
from workflows.shipped import DECALS_DR5

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def rates(settings):
    """rates(submit="3/min", ...): request rates for this test (the suite's defaults are huge)."""
    def set_rates(**scopes):
        framework = copy.deepcopy(settings.REST_FRAMEWORK)
        framework["DEFAULT_THROTTLE_RATES"].update(scopes)
        settings.REST_FRAMEWORK = framework
    return set_rates


def vote(galaxy) -> dict:
    return {"workflow": DECALS_DR5, "galaxy": galaxy.id_str, "annotations": decals_smooth_path(),
            "idempotency_key": uuid.uuid4().hex}


@pytest.fixture
def galaxies():
    made = GalaxyFactory.create_batch(5)
    ensure_subject_statuses()
    return made


def test_basic_auth_is_ignored_and_costs_no_password_hash(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    get_user_model().objects.create_user("alice", "alice@example.invalid", PASSWORD)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode())
    with mock.patch.object(PBKDF2PasswordHasher, "verify", autospec=True, return_value=True) as verify:
        response = client.get("/api/me/classifications/")
        training = client.get(f"/api/workflows/{DECALS_DR5}/training-runs/")
    assert response.status_code == 200
    assert training.status_code == 403, "Basic credentials must not authenticate anyone"
    verify.assert_not_called()


def test_a_token_authenticates_api_clients():
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_superuser("admin2", "a@example.invalid", None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get(f"/api/workflows/{DECALS_DR5}/training-runs/").status_code == 200


def test_submits_are_throttled_per_volunteer_with_retry_after(rates, galaxies):
    rates(submit="3/min")
    client = volunteer_client()
    statuses = [client.post("/api/classifications/", vote(g), format="json").status_code for g in galaxies[:4]]
    assert statuses == [201, 201, 201, 429]
    refused = client.post("/api/classifications/batch/", {"classifications": [vote(galaxies[4])]}, format="json")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert Classification.objects.count() == 3


def test_the_address_limit_holds_across_accounts(rates, galaxies):
    rates(submit="100/min", submit_ip="2/min")
    statuses = []
    for index, galaxy in enumerate(galaxies[:3]):
        client = APIClient()
        client.force_authenticate(get_user_model().objects.create_user(f"sock{index}"))
        statuses.append(client.post("/api/classifications/", vote(galaxy), format="json").status_code)
    assert statuses == [201, 201, 429]


def test_the_queue_is_throttled(rates, galaxies):
    rates(next="2/min")
    client = APIClient()
    statuses = [client.get(f"/api/workflows/{DECALS_DR5}/next/").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_a_forged_forwarded_for_does_not_reset_the_address_limit(rates, galaxies):
    rates(next="100/min", next_ip="2/min")
    statuses = [APIClient().get(f"/api/workflows/{DECALS_DR5}/next/", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code
                for i in range(3)]
    assert statuses == [200, 200, 429]


@pytest.fixture
def account(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; the lockout is the point
    return get_user_model().objects.create_user("carol", "carol@example.invalid", PASSWORD, is_staff=True)


def test_admin_login_locks_out_after_repeated_failures(account, settings):
    client = APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "carol", "password": "wrong"})
    response = client.post("/admin/login/", {"username": "carol", "password": PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_allauth_login_locks_out_after_repeated_failures(account, settings):
    client = APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert client.post("/accounts/login/", {"login": "carol@example.invalid", "password": "wrong"}).status_code != 302
    response = client.post("/accounts/login/", {"login": "carol@example.invalid", "password": PASSWORD})
    # allauth shows its form again (the lockout makes authenticate() fail): no session either way.
    assert response.status_code in (200, 429)
    assert "_auth_user_id" not in client.session
    from axes.models import AccessAttempt

    assert AccessAttempt.objects.get(username="carol@example.invalid").failures_since_start >= settings.AXES_FAILURE_LIMIT


def test_a_correct_login_before_the_limit_still_works(account):
    client = APIClient()
    client.post("/accounts/login/", {"login": "carol@example.invalid", "password": "wrong"})
    response = client.post("/accounts/login/", {"login": "carol@example.invalid", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(account.pk)


def test_signups_are_rate_limited_per_address(settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "signup": "2/m/ip"}
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    statuses = [APIClient().post("/accounts/signup/", {"email": f"v{i}@example.invalid", "password1": PASSWORD,
                                                       "password2": PASSWORD}).status_code for i in range(3)]
    assert statuses == [302, 302, 429]
    assert get_user_model().objects.count() == 2


def test_a_forged_forwarded_for_does_not_escape_the_lockout(account, settings):
    client = APIClient()
    for i in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "carol", "password": "wrong"}, HTTP_X_FORWARDED_FOR=f"10.9.0.{i}")
    response = client.post("/admin/login/", {"username": "carol", "password": PASSWORD},
                           HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert response.status_code == 429


def test_behind_trusted_proxies_the_lockout_is_per_client(account, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    locked, other = APIClient(), APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        locked.post("/admin/login/", {"username": "carol", "password": "wrong"}, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert locked.post("/admin/login/", {"username": "carol", "password": PASSWORD},
                       HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    assert other.post("/admin/login/", {"username": "carol", "password": PASSWORD},
                      HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 302
