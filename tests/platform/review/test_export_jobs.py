"""Exports from the workbench: a request records a job and queues its task; the task streams
the catalogue into the storage (the downloaded file round-trips to the exporter's rows); a
failure is recorded on the job; bad requests are 400 naming the field; only finished jobs
download."""

import io

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from config.celery import app
from review import services
from review.models import ExportJob

from .conftest import WORKFLOW
from .test_export import _compare, expected_frame

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(users, monkeypatch):
    monkeypatch.setitem(app.conf, "task_always_eager", True)  # the export task runs in this process
    client = APIClient()
    client.force_authenticate(users["scientist"])
    return client


def request_export(api, django_capture_on_commit_callbacks, **body):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(reverse("review-exports", args=[WORKFLOW]), body, format="json")
    return response


def download(api, job_id: int) -> bytes:
    response = api.get(reverse("review-export-download", args=[job_id]))
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_task_writes_a_file_that_round_trips(api, catalogue, workflow, users, fmt,
                                                 django_capture_on_commit_callbacks):
    response = request_export(api, django_capture_on_commit_callbacks, format=fmt)
    assert response.status_code == 202 and response.json()["state"] == "queued"
    job = ExportJob.objects.get(pk=response.json()["id"])
    assert (job.state, job.rows, job.requested_by, job.model_version.number) == ("succeeded", 13, users["scientist"], 1)
    polled = api.get(reverse("review-export", args=[job.pk])).json()
    assert polled["state"] == "succeeded" and polled["download_url"] == reverse("review-export-download", args=[job.pk])
    data = download(api, job.pk)
    assert len(data) == job.bytes
    if fmt == "csv":
        read = pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""],
                           dtype={c: str for c in ("id_str", "survey", "retirement_reason", "override_reason",
                                                   "expert_annotations", "flags")})
        _compare(read, expected_frame(workflow), text_escaped=True)
    else:
        _compare(pq.read_table(io.BytesIO(data)).to_pandas(), expected_frame(workflow))


def test_a_redelivered_task_does_nothing_and_a_failure_is_recorded(api, catalogue, monkeypatch,
                                                                  django_capture_on_commit_callbacks):
    job = ExportJob.objects.get(pk=request_export(api, django_capture_on_commit_callbacks, format="csv").json()["id"])
    name = job.file.name
    assert services.run_export_job(job_id=job.pk).file.name == name  # finished: not written again

    def broken(**kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(services, "export_catalog", broken)
    failed = ExportJob.objects.get(pk=request_export(api, django_capture_on_commit_callbacks, format="fits").json()["id"])
    assert failed.state == "failed" and "disk full" in failed.error and not failed.file
    response = api.get(reverse("review-export-download", args=[failed.pk]))
    assert response.status_code == 409 and response.json()["code"] == "export_not_ready"


def test_bad_requests_name_the_field_and_write_nothing(api, catalogue, django_capture_on_commit_callbacks):
    assert request_export(api, django_capture_on_commit_callbacks, format="xlsx").json()["field"] == "format"
    response = request_export(api, django_capture_on_commit_callbacks, format="csv", model_version=99)
    assert response.status_code == 400 and response.json()["field"] == "model_version"
    assert not ExportJob.objects.exists()


def test_the_page_requests_an_export_and_links_the_download(client, users, catalogue, monkeypatch,
                                                           django_capture_on_commit_callbacks):
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    client.force_login(users["scientist"])
    url = reverse("workbench-exports", args=[WORKFLOW])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"format": "csv", "model_version": ""})
    assert response.status_code == 302 and response["Location"] == url
    job = ExportJob.objects.get()
    page = client.get(url).content.decode()
    assert reverse("review-export-download", args=[job.pk]) in page and "Succeeded" in page
    assert 'http-equiv="refresh"' not in page  # nothing left to follow
    assert client.post(url, {"format": "csv", "model_version": "v1"}).status_code == 400
