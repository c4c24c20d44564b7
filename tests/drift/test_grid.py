import numpy as np
import pytest

from rawdrift.drift.grid import (
    GridSummary, best_per_test, corruption_drop, drop_ratio, grid_mean_std, heatmap, isp_drop,
    normalised_error, ranking, top_k_overlap,
)

NAMES = ["a", "b", "c", "d"]


def make_isp():
    # rows: trained on; cols: tested on; 2 folds
    mean = np.array([[0.9, 0.8, 0.7, 0.8], [0.6, 0.8, 0.7, 0.5], [0.9, 0.9, 0.9, 0.9], [0.2, 0.2, 0.2, 0.6]])
    return np.stack([mean - 0.05, mean + 0.05], axis=2)


def test_mean_std_and_drop():
    s = make_isp()
    m, sd = grid_mean_std(s)
    np.testing.assert_allclose(m, s.mean(2))
    np.testing.assert_allclose(sd, 0.05)
    diag, off = isp_drop(s)
    assert diag == pytest.approx(np.mean([0.9, 0.8, 0.9, 0.6]))
    assert off == pytest.approx((m.sum() - np.trace(m)) / 12)


def test_ranking_stars_overlap():
    s = make_isp()
    r = ranking(s, NAMES)
    assert [n for _, n, _ in r] == ["c", "a", "b", "d"] and r[0][0] == 1
    assert best_per_test(s).tolist() == [0, 2, 2, 2]
    other = [(1, "d", 0), (2, "b", 0), (3, "a", 0)]
    assert top_k_overlap(r, other) == {"a", "b"}


def test_corruption_drop_ratio_and_summary():
    isp = make_isp()
    cor = np.stack([np.array([[0.9, 0.5, 0.4], [0.8, 0.6, 0.2], [0.9, 0.3, 0.3], [0.6, 0.1, 0.1]])] * 2, axis=2)
    clean, corrupted = corruption_drop(cor)
    assert clean == pytest.approx(0.8) and corrupted == pytest.approx(np.mean([0.5, 0.4, 0.6, 0.2, 0.3, 0.3, 0.1, 0.1]))
    d_isp = np.subtract(*isp_drop(isp))
    assert drop_ratio(isp, cor) == pytest.approx((clean - corrupted) / d_isp)
    summary = GridSummary.from_grids(isp, cor, NAMES)
    assert "x the ISP drop" in summary.to_text()


def test_normalised_error():
    s = np.array([[[0.5], [0.5]], [[0.75], [0.75]]])
    np.testing.assert_allclose(normalised_error(s, baseline=0), [1.0, 0.5])


def test_heatmap_draws_ranks_and_stars():
    import matplotlib

    matplotlib.use("Agg")
    ax = heatmap(make_isp(), NAMES, NAMES, title="t")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[2].startswith("1 ") and labels[3] == "d"
    assert sum(t.get_text().endswith("*") for t in ax.texts) == 4


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: grid_mean_std(np.zeros((2, 2))), r"scores: expected an array \(train, test, fold\)"),
        (lambda: isp_drop(np.zeros((2, 3, 1))), "must be square"),
        (lambda: isp_drop(np.zeros((1, 2, 1)), ["a"], ["b", "c"]), r"training configurations \['a'\] are not among"),
        (lambda: isp_drop(np.zeros((1, 2, 1)), ["a"], ["a"]), "1x1 names for a grid"),
        (lambda: corruption_drop(np.zeros((2, 1, 1))), "needs the clean column"),
        (lambda: ranking(np.zeros((2, 2, 1)), ["a"]), "names: expected 2"),
        (lambda: normalised_error(np.zeros((2, 2, 1)), 5), "baseline: expected a row index"),
        (lambda: normalised_error(np.ones((2, 2, 1)), 0), "zero error"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
