"""Admin triggers: the "Retrain" button on the run list and the "Retrain now" workflow action."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from retraining.models import TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_browser():
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-12345678"))
    return client


def test_run_list_has_a_retrain_button_that_queues_a_run(admin_browser, decals):
    page = admin_browser.get("/admin/retraining/trainingrun/")
    assert page.status_code == 200 and b">Retrain</button>" in page.content
    response = admin_browser.post("/admin/retraining/trainingrun/retrain/", {"workflow": decals.pk, "full_retrain": "on"})
    assert response.status_code == 302
    run = TrainingRun.objects.get()
    assert (run.workflow, run.trigger, run.full_retrain, run.status) == (decals, "admin", True, "queued")
    assert run.triggered_by.username == "boss"


def test_retrain_now_action_on_workflows(admin_browser, decals):
    response = admin_browser.post("/admin/workflows/workflow/", {"action": "retrain_now", "_selected_action": [decals.pk]})
    assert response.status_code == 302
    assert TrainingRun.objects.get().workflow == decals
    # A second click while the run is queued reports the conflict instead of queueing another.
    admin_browser.post("/admin/workflows/workflow/", {"action": "retrain_now", "_selected_action": [decals.pk]},
                       follow=True)
    assert TrainingRun.objects.count() == 1
    admin_browser.post("/admin/retraining/trainingrun/", {"action": "cancel_runs",
                                                         "_selected_action": [TrainingRun.objects.get().pk]})
    assert TrainingRun.objects.get().status == "cancelled"
