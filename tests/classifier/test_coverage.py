"""TypiClust picks one typical galaxy per (uncovered, large) cluster."""

import numpy as np

from classifier.coverage import typicality, typiclust


def blobs(sizes, seed=0, spread=0.3):
    rng = np.random.default_rng(seed)
    centres = np.array([[10.0 * i, (-1) ** i * 5.0] for i in range(len(sizes))])
    x = np.concatenate([centres[i] + rng.normal(0, spread, size=(n, 2)) for i, n in enumerate(sizes)])
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return x.astype(np.float32), labels, centres


def test_one_pick_per_cluster_near_its_centre():
    x, labels, centres = blobs([60, 50, 40, 30, 20])
    picked = typiclust(x, 5, seed=0)
    assert sorted(labels[picked]) == [0, 1, 2, 3, 4]
    distance_to_centre = np.linalg.norm(x[picked] - centres[labels[picked]], axis=1)
    assert distance_to_centre.max() < 0.3  # the dense middle, not the fringe (spread 0.3)


def test_labelled_clusters_are_skipped_and_largest_uncovered_come_first():
    x, labels, _ = blobs([60, 50, 40, 30, 20])
    labelled = [int(np.flatnonzero(labels == 0)[0]), int(np.flatnonzero(labels == 1)[0])]
    picked = typiclust(x, 2, labelled=labelled, seed=0)
    assert sorted(labels[picked]) == [2, 3]
    assert not set(picked) & set(labelled)


def test_more_picks_than_points_returns_every_free_point_once():
    x, _, _ = blobs([3, 2])
    picked = typiclust(x, 10, labelled=[0])
    assert sorted(picked) == [1, 2, 3, 4]


def test_typicality_is_highest_in_dense_regions():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 0.1, size=(50, 2)), [[5.0, 5.0]]]).astype(np.float32)
    t = typicality(x, k=5)
    assert t[-1] < t[:-1].min()


def test_a_large_pool_is_clustered_on_a_sample_that_keeps_every_labelled_galaxy():
    x, labels, _ = blobs([600, 500, 400, 300, 200], seed=2)
    labelled = [int(np.flatnonzero(labels == 0)[0]), int(np.flatnonzero(labels == 1)[0])]
    picked = typiclust(x, 3, labelled=labelled, seed=0, at_most=300)
    assert sorted(labels[picked]) == [2, 3, 4]  # the labelled galaxies' clusters stay covered
    assert len(set(picked.tolist())) == 3 and not set(picked.tolist()) & set(labelled)
    np.testing.assert_array_equal(picked, typiclust(x, 3, labelled=labelled, seed=0, at_most=300))  # seeded
