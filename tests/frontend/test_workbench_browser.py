"""The scientist's flow in Debian's Chromium: find the most uncertain barred candidates inside a
cone, open one (with its nearest neighbours), record an expert classification and a flag,
force-retire it; export the catalogue and download it; screenshots of the queue, the dossier
and the exports page."""

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from classifications.models import SubjectStatus
from classifier.live_head import embedding_bytes
from classifier.samples import sample_fraction_bytes
from classifier.schema import Schema
from config.celery import app
from retraining.models import GalaxyEmbedding
from review.access import grant_scientist
from review.models import ExpertClassification, ExportJob, Flag, RetirementOverride
from tests.frontend.conftest import make_galaxies, shot
from tests.frontend.test_demo_site_browser import AXE_URL, axe_violations, serve_axe
from tests.platform.review.conftest import make_version, predict, uniform_fractions
from workflows.models import Workflow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WORKFLOW = "gz-decals-dr5"


@pytest.fixture
def scientist_page(open_page, live_server):
    """open_page for a signed-in scientist (the session cookie of a Django test client login)."""
    user = get_user_model().objects.create_user("ada", "ada@example.org", "pw-12345678")
    grant_scientist(email="ada@example.org")
    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value

    def _open(path: str, **options):
        page = open_page("/static/frontend/img/logo.svg", **options)
        page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        page.goto(live_server.url + path)
        return page

    return _open


@pytest.fixture
def catalogue():
    workflow = Workflow.objects.get(slug=WORKFLOW)
    galaxies = make_galaxies(30)  # ra 10..39, dec -5
    version = make_version(workflow)
    schema = Schema(workflow.decision_tree)
    rng = np.random.default_rng(1)
    for i, galaxy in enumerate(galaxies):
        fractions = uniform_fractions(workflow, bar_strong=0.2 + 0.025 * i)
        prediction = predict(version, galaxy, fractions=fractions, acquisition=0.01 * ((i * 7) % 30),
                             entropy=3.0 - 0.05 * i, width=0.1 + 0.01 * i)
        # Five posterior samples scattered around the mean, as MC dropout stores them.
        samples = rng.gamma(40 * np.asarray(fractions) + 0.5, 1.0, (1, 5, schema.n_answers))
        prediction.sample_fractions = sample_fraction_bytes(samples, schema)[0]
        prediction.save()
    # Embeddings in three kinds (the synthetic images' kinds cycle the same way): "more like this".
    neighbour_rng = np.random.default_rng(1)
    centres = neighbour_rng.normal(size=(3, 16))
    vectors = embedding_bytes(centres[np.arange(len(galaxies)) % 3] + 0.3 * neighbour_rng.normal(size=(len(galaxies), 16)))
    GalaxyEmbedding.objects.bulk_create([GalaxyEmbedding(model_version=version, galaxy=g, vector=v)
                                         for g, v in zip(galaxies, vectors)])
    return workflow, galaxies


def test_scientist_reviews_labels_flags_and_retires(scientist_page, catalogue):
    workflow, galaxies = catalogue
    # Barred candidates (bar_strong ≥ 0.5: the 13th galaxy on) within 8° of (RA 30, Dec −5), most uncertain first.
    page = scientist_page(f"/workbench/{WORKFLOW}/?sort=bald&min=bar_strong:0.5&ra=30&dec=-5&radius=8&page_size=20")
    tiles = page.locator(".wb-tile")
    names = [tiles.nth(i).locator(".wb-name").inner_text() for i in range(tiles.count())]
    inside = [g for i, g in enumerate(galaxies) if 0.2 + 0.025 * i >= 0.5 and abs(g.ra - 30) <= 8]
    expected = sorted(inside, key=lambda g: (-((galaxies.index(g) * 7) % 30), g.pk))
    assert names == [g.id_str for g in expected]
    page.wait_for_function("() => [...document.querySelectorAll('.wb-tile img')].every(i => i.complete && i.naturalWidth)")
    shot(page, "workbench-queue")
    assert not page.js_errors

    tiles.first.locator("a").click()
    page.wait_for_selector("#expert-form .question")
    chosen = expected[0]
    assert chosen.id_str in page.locator("h1").inner_text()
    for label in ("Smooth", "Round", "Neither"):
        page.locator("#expert-form .wb-answers button", has_text=label).first.click()
    page.fill("#expert-comment", "clear elliptical")
    page.click("#expert-save")
    page.wait_for_selector("text=clear elliptical")
    label = ExpertClassification.objects.get(galaxy=chosen)
    assert [a["answer"] for a in label.annotations] == ["smooth", "round", "none"]

    page.select_option("#flag-form select[name=kind]", "interesting")
    page.fill("#flag-form input[name=comment]", "possible ring")
    page.click("#flag-form button")
    page.wait_for_selector("text=possible ring")
    assert Flag.objects.get(galaxy=chosen).kind == "interesting"

    page.fill("#retire-form input[name=reason]", "settled by expert label")
    page.click("#retire-form button")
    page.wait_for_selector("#retire-form button:has-text('Un-retire')")
    assert SubjectStatus.objects.get(workflow=workflow, galaxy=chosen).retired_at is not None
    assert RetirementOverride.objects.get(galaxy=chosen).reason == "settled by expert label"
    neighbours = page.locator("[aria-label='Similar galaxies'] .wb-name")
    assert neighbours.count() == 12 and chosen.id_str not in neighbours.all_inner_texts()
    # A function, not an expression: polling an expression evals it in the page, which the CSP refuses.
    page.wait_for_function("() => document.querySelector('.wb-chart img').complete")
    shot(page, "workbench-dossier", full_page=True)
    assert not page.js_errors


def test_scientist_exports_the_catalogue_and_downloads_it(scientist_page, catalogue, monkeypatch):
    monkeypatch.setitem(app.conf, "task_always_eager", True)  # the live server's thread runs the task
    _, galaxies = catalogue
    page = scientist_page(f"/workbench/{WORKFLOW}/", accept_downloads=True)
    page.click("nav >> text=Export")
    page.select_option("select[name=format]", "csv")
    page.click("button:has-text('Export the catalogue')")
    link = page.wait_for_selector("a:has-text('Download')")
    assert ExportJob.objects.get().state == "succeeded"
    shot(page, "workbench-exports")
    with page.expect_download() as download:
        link.click()
    frame = pd.read_csv(download.value.path())
    assert sorted(frame["id_str"]) == sorted(g.id_str for g in galaxies)
    assert "bar_strong_fraction" in frame.columns
    assert not page.js_errors


def test_volunteer_is_turned_away(open_page, live_server, catalogue):
    page = open_page(f"/workbench/{WORKFLOW}/")
    assert "/accounts/login/" in page.url


def test_model_dashboard_compares_two_versions(scientist_page, catalogue):
    import numpy as np

    from classifier.metrics import evaluate
    from classifier.schema import Schema
    from retraining.models import TrainingRun

    workflow, _ = catalogue
    tree = workflow.decision_tree
    rng = np.random.default_rng(0)
    active = workflow.model_versions.get(number=1)
    older = make_version(workflow, number=0, active=False)
    for version, sharpness in ((older, 2.0), (active, 20.0)):
        counts = rng.integers(0, 12, (60, tree.n_answers)).astype(float)
        version.metrics = evaluate(rng.gamma(sharpness, 1.0, (60, 3, tree.n_answers)) + 0.1, counts, Schema(tree))
        version.run = TrainingRun.objects.create(
            workflow=workflow, workflow_version=workflow.version, tree_hash=workflow.tree_hash, trigger="admin",
            status="succeeded", history=[{"epoch": e, "train_loss": 9 / (e + 1) + version.number,
                                          "val_loss": 10 / (e + 1) + version.number} for e in range(6)])
        version.save()
    page = scientist_page(f"/workbench/{WORKFLOW}/models/?a=1&b=0")
    assert "v1 | v0" in page.locator("#questions-title").inner_text()
    page.wait_for_function("() => document.querySelector('.wb-curves').complete && document.querySelector('.wb-curves').naturalWidth")
    shot(page, "workbench-models", full_page=True)
    assert not page.js_errors


def test_scientist_activates_a_version_the_gate_held_back(scientist_page, catalogue):
    from classifications.models import SubjectStatus as Status
    from retraining.models import ModelVersion, Prediction, TrainingRun
    from review.services import record_expert_classification
    from tests.platform.factories import decals_smooth_path
    from tests.platform.retraining.conftest import FEATURED
    from tests.platform.review.conftest import vote

    workflow, galaxies = catalogue
    champion = workflow.model_versions.get(number=1)
    waiting = make_version(workflow, number=2, active=False)
    for i, galaxy in enumerate(galaxies):
        predict(waiting, galaxy, fractions=uniform_fractions(workflow, bar_strong=0.5), acquisition=1.0 - 0.01 * i)
    waiting.run = TrainingRun.objects.create(
        workflow=workflow, workflow_version=workflow.version, tree_hash=workflow.tree_hash, trigger="schedule",
        status="succeeded", stage="done", gate_decision="awaiting_review", gate_champion=champion,
        gate_challenger_loss=14.212, gate_champion_loss=13.874, gate_galaxies=41,
        gate_reason="hold-out loss 14.2120 worse than the champion's 13.8740 (+0.0% allowed) on 41 galaxies")
    waiting.save()
    expert = get_user_model().objects.create_user("eve", "eve@example.org", "pw-12345678")
    for galaxy in galaxies[:6]:
        record_expert_classification(workflow=workflow, galaxy=galaxy, expert_id=expert.pk,
                                     annotations=decals_smooth_path())
    for i, galaxy in enumerate(galaxies[:6]):  # volunteers side with the expert on four of six
        vote(workflow, galaxy, decals_smooth_path() if i < 4 else FEATURED, 3)

    page = scientist_page(f"/workbench/{WORKFLOW}/models/")
    assert "v2 awaits review" in page.locator(".banner").first.inner_text()
    row = page.locator("tr", has_text="awaiting review")
    assert "14.212 | 13.874" in row.inner_text() and "vs v1, 41 gal." in row.inner_text()
    agreement = page.locator("section[aria-labelledby=agreement-title] tr", has_text="smooth-or-featured")
    assert agreement.inner_text().split() == ["smooth-or-featured", "0.667", "6"]
    shot(page, "workbench-models-awaiting", full_page=True)
    page.click("button[aria-label='Activate v2']")
    page.wait_for_selector("text=Model v2 is now active")
    waiting.refresh_from_db()
    assert waiting.is_active and waiting.activated_by.username == "ada"
    assert not ModelVersion.objects.get(pk=champion.pk).is_active
    scores = dict(Prediction.objects.filter(model_version=waiting).values_list("galaxy_id", "acquisition"))
    assert dict(Status.objects.filter(workflow=workflow).values_list("galaxy_id", "priority")) == pytest.approx(scores)
    assert "by ada" in page.locator("tr", has_text="v2").first.inner_text()
    shot(page, "workbench-models-activated", full_page=True)
    assert not page.js_errors


def test_workbench_pages_pass_axe(scientist_page, catalogue):
    """Queue, dossier and model dashboard: no serious or critical axe-core violation, under the
    site's own Content-Security-Policy (axe is served from the page's origin)."""
    _, galaxies = catalogue
    audits = {}
    for name, path in (("queue", f"/workbench/{WORKFLOW}/?sort=bald"),
                       ("dossier", f"/workbench/{WORKFLOW}/galaxies/{galaxies[0].id_str}/"),
                       ("models", f"/workbench/{WORKFLOW}/models/"),
                       ("exports", f"/workbench/{WORKFLOW}/exports/")):
        page = scientist_page(path, routes={f"**{AXE_URL}": serve_axe})
        page.wait_for_load_state("networkidle")
        audits[name] = axe_violations(page)
    assert audits == {name: [] for name in audits}
