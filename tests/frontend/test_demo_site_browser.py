"""The demo as a newcomer sees it, in real Chromium: the shipped pack's real galaxies, the
shipped model's posterior, the field guide's real examples, every page at desktop (1366×860)
and phone (375×812) size — screenshots in test-artifacts/frontend/demo-*.png — with axe-core
finding no serious or critical accessibility violation on any of them."""

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from classifications.models import SubjectStatus
from demo.services import install_default_model, load_demo_galaxies, seed_simulated_votes
from frontend.services import pick_field_guide_examples
from galaxies.models import Galaxy
from retraining.models import Prediction, TrainingRun
from retraining.runs import start_training_run
from tests.frontend.conftest import shot
from workflows.models import Workflow
from workflows.shipped import GZ2

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 860}
PHONE = {"width": 375, "height": 812}
SIZES = {"desktop": {"viewport": DESKTOP},
         "phone": {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}}
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
AXE_URL = "/__tests__/axe.min.js"  # answered by the browser context's route, never by the site
BLOCKING = ("serious", "critical")
README_GALAXY = "GZ2K-936214"  # a clear spiral of the pack, picked by eye for the README


@pytest.fixture
def demo_site():
    """What `make demo` sets up, with fewer simulated votes: the pack, the shipped model, real examples."""
    gz2 = Workflow.objects.get(slug=GZ2)
    load_demo_galaxies()
    seed_simulated_votes(workflow=gz2, galaxies=Galaxy.objects.order_by("id")[:40])
    version = install_default_model(workflow=gz2, log=lambda _m: None)
    pick_field_guide_examples(workflow=gz2, per_answer=3, min_votes=10, min_fraction=0.8, published=True)
    return gz2, version


def serve_axe(route):
    route.fulfill(status=200, body=AXE.read_bytes(), content_type="text/javascript")


def axe_violations(page) -> list[str]:
    """Serious and critical axe-core violations of the page as it is now. axe is served from the
    page's own origin (a routed URL), so the site's Content-Security-Policy stays in force."""
    origin = page.evaluate("location.origin")
    page.add_script_tag(url=f"{origin}{AXE_URL}")
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in BLOCKING]


def check_page(page, name: str, audits: dict[str, list[str]], **shot_options) -> None:
    page.wait_for_load_state("networkidle")
    shot(page, f"demo-{name}", **shot_options)
    audits[name] = axe_violations(page)


def open_sized(open_page, path: str, size: str, **options):
    return open_page(path, routes={f"**{AXE_URL}": serve_axe}, **SIZES[size], **options)


def classify_to_feedback(page):
    """Answer the first answer of every (remaining) question down to the feedback."""
    page.wait_for_selector("#classify-app[data-ready='true']")
    galaxy = page.locator("#stage").get_attribute("data-galaxy")
    while page.locator("#done").count() == 0:
        page.locator("fieldset.question .answer").first.click()
    page.click("#done")
    page.wait_for_selector(".feedback-q")
    return galaxy


def classify_as_the_crowd(page, tree, counts):
    """Answer each question as most real (published) volunteers did, down to the feedback."""
    page.wait_for_selector("#classify-app[data-ready='true']")
    while page.locator("#done").count() == 0:
        question = tree.question(page.locator("fieldset.question").get_attribute("data-question"))
        answer = max(question.answers, key=lambda a: counts.get(a.column, 0))
        page.click(f"fieldset.question .answer[data-answer='{answer.key}']")
    page.click("#done")
    page.wait_for_selector(".feedback-q")


def fits_without_scrolling(page) -> bool:
    return page.evaluate("document.scrollingElement.scrollHeight <= window.innerHeight + 1 && (() => {"
                         " const p = document.querySelector('.panel'); return p.scrollHeight <= p.clientHeight + 1; })()")


def model_shares(page) -> list[str]:
    return page.locator(".bars .value .model-value").all_inner_texts()


def test_volunteer_pages_show_real_galaxies_the_models_posterior_and_pass_axe(open_page, demo_site, live_server):
    gz2, version = demo_site
    audits: dict[str, list[str]] = {}

    for size in SIZES:
        page = open_sized(open_page, "/", size)
        check_page(page, f"landing-{size}", audits, full_page=True)
        footer = page.inner_text(".site-footer")
        assert "SDSS" in footer and "Legacy Surveys" not in footer and "Hubble" not in footer
        assert page.get_by_text("No account needed").count() == 1
        start = page.locator("#start-classifying").bounding_box()
        assert start["y"] + start["height"] <= page.viewport_size["height"], f"'Start classifying' below the fold ({size})"

    # Classify at 1366×860: the feedback fits, its labels are whole, and the model's posterior
    # differs from galaxy to galaxy.
    page = open_sized(open_page, f"/classify/{GZ2}/", "desktop")
    page.wait_for_selector("#classify-app[data-ready='true']")
    check_page(page, "classify-desktop", audits)
    first = classify_to_feedback(page)
    check_page(page, "feedback-desktop", audits)
    assert f"Model v{version.number}" in page.inner_text(".feedback")
    assert fits_without_scrolling(page), "the feedback needs scrolling"
    cut = page.evaluate("[...document.querySelectorAll('.bars .label')]"
                        ".filter((l) => l.scrollWidth > l.clientWidth + 1).map((l) => l.textContent)")
    assert cut == [], f"cut labels: {cut}"
    shares_first = model_shares(page)
    page.click("#next")
    page.wait_for_function(f"document.querySelector('#stage').dataset.galaxy !== '{first}'")

    # The field guide opened at the second question: real, confident examples captioned with
    # their source, and that question's heading below the drawer's sticky header.
    page.wait_for_selector("#classify-app[data-ready='true']")
    page.locator("fieldset.question .answer").first.click()
    question = page.locator("fieldset.question").get_attribute("data-question")
    page.keyboard.press("g")
    page.wait_for_selector("#field-guide[open] .drawer-body figure img")
    page.wait_for_timeout(300)
    check_page(page, "field-guide-desktop", audits)
    head = page.locator(".drawer-head").bounding_box()
    heading = page.locator(f"#guide-{question} h3").bounding_box()
    assert heading["y"] >= head["y"] + head["height"], "the question's heading hides under the drawer header"
    caption = page.locator(".drawer-body figcaption").first.inner_text()
    assert re.fullmatch(r"SDSS, (8\d|9\d|100)% of \d\d Galaxy Zoo 2 volunteers", caption), caption
    page.keyboard.press("Escape")

    second = classify_to_feedback(page)
    stored = {p.galaxy.id_str: p.fractions for p in Prediction.objects.filter(
        model_version=version, galaxy__id_str__in=[first, second]).select_related("galaxy")}
    largest_difference = max(abs(a - b) for a, b in zip(stored[first], stored[second], strict=True))
    assert largest_difference > 0.02 and model_shares(page) != shares_first

    page.goto(live_server.url + "/me/")
    check_page(page, "history-desktop", audits, full_page=True)
    assert page.locator(".history-item").count() == 2

    phone = open_sized(open_page, f"/classify/{GZ2}/", "phone")
    phone.wait_for_selector("#classify-app[data-ready='true']")
    check_page(phone, "classify-phone", audits)
    classify_to_feedback(phone)
    check_page(phone, "feedback-phone", audits, full_page=True)
    phone.keyboard.press("g")
    phone.wait_for_selector("#field-guide[open] .drawer-body figure img")
    check_page(phone, "field-guide-phone", audits)
    phone.goto(live_server.url + "/me/")
    check_page(phone, "history-phone", audits, full_page=True)

    for path, name in (("/accounts/login/", "login"), ("/accounts/signup/", "signup")):
        for size in SIZES:
            check_page(open_sized(open_page, path, size), f"{name}-{size}", audits, full_page=True)

    # Signed in, the landing page does not offer an account.
    user = get_user_model().objects.create_user("vera", "vera@example.org", "pw-12345678")
    signed_in = open_sized(open_page, "/accounts/login/", "desktop")
    signed_in.fill("input[name='login']", "vera")
    signed_in.fill("input[name='password']", "pw-12345678")
    signed_in.click("form button[type='submit']")
    signed_in.wait_for_load_state("networkidle")
    signed_in.goto(live_server.url + "/")
    assert user.username in signed_in.inner_text(".site-header")
    assert signed_in.get_by_text("No account needed").count() == 0
    check_page(signed_in, "landing-signed-in-desktop", audits)

    assert {name: found for name, found in audits.items() if found} == {}
    assert SubjectStatus.objects.filter(workflow=gz2, classification_count__gt=0).exists()


def test_a_long_branch_classified_as_the_crowd_did_fits_and_the_model_agrees(open_page, demo_site):
    """A clear spiral (95% of volunteers: spiral; 76%: two arms), first in the queue, answered as most Galaxy Zoo 2 volunteers did:
    the whole spiral branch's feedback fits at 1366×860 and the model's top answers are the
    crowd's (these are the README's screenshots)."""
    gz2, version = demo_site
    tree = gz2.decision_tree
    galaxy = Galaxy.objects.get(id_str=README_GALAXY)
    counts = galaxy.metadata["published_votes"]["counts"]
    Workflow.objects.filter(pk=gz2.pk).update(random_fraction=0.0)
    SubjectStatus.objects.filter(workflow=gz2, galaxy=galaxy).update(priority=10.0)
    prediction = Prediction.objects.get(model_version=version, galaxy=galaxy)
    for question in ("smooth-or-features", "spiral"):
        answers = tree.question(question).answers
        crowd = max(answers, key=lambda a: counts.get(a.column, 0))
        model = max(answers, key=lambda a: prediction.fractions[a.index])
        assert crowd == model, (question, crowd.key, model.key)

    for size in SIZES:
        page = open_sized(open_page, f"/classify/{GZ2}/", size)
        page.wait_for_selector("#classify-app[data-ready='true']")
        assert page.locator("#stage").get_attribute("data-galaxy") == galaxy.id_str
        if size == "phone":
            page.wait_for_load_state("networkidle")
            shot(page, "readme-classify-phone")  # the first question, with the field guide's thumbnails
        classify_as_the_crowd(page, tree, counts)
        page.wait_for_load_state("networkidle")
        shot(page, f"readme-feedback-{size}", full_page=size == "phone")
        if size == "desktop":
            assert page.locator(".feedback-q").count() >= 6
            assert fits_without_scrolling(page), "the spiral branch's feedback needs scrolling"


def test_admin_pages_fit_1366_px_and_pass_axe(open_page, demo_site, live_server):
    """Run and model-version lists without horizontal scrolling at 1366 px; the prediction page
    titled by galaxy and version with its labelled table; axe-clean at both sizes."""
    gz2, version = demo_site
    get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-12345678")
    page = open_sized(open_page, "/admin/login/", "desktop")
    page.fill("input[name='username']", "boss")
    page.fill("input[name='password']", "pw-12345678")
    page.click("input[type='submit']")
    page.wait_for_load_state("networkidle")
    start_training_run(workflow=gz2, trigger=TrainingRun.Trigger.ADMIN)  # a row in the run list (no worker here)
    prediction = Prediction.objects.filter(model_version=version).first()
    status = SubjectStatus.objects.filter(workflow=gz2, classification_count__gt=0).first()
    audits: dict[str, list[str]] = {}
    pages = (("/admin/retraining/trainingrun/", "admin-runs"),
             ("/admin/retraining/modelversion/", "admin-model-versions"),
             (f"/admin/retraining/modelversion/{version.pk}/change/", "admin-model-version"),
             (f"/admin/retraining/prediction/{prediction.pk}/change/", "admin-prediction"),
             (f"/admin/classifications/subjectstatus/{status.pk}/change/", "admin-subject-status"))
    for path, name in pages:
        page.goto(live_server.url + path)
        check_page(page, f"{name}-desktop", audits, full_page=True)
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= DESKTOP["width"], f"{path} needs horizontal scrolling ({width} px)"
    phone = open_sized(open_page, "/admin/login/", "phone")
    phone.fill("input[name='username']", "boss")
    phone.fill("input[name='password']", "pw-12345678")
    phone.click("input[type='submit']")
    for path, name in pages:
        phone.goto(live_server.url + path)
        check_page(phone, f"{name}-phone", audits)
    page.goto(live_server.url + f"/admin/retraining/prediction/{prediction.pk}/change/")
    assert prediction.galaxy.id_str in page.inner_text("h1") and f"v{version.number}" in page.inner_text("h1")
    assert page.get_by_text("90% credible intervals").count() == 1
    assert {name: found for name, found in audits.items() if found} == {}
