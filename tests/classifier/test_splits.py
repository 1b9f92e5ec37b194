import numpy as np
import pytest

from classifier.splits import hash_split


def test_split_is_a_partition_with_the_requested_shares_and_stable_per_id():
    ids = list(range(10_000))
    parts = hash_split(ids)
    together = np.concatenate(list(parts.values()))
    assert sorted(together) == ids
    assert abs(len(parts["eval"]) / 10_000 - 0.2) < 0.02 and abs(len(parts["pool"]) / 10_000 - 0.4) < 0.02
    # A galaxy's side does not depend on which other galaxies are in the catalogue.
    subset = ids[::7]
    sub_parts = hash_split(subset)
    assert {subset[i] for i in sub_parts["eval"]} == {i for i in parts["eval"] if i % 7 == 0}


def test_salt_changes_the_split_and_bad_fractions_fail():
    ids = list(range(1000))
    assert set(hash_split(ids)["eval"]) != set(hash_split(ids, salt="other")["eval"])
    with pytest.raises(ValueError, match="fractions"):
        hash_split(ids, {"a": -1.0, "b": 1.0})
