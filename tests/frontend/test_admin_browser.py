"""The admin pages this project's settings live on, in Debian's Chromium: an admin switches a
workflow's early retirement to the majority-path promise, and reads which queue rule produced
the active model's priorities; screenshots of both pages."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.frontend.conftest import shot
from tests.frontend.test_demo_site_browser import demo_site  # noqa: F401 (fixture)
from workflows.models import Workflow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin_page(open_page, live_server):
    """open_page for a signed-in superuser (the session cookie of a Django test client login)."""
    user = get_user_model().objects.create_superuser("root", "root@example.org", "pw-12345678")
    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value

    def _open(path: str):
        page = open_page("/static/frontend/img/logo.svg", viewport={"width": 1366, "height": 1000})
        page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        page.goto(live_server.url + path)
        return page

    return _open


def test_an_admin_chooses_the_retirement_promise_and_sees_the_queue_rule(admin_page, demo_site):  # noqa: F811
    gz2, version = demo_site
    page = admin_page(f"/admin/workflows/workflow/{gz2.id}/change/")
    page.check("#id_early_retirement")
    page.select_option("#id_retirement_agreement", "majority-path")
    shot(page, "admin-workflow-retirement", full_page=True)
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    gz2.refresh_from_db()
    assert (gz2.early_retirement, gz2.retirement_agreement) == (True, Workflow.RetirementAgreement.MAJORITY_PATH)

    page.goto(page.url.split("/admin/")[0] + f"/admin/retraining/modelversion/{version.id}/change/")
    summary = page.locator(".field-queue_rule_summary .readonly").inner_text()
    shot(page, "admin-model-version-queue-rule", full_page=True)
    version.refresh_from_db()
    assert version.queue_rule, "the demo's installed model records the rule of its priorities"
    assert re.search(r"TypiClust|BALD", summary), summary
