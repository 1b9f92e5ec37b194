"""A workflow's version bumps exactly when its tree's structure changes, every version is
kept, and a malformed tree never reaches the database."""

import copy

import pytest

from classifications.models import SubjectStatus
from classifier.tree import DecisionTree, TreeDefinitionError
from tests.platform.factories import GalaxyFactory
from workflows.models import Workflow, WorkflowVersion
from workflows.services import upsert_workflow
from workflows.shipped import DECALS_DR5, GZ2

pytestmark = pytest.mark.django_db

TREE = {
    "name": "mini", "title": "Mini", "first": "shape",
    "questions": [
        {"key": "shape", "text": "Shape?", "answers": [{"key": "round", "next": None}, {"key": "disk", "next": "arms"}]},
        {"key": "arms", "text": "Arms?", "answers": [{"key": "yes", "next": None}, {"key": "no", "next": None}]},
    ],
}


def edited(change) -> dict:
    doc = copy.deepcopy(TREE)
    change(doc)
    return doc


def test_new_workflow_starts_at_version_one_with_its_tree_recorded():
    workflow = upsert_workflow(slug="mini", tree=TREE)
    assert (workflow.version, workflow.name) == (1, "Mini")
    version = WorkflowVersion.objects.get(workflow=workflow)
    assert version.number == 1 and version.tree_hash == workflow.tree_hash
    assert DecisionTree.from_dict(version.tree).version_hash == workflow.tree_hash


def test_rewording_keeps_the_version_but_updates_the_text():
    upsert_workflow(slug="mini", tree=TREE)
    workflow = upsert_workflow(slug="mini", tree=edited(lambda d: d["questions"][0].update(text="Round or not?")))
    workflow.refresh_from_db()
    assert workflow.version == 1
    assert workflow.decision_tree.question("shape").text == "Round or not?"
    assert WorkflowVersion.objects.filter(workflow=workflow).count() == 1


@pytest.mark.parametrize("change", [
    pytest.param(lambda d: d["questions"][1]["answers"].append({"key": "maybe", "next": None}), id="new answer"),
    pytest.param(lambda d: d["questions"][0]["answers"][0].update(next="arms"), id="relinked"),
    pytest.param(lambda d: d["questions"][1]["answers"][0].update(key="some"), id="renamed answer"),
    pytest.param(lambda d: d["questions"].reverse(), id="reordered columns"),
])
def test_structural_change_bumps_the_version_and_keeps_the_old_one(change):
    first = upsert_workflow(slug="mini", tree=TREE)
    old_hash = first.tree_hash
    workflow = upsert_workflow(slug="mini", tree=edited(change))
    assert workflow.version == 2 and workflow.tree_hash != old_hash
    versions = dict(WorkflowVersion.objects.filter(workflow=workflow).values_list("number", "tree_hash"))
    assert versions == {1: old_hash, 2: workflow.tree_hash}
    again = upsert_workflow(slug="mini", tree=edited(change))
    assert again.version == 2


def test_fresh_instances_see_the_new_tree_after_an_update():
    upsert_workflow(slug="mini", tree=TREE)
    before = Workflow.objects.get(slug="mini").decision_tree
    upsert_workflow(slug="mini", tree=edited(lambda d: d["questions"][1]["answers"].append({"key": "maybe"})))
    after = Workflow.objects.get(slug="mini").decision_tree
    assert "arms_maybe" in after.answer_columns and "arms_maybe" not in before.answer_columns


def test_shipped_workflow_tree_matches_the_shipped_file():
    workflow = Workflow.objects.get(slug=DECALS_DR5)
    assert workflow.tree_hash == DecisionTree.load("decals_dr5").version_hash
    assert upsert_workflow(slug=DECALS_DR5, tree=DecisionTree.load("decals_dr5")).version == workflow.version


def test_malformed_tree_is_refused_and_nothing_changes():
    upsert_workflow(slug="mini", tree=TREE)
    broken = edited(lambda d: d["questions"][1]["answers"][0].update(next="shape"))
    with pytest.raises(TreeDefinitionError, match="cycle"):
        upsert_workflow(slug="mini", tree=broken)
    workflow = Workflow.objects.get(slug="mini")
    assert workflow.version == 1 and workflow.tree == DecisionTree.from_dict(TREE).to_dict()


def test_settings_are_updated_and_statuses_created_for_existing_galaxies():
    galaxies = GalaxyFactory.create_batch(3)
    workflow = upsert_workflow(slug="mini", tree=TREE, retirement_count=5, random_fraction=0.5, is_active=False)
    assert (workflow.retirement_count, workflow.random_fraction, workflow.is_active) == (5, 0.5, False)
    assert set(SubjectStatus.objects.filter(workflow=workflow).values_list("galaxy_id", flat=True)) == {
        g.id for g in galaxies}
    workflow = upsert_workflow(slug="mini", tree=TREE, is_active=True)
    assert (workflow.retirement_count, workflow.is_active) == (5, True)


@pytest.mark.django_db
def test_install_shipped_workflows_restores_only_the_missing_ones():
    from workflows.services import install_shipped_workflows

    Workflow.objects.filter(slug=GZ2).delete()
    restored = install_shipped_workflows()
    assert [w.slug for w in restored] == [GZ2]
    assert Workflow.objects.get(slug=GZ2).decision_tree.n_answers == 37
    assert install_shipped_workflows() == []


def test_the_api_serves_the_tree_with_each_answers_column_and_index():
    from rest_framework.test import APIClient

    tree = APIClient().get(f"/api/workflows/{DECALS_DR5}/").json()["tree"]
    decision_tree = Workflow.objects.get(slug=DECALS_DR5).decision_tree
    served = [(a["column"], a["index"]) for q in tree["questions"] for a in q["answers"]]
    assert served == [(a.column, a.index) for a in decision_tree.answers]
    assert [(q["start"], q["end"]) for q in tree["questions"]] == list(decision_tree.question_slices)
    assert DecisionTree.from_dict(tree).to_dict() == decision_tree.to_dict()
