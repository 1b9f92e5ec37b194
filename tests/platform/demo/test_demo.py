"""Demo galaxies (the shipped pack; Hubble XDF cutouts and simulations) and the `demo` command's setup."""

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from classifications.models import SubjectStatus
from classifier.tree import load_tree
from demo import shipped_pack
from demo import sources as demo_sources
from demo.management.commands import demo as demo_command
from galaxies.imaging import radec_from_iau_name
from galaxies.models import Galaxy
from workflows.models import Workflow


@pytest.fixture(scope="module")
def xdf():
    return demo_sources.xdf_galaxies()


@pytest.fixture(scope="module")
def simulated():
    return demo_sources.simulated_galaxies()


def test_xdf_cutouts_are_centred_sources_inside_the_field(xdf):
    assert 60 <= len(xdf) <= 150
    assert len({g.id_str for g in xdf}) == len(xdf)
    for galaxy in xdf:
        assert galaxy.rgb.shape == (256, 256, 3)
        grey = galaxy.rgb.astype(float).mean(axis=2)
        assert grey[112:144, 112:144].max() > 2 * np.median(grey)  # a source in the middle, not sky
        assert abs(galaxy.ra - demo_sources.XDF_CENTRE_RA) * np.cos(np.radians(galaxy.dec)) < 1.5 / 60
        assert abs(galaxy.dec - demo_sources.XDF_CENTRE_DEC) < 1.5 / 60
        assert radec_from_iau_name(galaxy.id_str.removeprefix("XDF ")) == pytest.approx(
            (galaxy.ra, galaxy.dec), abs=2e-4)
    stars = [(x, y) for x, y in demo_sources.XDF_STARS_XY]
    assert not any(abs(g.metadata["x_px"] - x) < 10 and abs(g.metadata["y_px"] - y) < 10
                   for g in xdf for x, y in stars)


def test_simulated_galaxies_carry_a_valid_expected_answer_path(simulated):
    tree = load_tree("decals_dr5")
    kinds = {g.metadata["simulation"]["kind"] for g in simulated}
    assert kinds == {"elliptical", "spiral", "barred-spiral", "edge-on"}
    for galaxy in simulated:
        answers = galaxy.metadata["expected_answers"]["gz-decals-dr5"]
        tree.validate_annotations(answers)
        first = dict((a["question"], a["answer"]) for a in answers)
        params = galaxy.metadata["simulation"]
        assert (first["smooth-or-featured"] == "smooth") == (params["kind"] == "elliptical")
        assert galaxy.is_simulated and galaxy.rgb.shape == (256, 256, 3)
    assert demo_sources.simulated_galaxies(count=3)[2].id_str == simulated[2].id_str
    assert np.array_equal(demo_sources.simulated_galaxies(count=1)[0].rgb, simulated[0].rgb)


@pytest.mark.django_db
def test_demo_setup_is_idempotent_and_calls_the_model_hook(monkeypatch, xdf, simulated):
    monkeypatch.setattr(demo_sources, "xdf_galaxies", lambda: list(xdf))
    monkeypatch.setattr(demo_sources, "simulated_galaxies", lambda: list(simulated))
    hook_calls = []
    monkeypatch.setattr(demo_command, "prepare_demo_model", lambda *, stdout: hook_calls.append(stdout))

    call_command("demo", "--setup-only", verbosity=0)
    pack = Galaxy.objects.count()
    assert pack == len(shipped_pack.galaxies(load_tree("gz2")))
    assert not Galaxy.objects.filter(is_simulated=True).exists()
    call_command("demo", "--setup-only", "--with-synthetic", verbosity=0)
    count = Galaxy.objects.count()
    assert count == pack + len(xdf) + len(simulated)
    assert Galaxy.objects.filter(is_simulated=True).count() == len(simulated)
    assert SubjectStatus.objects.count() == count * Workflow.objects.count()
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin")

    call_command("demo", "--setup-only", "--with-synthetic", verbosity=0)
    assert Galaxy.objects.count() == count
    assert get_user_model().objects.count() == 1
    assert len(hook_calls) == 3


@pytest.mark.django_db
def test_demo_keeps_an_existing_superuser():
    get_user_model().objects.create_superuser("boss", "b@example.invalid", "s3cret-pass")
    assert demo_command.ensure_demo_admin() is False
    assert not get_user_model().objects.filter(username="admin").exists()


def test_worker_command_uses_this_python_and_both_queues():
    command = demo_command.worker_command()
    assert command[:3] == [demo_command.sys.executable, "-m", "celery"]
    assert command[command.index("-Q") + 1] == "default,gpu"
