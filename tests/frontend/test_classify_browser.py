"""The volunteer UI in real Chromium against a live server: classifying through the DECaLS
tree with the mouse and with the keyboard, changing an answer, offline submissions, the image
viewer and the phone layout."""

import io
import json
import re
import threading
from urllib.parse import unquote

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone
from PIL import Image

from classifications.models import Classification, SubjectStatus
from tests.frontend.conftest import PHONE, make_galaxies, shot, wait_until
from workflows.models import Workflow
from workflows.shipped import DECALS_DR5, GZ2

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SPIRAL_BRANCH = [("smooth-or-featured", "featured-or-disk"), ("disk-edge-on", "no"), ("bar", "strong"),
                 ("has-spiral-arms", "yes"), ("spiral-winding", "tight"), ("spiral-arm-count", "2"),
                 ("bulge-size", "small"), ("merging", "none")]


def as_annotations(path):
    return [{"question": q, "answer": a} for q, a in path]


def image_difference(png_a: bytes, png_b: bytes) -> float:
    """Mean absolute difference of two screenshots, 0–255."""
    a = np.asarray(Image.open(io.BytesIO(png_a)).convert("L"), dtype=float)
    b = np.asarray(Image.open(io.BytesIO(png_b)).convert("L"), dtype=float)
    return float(np.abs(a - b).mean()) if a.shape == b.shape else 255.0


def wait_ready(page):
    page.wait_for_selector("#classify-app[data-ready='true']")
    return page.locator("#stage").get_attribute("data-galaxy")


def current_question(page):
    return page.locator("fieldset.question").get_attribute("data-question")


def stored(galaxy_id_str):
    return list(Classification.objects.filter(galaxy__id_str=galaxy_id_str).order_by("id"))


def test_mouse_classifies_a_full_branch_changing_an_answer_on_the_way(open_page):
    make_galaxies(3)
    Workflow.objects.filter(slug=GZ2).update(is_active=False)  # "Start classifying" opens the DECaLS tree
    page = open_page("/")
    shot(page, "01-landing-desktop")
    page.click("#start-classifying")
    galaxy = wait_ready(page)
    shot(page, "02-question-desktop")

    for question, answer in SPIRAL_BRANCH[:3]:
        assert current_question(page) == question
        page.click(f".answer[data-answer='{answer}']")
    # Back to the bar question, where the previous choice is marked, then change it.
    page.get_by_role("button", name="Back").click()
    assert current_question(page) == "bar"
    assert page.locator(".answer[aria-pressed='true']").get_attribute("data-answer") == "strong"
    page.click(".answer[data-answer='weak']")
    path = SPIRAL_BRANCH[:2] + [("bar", "weak")] + SPIRAL_BRANCH[3:]
    for question, answer in path[3:]:
        assert current_question(page) == question
        page.click(f".answer[data-answer='{answer}']")
    assert page.locator(".trail li").all_inner_texts() == [
        "Features or disk", "No, something else", "Weak bar", "Spiral arms", "Tight", "2", "Small", "Neither"]
    shot(page, "03-review-desktop")
    page.click("#done")
    page.wait_for_selector(".feedback-q")
    assert "No model yet" in page.inner_text(".feedback")
    assert page.locator(".bars li.mine .label").count() == len(path)
    shot(page, "04-feedback-desktop")

    (classification,) = stored(galaxy)
    assert classification.annotations == as_annotations(path)
    assert classification.counted and classification.selection in ("priority", "random")
    page.click("#favourite")
    page.wait_for_selector("#favourite[aria-pressed='true']")
    classification.refresh_from_db()
    assert classification.is_favourite

    page.click("#next")
    wait_until(page, f"document.querySelector('#stage').dataset.galaxy !== '{galaxy}'")
    assert current_question(page) == "smooth-or-featured"

    page.goto(page.url.split("/classify")[0] + "/me/?favourites=1")
    assert page.locator(".history-item").count() == 1
    assert page.locator(".history-item").get_attribute("data-galaxy") == galaxy
    shot(page, "05-history-desktop")
    assert page.js_errors == []


def test_keyboard_only_classification_and_viewer_keys(open_page):
    make_galaxies(2)
    page = open_page(f"/classify/{DECALS_DR5}/")
    galaxy = wait_ready(page)
    # Every control is reachable by Tab: the answers come after the viewer's toolbar.
    reached = set()
    for _ in range(25):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.dataset.action || document.activeElement.dataset.answer || ''"))
    assert {"zoom-in", "rotate", "invert", "reset", "smooth", "featured-or-disk", "artifact"} <= reached

    page.keyboard.press("+")
    page.keyboard.press("r")
    page.keyboard.press("i")
    stage = page.locator("#stage")
    assert float(stage.get_attribute("data-zoom")) > 1
    assert stage.get_attribute("data-rotation") == "90" and stage.get_attribute("data-invert") == "true"
    page.keyboard.press("0")
    assert stage.get_attribute("data-zoom") == "1.00" and stage.get_attribute("data-rotation") == "0"

    page.keyboard.press("1")            # smooth
    page.keyboard.press("2")            # in between
    page.keyboard.press("Backspace")    # back to how-rounded
    assert current_question(page) == "how-rounded"
    page.keyboard.press("3")            # cigar-shaped
    page.keyboard.press("4")            # merger
    page.wait_for_selector("#done")
    page.keyboard.press("Enter")        # Done has the focus
    page.wait_for_selector(".feedback-q")
    (classification,) = stored(galaxy)
    assert classification.annotations == as_annotations(
        [("smooth-or-featured", "smooth"), ("how-rounded", "cigar-shaped"), ("merging", "merger")])
    page.keyboard.press("n")
    wait_until(page, f"document.querySelector('#stage').dataset.galaxy !== '{galaxy}'")
    assert page.js_errors == []


def test_offline_submission_is_queued_survives_reload_and_is_stored_once(open_page):
    make_galaxies(3)
    page = open_page(f"/classify/{DECALS_DR5}/")
    galaxy = wait_ready(page)
    attempts = []

    def offline(route):
        attempts.append("aborted")
        route.abort("internetdisconnected")

    page.route("**/api/classifications/", offline)
    for key in ("1", "1", "1"):  # smooth, round, no merger
        page.keyboard.press(key)
    page.click("#done")
    page.wait_for_selector("[data-banner='offline']")
    shot(page, "06-offline-desktop")
    outbox = json.loads(page.evaluate("localStorage.getItem('gz-outbox-v1')"))
    assert len(outbox) == 1 and outbox[0]["payload"]["galaxy"] == galaxy
    key = outbox[0]["key"]
    assert stored(galaxy) == []

    # Still offline after a reload: the queue is still there and the galaxy is not offered again.
    page.reload()
    assert wait_ready(page) != galaxy
    assert json.loads(page.evaluate("localStorage.getItem('gz-outbox-v1')"))[0]["key"] == key

    # The next attempt reaches the server but its response is lost: the vote is stored...
    page.unroute("**/api/classifications/")

    def response_lost(route):
        route.fetch()
        route.abort("connectionreset")
        attempts.append("response lost")

    page.route("**/api/classifications/", response_lost)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    for _ in range(100):
        if "response lost" in attempts:
            break
        page.wait_for_timeout(50)
    assert len(stored(galaxy)) == 1
    # ...and the retry once truly online replays the same key instead of voting twice.
    page.unroute("**/api/classifications/")
    page.evaluate("window.dispatchEvent(new Event('online'))")
    wait_until(page, "JSON.parse(localStorage.getItem('gz-outbox-v1') || '[]').length === 0")
    (classification,) = stored(galaxy)
    assert classification.idempotency_key == key and classification.counted
    assert SubjectStatus.objects.get(galaxy__id_str=galaxy, workflow__slug=DECALS_DR5).classification_count == 1
    assert "response lost" in attempts and attempts.count("aborted") >= 1


def test_votes_queued_offline_go_in_one_batch_and_each_is_stored_once(open_page):
    make_galaxies(4)
    page = open_page(f"/classify/{DECALS_DR5}/")
    classified = []
    sent_online = []

    def submit_url(url):
        return "/api/classifications/" in url

    page.route(submit_url, lambda route: route.abort("internetdisconnected"))
    for _ in range(2):
        galaxy = wait_ready(page)
        classified.append(galaxy)
        for key in ("1", "1", "1"):  # smooth, round, no merger
            page.keyboard.press(key)
        page.click("#done")
        page.wait_for_selector("[data-banner='offline']")
        page.click("#next")
        wait_until(page, f"document.querySelector('#stage').dataset.galaxy !== '{galaxy}'")
    assert [i["payload"]["galaxy"] for i in json.loads(page.evaluate("localStorage.getItem('gz-outbox-v1')"))] \
        == classified

    page.unroute(submit_url)
    page.on("request", lambda request: sent_online.append(request.url) if submit_url(request.url) else None)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    wait_until(page, "JSON.parse(localStorage.getItem('gz-outbox-v1') || '[]').length === 0")
    assert [url.split("/api/", 1)[1] for url in sent_online] == ["classifications/batch/"]
    for galaxy in classified:
        (classification,) = stored(galaxy)
        assert classification.counted and classification.annotations == as_annotations(
            [("smooth-or-featured", "smooth"), ("how-rounded", "round"), ("merging", "none")])
    assert page.js_errors == []


def test_zoom_pan_rotate_invert_change_the_view(open_page):
    make_galaxies(1, size=256)
    page = open_page(f"/classify/{DECALS_DR5}/")
    wait_ready(page)
    stage = page.locator("#stage")
    image = page.locator("#galaxy-image")
    before = stage.screenshot(animations="disabled")
    box = stage.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.wheel(0, -400)
    assert float(stage.get_attribute("data-zoom")) > 1.5
    zoomed = stage.screenshot(animations="disabled")
    assert image_difference(zoomed, before) > 2
    transform_zoomed = image.evaluate("el => el.style.transform")
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=4)
    page.mouse.up()
    assert image.evaluate("el => el.style.transform") != transform_zoomed
    page.click("[data-action='rotate']")
    assert stage.get_attribute("data-rotation") == "90"
    assert image_difference(stage.screenshot(animations="disabled"), zoomed) > 2
    page.click("[data-action='invert']")
    assert "invert(1)" in image.evaluate("el => el.style.filter")
    page.click("[data-action='adjust']")
    page.fill("#brightness", "1.8")
    assert "brightness(1.8)" in image.evaluate("el => el.style.filter")
    shot(page, "07-viewer-adjusted-desktop")
    page.click("[data-action='reset']")
    assert image.evaluate("el => el.style.transform") == "translate(0px, 0px) rotate(0deg) scale(1)"
    assert image_difference(stage.screenshot(animations="disabled"), before) < 0.5


def test_phone_layout_classifies_by_touch(open_page):
    make_galaxies(2)
    page = open_page(f"/classify/{DECALS_DR5}/", viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    galaxy = wait_ready(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for button in page.locator(".answer").all():
        box = button.bounding_box()
        assert box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    shot(page, "08-question-phone")
    for answer in ("smooth", "round", "none"):
        page.tap(f".answer[data-answer='{answer}']")
    page.tap("#done")
    page.wait_for_selector(".feedback-q")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "09-feedback-phone", full_page=True)
    assert [c.annotations for c in stored(galaxy)] == [as_annotations(
        [("smooth-or-featured", "smooth"), ("how-rounded", "round"), ("merging", "none")])]
    page.goto(page.url.split("/classify")[0] + "/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "10-landing-phone", full_page=True)


def test_retired_meanwhile_banner_then_all_done(open_page):
    (galaxy,) = make_galaxies(1)
    page = open_page(f"/classify/{DECALS_DR5}/")
    assert wait_ready(page) == galaxy.id_str
    # Retire it only after the page's own still-open check, or the page moves on before Done.
    page.wait_for_selector(f"#classify-app[data-checked='{galaxy.id_str}']")
    SubjectStatus.objects.filter(galaxy=galaxy).update(retired_at=timezone.now(), retirement_reason="admin")
    for key in ("1", "1", "1"):
        page.keyboard.press(key)
    page.click("#done")
    page.wait_for_selector("[data-banner='retired']")
    assert stored(galaxy.id_str) == []
    page.click("#next")
    page.wait_for_selector("#all-done")
    shot(page, "11-all-done-desktop")


def test_a_galaxy_retired_while_on_screen_is_replaced_by_the_next(open_page):
    """The page re-checks the galaxy it shows; retired meanwhile, it says so and moves on."""
    first, second = make_galaxies(2)
    retired = []

    def retire_galaxy(id_str):
        try:
            SubjectStatus.objects.filter(galaxy__id_str=id_str).update(retired_at=timezone.now(),
                                                                      retirement_reason="admin")
        finally:
            connection.close()

    def retire_on_first_check(route):
        id_str = unquote(route.request.url.split("/api/galaxies/", 1)[1].split("/")[0])
        if not retired:
            retired.append(id_str)
            # Route handlers run inside Playwright's event loop, where Django refuses queries.
            retire = threading.Thread(target=retire_galaxy, args=(id_str,))
            retire.start()
            retire.join()
        route.continue_()

    page = open_page(f"/classify/{DECALS_DR5}/", routes={re.compile(r"/api/galaxies/[^/]+/\?workflow="): retire_on_first_check})
    page.wait_for_selector("[data-banner='retired']")
    assert retired[0] in page.locator("[data-banner='retired']").inner_text()
    shown = page.locator("#stage").get_attribute("data-galaxy")
    assert {retired[0], shown} == {first.id_str, second.id_str}
    page.wait_for_selector(f"#classify-app[data-checked='{shown}']")
    assert current_question(page) == "smooth-or-featured" and page.js_errors == []


def test_any_workflow_tree_renders_and_is_followed_exactly(open_page):
    """The page knows no tree: on Galaxy Zoo 2 pressing 1 at every question walks the
    first-answer branch that the tree document defines."""

    tree = Workflow.objects.get(slug=GZ2).decision_tree
    expected, key = [], tree.first
    while key is not None:
        answer = tree.question(key).answers[0]
        expected.append((key, answer.key))
        key = answer.next
    make_galaxies(1)
    page = open_page(f"/classify/{GZ2}/")
    galaxy = wait_ready(page)
    for question, _ in expected:
        assert current_question(page) == question
        assert page.inner_text("legend").endswith(tree.question(question).text)
        page.keyboard.press("1")
    page.wait_for_selector("#done")
    page.keyboard.press("Enter")
    page.wait_for_selector(".feedback-q")
    assert [c.annotations for c in stored(galaxy)] == [as_annotations(expected)]


def test_each_galaxy_detail_is_fetched_once_and_the_feedback_counts_the_new_vote(open_page):
    """The still-open check and the feedback share one detail request per galaxy; the vote
    just made is added to the tally that request returned."""
    (galaxy,) = make_galaxies(1)
    status = SubjectStatus.objects.get(galaxy=galaxy, workflow__slug=DECALS_DR5)
    status.vote_counts = {"smooth-or-featured_smooth": 1, "smooth-or-featured_featured-or-disk": 2}
    status.classification_count = 3
    status.save()
    page = open_page(f"/classify/{DECALS_DR5}/")
    details = []
    page.on("request", lambda request: details.append(request.url) if "/api/galaxies/" in request.url else None)
    assert wait_ready(page) == galaxy.id_str
    page.wait_for_selector(f"#classify-app[data-checked='{galaxy.id_str}']")
    for key in ("1", "1", "1"):  # smooth, round, no merger
        page.keyboard.press(key)
    page.click("#done")
    page.wait_for_selector(".feedback-q")
    assert len(details) == 1 and galaxy.id_str in unquote(details[0])
    assert "Volunteers (4 so far)" in page.inner_text(".feedback")
    first = page.locator(".feedback-q").first
    assert first.locator("li.mine .label").inner_text().startswith("Smooth")
    assert first.locator("li.mine .value").inner_text().startswith("50%")
    assert page.js_errors == []
