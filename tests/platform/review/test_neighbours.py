"""More like this: the nearest galaxies in the active model's encoder embedding equal an exact
brute-force cosine ranking, before the index exists (a scan), through the exact index and
through the inverted file searched in full; the index is built by the task that activation
queues."""

import numpy as np
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from classifier.live_head import embedding_bytes, embeddings_from_bytes
from config.celery import app
from retraining.models import GalaxyEmbedding
from review import selectors
from review.models import EmbeddingIndex
from review.services import build_embedding_index
from tests.platform.factories import GalaxyFactory

from .conftest import WORKFLOW, make_version

pytestmark = pytest.mark.django_db
N, D = 60, 16


@pytest.fixture
def embedded(workflow):
    """60 galaxies in four clumps of a 16-dimensional embedding, stored by an active v1."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, D))
    galaxies = [GalaxyFactory(id_str=f"JNEAR{i:02d}") for i in range(N)]
    vectors = centres[np.arange(N) % 4] + 0.4 * rng.normal(size=(N, D))
    version = make_version(workflow)
    GalaxyEmbedding.objects.bulk_create([GalaxyEmbedding(model_version=version, galaxy=g, vector=b)
                                         for g, b in zip(galaxies, embedding_bytes(vectors))])
    stored = embeddings_from_bytes(embedding_bytes(vectors), D)  # what the database holds (float16)
    return {"version": version, "galaxies": galaxies, "vectors": stored}


def brute_force(embedded, i: int, k: int) -> list[str]:
    unit = embedded["vectors"] / np.linalg.norm(embedded["vectors"], axis=1, keepdims=True)
    similarity = unit @ unit[i]
    order = [j for j in np.argsort(-similarity, kind="stable") if j != i]
    return [embedded["galaxies"][j].id_str for j in order[:k]]


@pytest.fixture
def api(users):
    client = APIClient()
    client.force_authenticate(users["scientist"])
    return lambda id_str, **params: client.get(reverse("review-similar", args=[WORKFLOW, id_str]), params)


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id_str"] for item in response.json()["results"]]


def test_before_the_index_exists_an_exact_scan_answers(api, embedded):
    response = api("JNEAR05", k=7)
    assert response.json()["method"] == "scan"
    assert names(response) == brute_force(embedded, 5, 7)
    assert len(names(api("JNEAR05"))) == 12  # the default k


@pytest.mark.parametrize("exact_limit, kind", [(10_000, "exact"), (0, "ivf")])
def test_the_built_index_gives_the_brute_force_neighbours(api, embedded, settings, exact_limit, kind):
    settings.REVIEW_EXACT_INDEX_LIMIT = exact_limit
    settings.REVIEW_INDEX_NPROBE = 1000  # every cell: the inverted file searched in full is exact
    built = build_embedding_index(encoder_version_id=embedded["version"].pk)
    assert (built.kind, built.vectors, built.dim) == (kind, N, D)
    for i in (0, 17, 42):
        response = api(embedded["galaxies"][i].id_str, k=10)
        assert response.json()["method"] == kind
        assert names(response) == brute_force(embedded, i, 10)
    similarities = [r["similarity"] for r in response.json()["results"]]
    assert similarities == sorted(similarities, reverse=True) and -1 <= similarities[-1] <= similarities[0] <= 1


def test_activation_builds_the_index_in_the_task(workflow, embedded, django_capture_on_commit_callbacks,
                                                 monkeypatch):
    monkeypatch.setitem(app.conf, "task_always_eager", True)  # the task runs in this process
    head = make_version(workflow, number=2, active=False)
    head.kind, head.encoder = "head", embedded["version"]
    head.save()
    embedded["version"].is_active = False
    embedded["version"].save(update_fields=["is_active"])
    assert not EmbeddingIndex.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        head.is_active = True
        head.save(update_fields=["is_active"])
    built = EmbeddingIndex.objects.get()  # the head's encoder's index
    assert built.encoder_version == embedded["version"] and built.vectors == N
    assert selectors.similar_galaxies(workflow=workflow, galaxy=embedded["galaxies"][3], k=5).method == "exact"
    again = build_embedding_index(encoder_version_id=embedded["version"].pk)
    assert again.sha256 == built.sha256 and EmbeddingIndex.objects.count() == 1  # nothing new to index


def test_bad_k_and_missing_embedding_are_4xx(api, embedded):
    assert api("JNEAR01", k=0).json()["field"] == "k"
    assert api("JNEAR01", k=10_000).status_code == 400
    GalaxyFactory(id_str="JLONELY")
    response = api("JLONELY")
    assert response.status_code == 409 and response.json()["code"] == "no_embedding"


def test_the_dossier_shows_the_neighbours_with_thumbnails(client, users, embedded):
    client.force_login(users["scientist"])
    response = client.get(reverse("workbench-dossier", args=[WORKFLOW, "JNEAR00"]) + "?k=5")
    assert response.status_code == 200
    page = response.content.decode()
    assert "More like this" in page and "exact scan: index not built yet" in page
    for name in brute_force(embedded, 0, 5):
        assert f"/galaxies/{name}/" in page
