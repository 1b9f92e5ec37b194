"""The volunteer pages run under the site's Content-Security-Policy without one violation:
Chromium reports each refused script, style or request as a `securitypolicyviolation` event
and a console error, and both are collected from the first byte of each page."""

import pytest

from tests.frontend.conftest import make_galaxies, shot, wait_until
from tests.frontend.test_classify_browser import SPIRAL_BRANCH, wait_ready
from workflows.models import Workflow
from workflows.shipped import GZ2

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"} `
                              + `at ${event.sourceFile || location.pathname}:${event.lineNumber}`);
});
"""


def watch(page) -> list[str]:
    """Violations from now on: the listener goes in before any page script on every load."""
    console = []
    page.on("console", lambda message: console.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text else None)
    page.add_init_script(COLLECT_VIOLATIONS)
    page.reload()
    return console


def violations(page, console: list[str]) -> list[str]:
    return page.evaluate("window.__cspViolations") + console


def test_landing_classify_and_history_report_no_violation(open_page, live_server):
    make_galaxies(2)
    Workflow.objects.filter(slug=GZ2).update(is_active=False)  # "Start classifying" opens the DECaLS tree
    page = open_page("/")
    console = watch(page)
    assert page.locator("#stats").count() == 1
    seen = violations(page, console)

    page.click("#start-classifying")
    wait_ready(page)
    page.click("[data-action='guide']")  # the field guide is built in script, styles included
    page.wait_for_selector("#field-guide[open]")
    page.keyboard.press("Escape")
    for question, answer in SPIRAL_BRANCH:
        assert page.locator("fieldset.question").get_attribute("data-question") == question
        page.click(f".answer[data-answer='{answer}']")
    page.click("#done")
    page.wait_for_selector(".feedback-q")  # the results view builds its bars with styles in script
    seen += violations(page, console)
    shot(page, "csp-classify-feedback")

    for path in ("/me/", "/accounts/login/", "/accounts/signup/", "/api/docs/"):
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        seen += [f"{path}: {v}" for v in violations(page, console)]
    assert seen == []
    assert page.js_errors == []


def test_the_listener_sees_a_violation(open_page):
    """The check above can fail: an inline style attribute written into the page is reported."""
    page = open_page("/")
    console = watch(page)
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">inline</p>')")
    wait_until(page, "window.__cspViolations.length > 0")
    assert any("style-src" in v for v in violations(page, console))
