"""Fixtures for the volunteer UI: synthetic galaxies, and Debian's Chromium driven by Playwright
against pytest-django's live server."""

import mimetypes
import os
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from tests.frontend.galaxy_images import KINDS, galaxy_jpeg

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "frontend"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def make_galaxies(count: int, *, size: int = 160) -> list:
    """Galaxies with synthetic images, and their status rows in every workflow."""
    from classifications.services import ensure_subject_statuses
    from galaxies.models import Galaxy

    galaxies = []
    for i in range(count):
        galaxy = Galaxy(id_str=f"JTEST{i:04d}+0000", ra=10.0 + i, dec=-5.0, survey="synthetic")
        galaxy.image.save(f"g{i}.jpg", ContentFile(galaxy_jpeg(KINDS[i % len(KINDS)], size=size, seed=i)), save=True)
        galaxies.append(galaxy)
    ensure_subject_statuses()
    return galaxies


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (`make browser`) to run the browser tests")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between page actions are synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def open_page(chromium, live_server, settings):
    """open_page(path, viewport=DESKTOP, routes={glob: handler}, **context options) -> page
    (routes are in place before the first request). The live server does not
    serve media (DEBUG is off in tests), so the browser reads galaxy images from MEDIA_ROOT."""
    contexts = []
    media_root = Path(settings.MEDIA_ROOT)

    def serve_media(route):
        relative = route.request.url.split("/media/", 1)[1].split("?")[0]
        path = media_root / relative
        if path.is_file():
            route.fulfill(status=200, body=path.read_bytes(),
                          content_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        else:
            route.fulfill(status=404, body=b"")

    def _open(path: str = "/", viewport: dict | None = None, routes: dict | None = None, **options):
        # Reduced motion turns off the CSS fades, so screenshots never catch an image mid-fade.
        options.setdefault("reduced_motion", "reduce")
        context = chromium.new_context(viewport=viewport or DESKTOP, **options)
        context.set_default_timeout(10000)
        context.route("**/media/**", serve_media)
        for pattern, handler in (routes or {}).items():
            context.route(pattern, handler)
        contexts.append(context)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.js_errors = errors
        page.goto(live_server.url + path)
        return page

    yield _open
    for context in contexts:
        context.close()


def shot(page, name: str, **options) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), **options)
    return path


def wait_until(page, expression: str, *, timeout_ms: int = 10000) -> None:
    """Poll a JS expression until it is truthy. Playwright's wait_for_function compiles its
    predicate with `new Function`, which the site's CSP (no 'unsafe-eval') refuses; a plain
    evaluate is not script from the page and is allowed."""
    for _ in range(timeout_ms // 50):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"still false after {timeout_ms} ms: {expression}")
