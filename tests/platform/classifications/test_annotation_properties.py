"""Property tests over both shipped trees: every path a volunteer can walk is accepted and
counted exactly; every way of breaking a path is refused with the rule and the question or
answer at fault, and leaves the database untouched."""

import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ParseError
from rest_framework.test import APIClient

from classifications.errors import IdempotencyConflict, InvalidAnnotations
from classifications.models import Classification, SubjectStatus
from classifications.services import Submission, ensure_subject_statuses, submit_classification
from classifications.volunteers import Volunteer
from classifier.tree import DecisionTree
from core.parsers import check_storable
from tests.platform.factories import GalaxyFactory
from workflows.models import Workflow

pytestmark = pytest.mark.django_db

TREES = {"gz-decals-dr5": DecisionTree.load("decals_dr5"), "gz2": DecisionTree.load("gz2")}
PROPERTY = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
VIA_HTTP = settings(PROPERTY, max_examples=20)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
not_strings = json_values.filter(lambda v: not isinstance(v, str))


@dataclass
class Broken:
    """Annotations that break one rule, and what the refusal must name."""

    kind: str
    annotations: Any
    rule: str
    index: int | None = None
    question: str | None = None
    answer: str | None = None


def item(question: Any, answer: Any) -> dict[str, Any]:
    return {"question": question, "answer": answer}


@st.composite
def valid_paths(draw, tree: DecisionTree) -> list[dict[str, str]]:
    """A random walk from the first question to the end of the tree."""
    path, question = [], tree.first
    while question is not None:
        answer = draw(st.sampled_from(tree.question(question).answers))
        path.append(item(question, answer.key))
        question = answer.next
    return path


@st.composite
def broken_annotations(draw, tree: DecisionTree) -> Broken:
    path = draw(valid_paths(tree))
    n = len(path)
    i = draw(st.integers(0, n - 1))
    q, a = path[i]["question"], path[i]["answer"]
    kinds = ["drop", "truncate", "extra_after_end", "wrong_answer", "unknown_question", "wrong_question",
             "duplicate", "empty", "not_a_list", "non_object_item", "missing_key", "extra_key", "non_string_value"]
    if n >= 2:
        kinds.append("swap")
    kind = draw(st.sampled_from(kinds))
    if kind == "drop":
        rest = path[:i] + path[i + 1:]
        if n == 1:
            return Broken(kind, rest, "empty", question=tree.first)
        if i == n - 1:
            return Broken(kind, rest, "incomplete", index=i, question=q)
        return Broken(kind, rest, "wrong_question", index=i, question=path[i + 1]["question"])
    if kind == "truncate":
        if n == 1:
            return Broken(kind, [], "empty", question=tree.first)
        k = draw(st.integers(1, n - 1))
        return Broken(kind, path[:k], "incomplete", index=k, question=path[k]["question"])
    if kind == "extra_after_end":
        extra_q = draw(st.sampled_from(tree.question_keys) | st.text())
        extra_a = draw(st.text())
        return Broken(kind, path + [item(extra_q, extra_a)], "after_end", index=n, question=extra_q)
    if kind == "swap":
        i = draw(st.integers(0, n - 2))
        j = draw(st.integers(i + 1, n - 1))
        swapped = list(path)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        return Broken(kind, swapped, "wrong_question", index=i, question=path[j]["question"])
    if kind == "wrong_answer":
        valid = set(tree.question(q).answer_keys)
        elsewhere = sorted({k for other in tree.questions for k in other.answer_keys} - valid)
        wrong = draw((st.sampled_from(elsewhere) | st.text()).filter(lambda s: s not in valid))
        return Broken(kind, path[:i] + [item(q, wrong)] + path[i + 1:], "invalid_answer", index=i,
                      question=q, answer=wrong)
    if kind == "unknown_question":
        unknown = draw(st.text().filter(lambda s: s not in tree))
        return Broken(kind, path[:i] + [item(unknown, a)] + path[i + 1:], "unknown_question", index=i,
                      question=unknown)
    if kind == "wrong_question":
        other = draw(st.sampled_from([k for k in tree.question_keys if k != q]))
        other_answer = draw(st.sampled_from(tree.question(other).answer_keys))
        return Broken(kind, path[:i] + [item(other, other_answer)] + path[i + 1:], "wrong_question", index=i,
                      question=other)
    if kind == "duplicate":
        doubled = path[:i + 1] + [dict(path[i])] + path[i + 1:]
        if i == n - 1:
            return Broken(kind, doubled, "after_end", index=n, question=q)
        return Broken(kind, doubled, "wrong_question", index=i + 1, question=q)
    if kind == "empty":
        return Broken(kind, [], "empty", question=tree.first)
    if kind == "not_a_list":
        garbage = draw(json_values.filter(lambda v: not isinstance(v, list)))
        return Broken(kind, garbage, "not_a_list")
    if kind == "non_object_item":
        garbage = draw(json_values.filter(lambda v: not isinstance(v, dict)) | st.just([q, a]))
        return Broken(kind, path[:i] + [garbage] + path[i + 1:], "malformed", index=i)
    if kind == "missing_key":
        partial = draw(st.sampled_from([{"question": q}, {"answer": a}, {}]))
        return Broken(kind, path[:i] + [partial] + path[i + 1:], "malformed", index=i)
    if kind == "extra_key":
        key = draw(st.text(max_size=10).filter(lambda k: k not in ("question", "answer")))
        return Broken(kind, path[:i] + [{**path[i], key: draw(json_values)}] + path[i + 1:], "unknown_field",
                      index=i)
    assert kind == "non_string_value"
    bad = draw(st.sampled_from([item(draw(not_strings), a), item(q, draw(not_strings)),
                                item(draw(not_strings), draw(not_strings))]))
    return Broken(kind, path[:i] + [bad] + path[i + 1:], "malformed", index=i)


def snapshot(workflow: Workflow, galaxy) -> tuple:
    status = SubjectStatus.objects.get(workflow=workflow, galaxy=galaxy)
    return Classification.objects.count(), status.classification_count, status.vote_counts, status.retired_at


@pytest.fixture(params=sorted(TREES))
def target(request):
    """A shipped workflow (retiring late enough for every example) and one of its galaxies."""
    workflow = Workflow.objects.get(slug=request.param)
    assert workflow.tree_hash == TREES[workflow.slug].version_hash
    Workflow.objects.filter(pk=workflow.pk).update(retirement_count=10_000)
    workflow.refresh_from_db()
    galaxy = GalaxyFactory()
    ensure_subject_statuses(workflow=workflow, galaxy_ids=[galaxy.id])
    return workflow, galaxy, TREES[workflow.slug]


def check_refusal(error: dict, broken: Broken) -> None:
    assert error["rule"] == broken.rule, error
    if broken.index is not None:
        assert error["index"] == broken.index, error
    if broken.question is not None:
        assert error["question"] == broken.question, error
        assert repr(broken.question) in error["message"] or f"'{broken.question}'" in error["message"]
    if broken.answer is not None:
        assert error["answer"] == broken.answer, error


def test_every_walk_through_the_tree_is_accepted_and_counted_exactly(target):
    workflow, galaxy, tree = target

    @PROPERTY
    @given(path=valid_paths(tree))
    def check(path):
        before = SubjectStatus.objects.get(workflow=workflow, galaxy=galaxy)
        key = uuid.uuid4().hex
        volunteer = Volunteer.anonymous(uuid.uuid4().hex)
        result = submit_classification(submission=Submission(workflow_slug=workflow.slug,
                                                             galaxy_id_str=galaxy.id_str, annotations=path,
                                                             idempotency_key=key),
                                       volunteer=volunteer)
        assert result.created and result.classification.counted
        after = SubjectStatus.objects.get(workflow=workflow, galaxy=galaxy)
        assert after.classification_count == before.classification_count + 1
        expected = dict(before.vote_counts)
        for step in path:
            column = f"{step['question']}_{step['answer']}"
            expected[column] = expected.get(column, 0) + 1
        assert after.vote_counts == expected
        assert Classification.objects.get(idempotency_key=key).annotations == path

        replay = submit_classification(submission=Submission(workflow_slug=workflow.slug,
                                                             galaxy_id_str=galaxy.id_str, annotations=path,
                                                             idempotency_key=key),
                                       volunteer=volunteer)
        assert not replay.created and replay.classification.id == result.classification.id
        with pytest.raises(IdempotencyConflict) if len(path) > 1 else nullcontext():  # same key, other answers
            submit_classification(submission=Submission(workflow_slug=workflow.slug, galaxy_id_str=galaxy.id_str,
                                                        annotations=path[:1], idempotency_key=key),
                                  volunteer=volunteer)
        assert SubjectStatus.objects.get(workflow=workflow, galaxy=galaxy).vote_counts == expected

    check()


def test_every_broken_path_is_refused_naming_the_rule_and_nothing_is_stored(target):
    workflow, galaxy, tree = target
    seen_rules = set()

    @PROPERTY
    @given(broken=broken_annotations(tree))
    def check(broken):
        note(f"{broken.kind}: {broken.annotations!r}")
        before = snapshot(workflow, galaxy)
        with pytest.raises(InvalidAnnotations) as info:
            submit_classification(submission=Submission(workflow_slug=workflow.slug, galaxy_id_str=galaxy.id_str,
                                                        annotations=broken.annotations,
                                                        idempotency_key=uuid.uuid4().hex),
                                  volunteer=Volunteer.anonymous("prop"))
        assert info.value.field == "annotations"
        check_refusal(info.value.detail["error"], broken)
        assert snapshot(workflow, galaxy) == before
        seen_rules.add(broken.rule)

    check()
    assert len(seen_rules) >= 6, seen_rules


def _parser_accepts(broken) -> bool:
    """Text no column can hold (NUL, unpaired surrogates) is refused by the JSON parser before the
    tree validation sees it — a different rule, tested in tests/platform/core."""
    try:
        check_storable(broken.annotations)
    except ParseError:
        return False
    return True


def test_broken_paths_over_http_are_400_naming_annotations(target):
    workflow, galaxy, tree = target
    client = APIClient()

    @VIA_HTTP
    @given(broken=broken_annotations(tree).filter(_parser_accepts))
    def check(broken):
        note(f"{broken.kind}: {broken.annotations!r}")
        before = snapshot(workflow, galaxy)
        response = client.post("/api/classifications/", {
            "workflow": workflow.slug, "galaxy": galaxy.id_str, "annotations": broken.annotations,
            "idempotency_key": uuid.uuid4().hex}, format="json")
        assert response.status_code == 400, response.content
        body = response.json()
        assert (body["code"], body["field"]) == ("invalid_annotations", "annotations")
        check_refusal(body["error"], broken)
        assert snapshot(workflow, galaxy) == before

    check()


def test_valid_walks_over_http_are_201_and_counted(target):
    workflow, galaxy, tree = target

    @VIA_HTTP
    @given(path=valid_paths(tree))
    def check(path):
        before = snapshot(workflow, galaxy)
        response = APIClient().post("/api/classifications/", {
            "workflow": workflow.slug, "galaxy": galaxy.id_str, "annotations": path,
            "idempotency_key": uuid.uuid4().hex}, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["annotations"] == path and response.json()["counted"] is True
        count, classifications, votes, _ = snapshot(workflow, galaxy)
        assert (count, classifications) == (before[0] + 1, before[1] + 1)
        assert sum(votes.values()) == sum(before[2].values()) + len(path)

    check()


@pytest.mark.parametrize(("body", "rule"), [
    ({}, "missing"),
    ({"annotations": None}, "not_a_list"),
    ({"annotations": "[{\"question\": \"smooth-or-featured\", \"answer\": \"artifact\"}]"}, "not_a_list"),
])
def test_missing_or_null_annotations_name_the_field(body, rule):
    galaxy = GalaxyFactory()
    response = APIClient().post("/api/classifications/", {
        "workflow": "gz-decals-dr5", "galaxy": galaxy.id_str, "idempotency_key": uuid.uuid4().hex, **body},
        format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "annotations" and response.json()["error"]["rule"] == rule
    assert Classification.objects.count() == 0
