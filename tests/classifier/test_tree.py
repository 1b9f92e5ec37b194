"""Tree documents are validated on load: every malformed definition is refused with a message
naming the offending key, and the shipped trees load."""

import copy

import pytest

from classifier.tree import SHIPPED_TREES, AnnotationError, DecisionTree, TreeDefinitionError


def tree_doc() -> dict:
    """shape → (round: end | disk → arms → bulge → end), a small tree with a shared tail."""
    return {
        "name": "t", "first": "shape",
        "questions": [
            {"key": "shape", "answers": [{"key": "round", "next": None}, {"key": "disk", "next": "arms"}]},
            {"key": "arms", "answers": [{"key": "yes", "next": "bulge"}, {"key": "no", "next": "bulge"}]},
            {"key": "bulge", "answers": [{"key": "big", "next": None}, {"key": "small", "next": None}]},
        ],
    }


def rejected(doc) -> str:
    with pytest.raises(TreeDefinitionError) as info:
        DecisionTree.from_dict(doc)
    return str(info.value)


def test_the_reference_document_is_valid():
    tree = DecisionTree.from_dict(tree_doc())
    assert tree.question_keys == ("shape", "arms", "bulge")
    assert tree.validate_annotations([("shape", "disk"), ("arms", "no"), ("bulge", "big")]) == [
        ("shape", "disk"), ("arms", "no"), ("bulge", "big")]


def test_duplicate_question_key():
    doc = tree_doc()
    doc["questions"].append(copy.deepcopy(doc["questions"][2]))
    assert "duplicate question key 'bulge'" in rejected(doc)


def test_duplicate_answer_key():
    doc = tree_doc()
    doc["questions"][1]["answers"][1]["key"] = "yes"
    assert "'arms' has duplicate answer keys ['yes']" in rejected(doc)


def test_dangling_next():
    doc = tree_doc()
    doc["questions"][1]["answers"][0]["next"] = "spiral-count"
    assert "'arms.yes' leads to unknown question 'spiral-count'" in rejected(doc)


def test_next_must_be_a_key_or_null():
    doc = tree_doc()
    doc["questions"][0]["answers"][0]["next"] = 3
    assert "'shape.round': 'next' must be a question key or null" in rejected(doc)


def test_cycle_is_named_along_its_path():
    doc = tree_doc()
    doc["questions"][2]["answers"][1]["next"] = "arms"
    assert "cycle in tree: shape -> arms -> bulge -> arms" in rejected(doc)


def test_self_loop_is_a_cycle():
    doc = tree_doc()
    doc["questions"][2]["answers"][0]["next"] = "bulge"
    assert "cycle in tree" in rejected(doc)


def test_unreachable_question():
    doc = tree_doc()
    doc["questions"].append({"key": "orphan", "answers": [{"key": "a", "next": None}]})
    assert "questions not reachable from 'shape': ['orphan']" in rejected(doc)


def test_question_reachable_only_from_an_unreachable_one_is_unreachable_too():
    doc = tree_doc()
    doc["questions"][0]["answers"][1]["next"] = "bulge"  # nothing leads to 'arms' any more
    assert "not reachable from 'shape': ['arms']" in rejected(doc)


@pytest.mark.parametrize("answers", [[], None, "yes"])
def test_empty_or_missing_answers(answers):
    doc = tree_doc()
    doc["questions"][2]["answers"] = answers
    assert "question 'bulge' needs a non-empty 'answers' list" in rejected(doc)


@pytest.mark.parametrize("questions", [[], None, {"key": "shape"}])
def test_empty_or_missing_questions(questions):
    doc = tree_doc()
    doc["questions"] = questions
    assert "'questions' must be a non-empty list" in rejected(doc)


def test_missing_or_empty_keys():
    doc = tree_doc()
    doc["questions"][1]["key"] = ""
    assert "question #1 needs a non-empty string 'key'" in rejected(doc)
    doc = tree_doc()
    del doc["questions"][2]["answers"][0]["key"]
    assert "answer #0 of question 'bulge' needs a non-empty string 'key'" in rejected(doc)


def test_undefined_first_question():
    doc = tree_doc()
    doc["first"] = "colour"
    assert "first question 'colour' is not defined" in rejected(doc)


def test_a_tree_must_be_an_object():
    assert "a tree must be a JSON object" in rejected([tree_doc()])


def test_unreadable_file_names_the_path(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(TreeDefinitionError, match="broken.json: cannot read tree"):
        DecisionTree.from_file(path)


@pytest.mark.parametrize("name", SHIPPED_TREES)
def test_shipped_trees_load_and_survive_a_round_trip(name):
    tree = DecisionTree.load(name)
    again = DecisionTree.from_dict(tree.to_dict())
    assert again.version_hash == tree.version_hash
    assert again.answer_columns == tree.answer_columns
    assert set(tree.topological_order) == set(tree.question_keys)


def test_version_hash_ignores_wording_but_not_structure():
    base = DecisionTree.from_dict(tree_doc()).version_hash
    reworded = tree_doc()
    reworded["questions"][0]["text"] = "Is it round?"
    reworded["questions"][0]["answers"][0]["label"] = "Round!"
    assert DecisionTree.from_dict(reworded).version_hash == base
    relinked = tree_doc()
    relinked["questions"][1]["answers"][1]["next"] = None
    assert DecisionTree.from_dict(relinked).version_hash != base
    extra_answer = tree_doc()
    extra_answer["questions"][2]["answers"].append({"key": "none", "next": None})
    assert DecisionTree.from_dict(extra_answer).version_hash != base


def test_annotation_errors_carry_rule_and_keys():
    tree = DecisionTree.from_dict(tree_doc())
    with pytest.raises(AnnotationError) as info:
        tree.validate_annotations([("shape", "disk"), ("arms", "maybe")])
    assert info.value.as_dict() == {"message": info.value.message, "rule": "invalid_answer", "index": 1,
                                    "question": "arms", "answer": "maybe"}


@pytest.mark.parametrize("name", ["decals_dr5", "gz2"])
def test_random_paths_are_valid_and_cover_every_question(name):
    import random

    tree = DecisionTree.load(name)
    rng = random.Random(0)
    paths = [tree.random_path(rng) for _ in range(300)]
    assert all(tree.validate_annotations(path) for path in paths)
    assert {step["question"] for path in paths for step in path} == set(tree.question_keys)


def test_answers_know_their_column_and_index_and_questions_their_slice():
    tree = DecisionTree.from_dict(tree_doc())
    assert [(a.column, a.index) for a in tree.answers] == [
        ("shape_round", 0), ("shape_disk", 1), ("arms_yes", 2), ("arms_no", 3), ("bulge_big", 4), ("bulge_small", 5)]
    arms = tree.question("arms")
    assert (arms.index, arms.slice) == (1, slice(2, 4))
    assert [a.index for a in arms.answers] == list(range(6))[arms.slice]
    assert tree.answer_columns == tuple(a.column for a in tree.answers)
    assert tree.path_columns([("shape", "disk"), ("arms", "no")]) == ["shape_disk", "arms_no"]


def test_counts_vector_puts_a_tally_in_column_order():
    tree = DecisionTree.from_dict(tree_doc())
    vector = tree.counts_vector({"arms_no": 4, "shape_disk": 7, "bulge_small": None, "gone_answer": 9})
    assert vector.tolist() == [0, 7, 0, 4, 0, 0]


def test_summary_gives_counts_and_fractions_per_question():
    tree = DecisionTree.from_dict(tree_doc())
    shape, arms, bulge = tree.summary({"shape_round": 1, "shape_disk": 3, "arms_yes": 3})
    assert (shape["question"], shape["total"]) == ("shape", 4)
    assert [(a["column"], a["count"], a["fraction"]) for a in shape["answers"]] == [
        ("shape_round", 1, 0.25), ("shape_disk", 3, 0.75)]
    assert [a["fraction"] for a in arms["answers"]] == [1.0, 0.0]
    assert bulge["total"] == 0 and [a["fraction"] for a in bulge["answers"]] == [None, None]


def test_documents_for_clients_carry_columns_but_the_stored_document_does_not():
    tree = DecisionTree.from_dict(tree_doc())
    served = tree.to_dict(with_columns=True)
    assert {k: served["questions"][1]["answers"][1][k] for k in ("key", "column", "index")} == {
        "key": "no", "column": "arms_no", "index": 3}
    assert (served["questions"][1]["start"], served["questions"][1]["end"]) == (2, 4)
    assert "column" not in tree.to_dict()["questions"][0]["answers"][0]
    assert DecisionTree.from_dict(served).to_dict() == tree.to_dict()
