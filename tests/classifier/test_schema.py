import numpy as np
import pytest

from classifier.schema import Schema, SchemaMismatchError, resolve_schema
from classifier.tree import load_tree


def test_arrays_follow_the_tree():
    tree = load_tree("decals_dr5")
    schema = Schema.from_tree(tree)
    assert schema.n_questions == 10 and schema.n_answers == 34
    assert schema.question_slices[0] == (0, 3)
    flat = [i for start, end in schema.question_slices for i in range(start, end)]
    assert flat == list(range(34))
    assert [tree.questions[q].key for q in schema.answer_question] == [q.key for q in tree.questions for _ in q.answers]


def test_dependencies_name_the_answer_that_leads_to_each_question():
    schema = resolve_schema("gz2")
    edge_on = schema.tree.question("edge-on").index
    leads = [d for d in schema.dependencies if d.question == edge_on]
    assert [schema.tree.answers[d.answer_index].column for d in leads] == ["smooth-or-features_features-or-disk"]


def test_round_trip_through_dict_keeps_the_tree():
    schema = resolve_schema("gz2")
    again = Schema.from_dict(schema.to_dict())
    assert again.tree.answer_columns == schema.tree.answer_columns
    assert again.version_hash == schema.version_hash
    assert again.tree.question("odd").extra["kaggle"] == "Class6"


@pytest.mark.parametrize("name", ["gz2", "decals_dr5"])
def test_array_reach_probabilities_match_the_tree(name):
    schema = resolve_schema(name)
    rng = np.random.default_rng(1)
    fractions = np.concatenate([rng.dirichlet(np.ones(b - a)) for a, b in schema.question_slices])
    expected = schema.tree.reach_probabilities(list(fractions))
    got = schema.reach_probabilities(fractions[None, :])[0]
    np.testing.assert_allclose(got, [expected[k] for k in schema.tree.question_keys])


def test_incompatible_schemas_are_rejected():
    with pytest.raises(SchemaMismatchError):
        resolve_schema("gz2").check_compatible(resolve_schema("decals_dr5"))
