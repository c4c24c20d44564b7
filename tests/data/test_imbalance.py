"""make_imbalanced: exact profiles on a toy dataset, determinism, nesting, errors."""

import logging

import numpy as np
import pytest

from rawdrift.data import make_imbalanced
from rawdrift.data.imbalance import class_profile


class Toy:
    """Classification stand-in: ``counts[c]`` samples of class c, interleaved."""

    def __init__(self, counts, classes=None):
        self.targets = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
        np.random.default_rng(1).shuffle(self.targets)
        self.classes = classes or tuple(f"c{c}" for c in range(len(counts)))

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return None, int(self.targets[i]), {}


def counts_of(sub):
    return np.bincount(sub.targets, minlength=len(sub.dataset.classes)).tolist()


def test_exponential_profile_exact():
    sub = make_imbalanced(Toy([20] * 5), "exponential", imbalance_ratio=16.0)
    # n_r = 20 * 16 ** (-r / 4) = 20, 10, 5, 2.5, 1.25 -> rounded half up
    assert counts_of(sub) == [20, 10, 5, 3, 1]
    assert sub.counts == (20, 10, 5, 3, 1)
    assert sub.ratio == 20.0


def test_linear_and_balanced_profiles_exact():
    assert counts_of(make_imbalanced(Toy([12] * 4), "linear", imbalance_ratio=4.0)) == [12, 9, 6, 3]
    assert counts_of(make_imbalanced(Toy([12, 7, 9]), "balanced")) == [7, 7, 7]


def test_default_order_by_descending_count_then_index():
    sub = make_imbalanced(Toy([10, 30, 10, 20]), "linear", imbalance_ratio=10.0)
    assert sub.order == (1, 3, 0, 2)
    # n_max = smallest class (10): ranks get 10, 7, 4, 1
    assert counts_of(sub) == [4, 10, 1, 7]


def test_given_order_and_n_max():
    sub = make_imbalanced(Toy([10] * 3), "exponential", imbalance_ratio=4.0, order=[2, 0, 1], n_max=8)
    assert counts_of(sub) == [4, 2, 8]


def test_deterministic_seeded_and_nested():
    ds = Toy([30] * 4)
    a = make_imbalanced(ds, "exponential", seed=3)
    assert a.indices == make_imbalanced(ds, "exponential", seed=3).indices
    assert a.indices != make_imbalanced(ds, "exponential", seed=4).indices
    lin = make_imbalanced(ds, "linear", seed=3)
    bal = make_imbalanced(ds, "balanced", seed=3)
    assert set(a.indices) < set(lin.indices) < set(bal.indices)


def test_pool_indices_respected():
    ds = Toy([10] * 3)
    pool = np.arange(0, 30, 2)
    sub = make_imbalanced(ds, "balanced", indices=pool)
    assert set(sub.indices) <= set(pool.tolist())
    assert len(set(counts_of(sub))) == 1


def test_ratio_logged(caplog):
    with caplog.at_level(logging.INFO, logger="rawdrift.data.imbalance"):
        make_imbalanced(Toy([10] * 3), "exponential", imbalance_ratio=10.0)
    assert "n_max/n_min = 10/1 = 10.00" in caplog.text


def test_class_profile_single_class():
    assert class_profile("exponential", 7, 1, 10.0).tolist() == [7]


def test_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        make_imbalanced(Toy([5] * 3), "zipf")


def test_ratio_below_one():
    with pytest.raises(ValueError, match="imbalance_ratio: expected a finite value >= 1"):
        make_imbalanced(Toy([5] * 3), "linear", imbalance_ratio=0.5)


def test_too_few_samples_names_class():
    with pytest.raises(ValueError, match=r"class 'c2' \(index 2\) has 5 samples in the pool, the balanced profile needs 8"):
        make_imbalanced(Toy([10, 10, 5]), "balanced", n_max=8)


def test_empty_class_named():
    ds = Toy([4, 4, 4])
    pool = np.flatnonzero(ds.targets != 1)
    with pytest.raises(ValueError, match=r"class 'c1' \(index 1\) has no samples"):
        make_imbalanced(ds, "linear", indices=pool)


def test_bad_order():
    with pytest.raises(ValueError, match="order: expected each of the 3"):
        make_imbalanced(Toy([5] * 3), "linear", order=[0, 0, 1])


def test_repeated_indices():
    with pytest.raises(ValueError, match="indices: contains repeated"):
        make_imbalanced(Toy([5] * 3), "linear", indices=[0, 0, 1])


def test_not_a_classification_dataset():
    with pytest.raises(TypeError, match="dataset: expected a classification dataset"):
        make_imbalanced(object(), "linear")


def test_usable_with_fit_unwrap():
    from rawdrift.train import _unwrap

    ds = Toy([6] * 3)
    sub = make_imbalanced(ds, "linear", imbalance_ratio=3.0)
    base, idx = _unwrap(sub)
    assert base is ds and idx.tolist() == list(sub.indices)
