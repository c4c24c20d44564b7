"""Reliability maps, tested on analytic oracles whose answer is known."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("imblearn")

from rawdrift.drift import reliability as rel  # noqa: E402
from rawdrift.drift.reliability import (  # noqa: E402
    ParameterBox,
    ReliabilityConfig,
    ReliabilityResult,
    analytic_oracle,
    classification_metrics,
    evaluate_grid,
    gp_sampling,
    random_sampling,
    rebalance,
    run_reliability,
)

UNIT2 = ParameterBox(("a", "b"), (0.0, 0.0), (1.0, 1.0))


def two_blobs(C):
    C = np.asarray(C)
    a = np.exp(-((C - [0.2, 0.25]) ** 2).sum(1) / (2 * 0.06 ** 2))
    b = np.exp(-((C - [0.75, 0.8]) ** 2).sum(1) / (2 * 0.06 ** 2))
    return np.maximum(a, b)


# -- ParameterBox ----------------------------------------------------------------------------------

def test_box_scale_unscale_grid_sample():
    box = ParameterBox(("gamma", "blur"), (1.0, 0.0), (3.0, 2.0))
    c = np.array([[1.0, 0.0], [3.0, 2.0], [2.5, 1.0]])
    u = box.scale(c)
    np.testing.assert_allclose(u, [[0, 0], [1, 1], [0.75, 0.5]])
    np.testing.assert_allclose(box.unscale(u), c)
    g = box.grid((3, 2))
    assert g.shape == (6, 2)
    np.testing.assert_allclose(g[:2], [[1.0, 0.0], [1.0, 2.0]])  # first axis slowest
    s = box.sample(50, np.random.default_rng(0))
    assert s.shape == (50, 2) and (s >= box.low).all() and (s <= box.high).all()
    np.testing.assert_array_equal(s, box.sample(50, 0))
    assert ParameterBox.from_dict(json.loads(json.dumps(box.to_dict()))) == box


@pytest.mark.parametrize("kw, match", [
    (dict(names=("a", "a"), low=(0, 0), high=(1, 1)), "names: expected unique"),
    (dict(names=("a", "b"), low=(0, 1), high=(1, 1)), r"low, high: .*\['b'\]"),
    (dict(names=("a",), low=(np.nan,), high=(1,)), "low: expected finite"),
    (dict(names=("a",), low=(0,), high=(np.inf,)), "high: expected finite"),
    (dict(names=("a", "b"), low=(0,), high=(1, 1)), "low: expected 2 values"),
    (dict(names=(), low=(), high=()), "names: expected at least one"),
    (dict(names="ab", low=(0,), high=(1,)), "names: expected a sequence"),
])
def test_box_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        ParameterBox(**kw)


def test_box_method_errors():
    with pytest.raises(ValueError, match=r"c: expected an array \(n, 2\)"):
        UNIT2.scale(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="points_per_dim"):
        UNIT2.grid(1)
    with pytest.raises(ValueError, match="points_per_dim"):
        UNIT2.grid((3, 3, 3))
    with pytest.raises(ValueError, match="n: expected an integer >= 0"):
        UNIT2.sample(-1)


# -- ground truth --------------------------------------------------------------------------------

def test_evaluate_grid_cache_and_resume(tmp_path):
    f, box = analytic_oracle(2)
    calls = []

    def counting(C):
        calls.append(len(C))
        return f(C)

    cache = tmp_path / "truth.npz"
    v = evaluate_grid(counting, box, 5, cache_path=cache, chunk_size=10)
    np.testing.assert_allclose(v, f(box.grid(5)))
    assert sum(calls) == 25
    # interrupted run: pretend the last chunk was not done
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["done"][20:] = False
    arrays["values"][20:] = np.nan
    rel.write_npz(cache, **arrays)
    calls.clear()
    np.testing.assert_allclose(evaluate_grid(counting, box, 5, cache_path=cache, chunk_size=10), v)
    assert sum(calls) == 5
    # another grid ignores the cache
    calls.clear()
    evaluate_grid(counting, box, 4, cache_path=cache, chunk_size=10)
    assert sum(calls) == 16


def test_oracle_errors():
    with pytest.raises(ValueError, match="f: the oracle returned 1 values for 4 points"):
        evaluate_grid(lambda C: np.zeros(1), UNIT2, 2)
    with pytest.raises(ValueError, match="f: the oracle returned non-finite"):
        evaluate_grid(lambda C: np.full(len(C), np.nan), UNIT2, 2)
    with pytest.raises(TypeError, match="f: expected a callable"):
        evaluate_grid(3, UNIT2, 2)
    with pytest.raises(TypeError, match="box: expected a ParameterBox"):
        evaluate_grid(two_blobs, "box", 2)


def test_labels_and_minority():
    assert rel.reliable_labels([0.1, 0.8], 0.8).tolist() == [False, True]
    assert rel.reliable_is_minority([True, False, False])
    assert not rel.reliable_is_minority([True, True, False])
    f, box = analytic_oracle(3)
    v = evaluate_grid(f, box, 8)
    assert rel.reliable_is_minority(v >= 0.8) and 0.01 < (v >= 0.8).mean() < 0.06


# -- sampling --------------------------------------------------------------------------------------

def test_gp_sampling_finds_more_minority_points_than_random():
    f, box = analytic_oracle(2)
    gp = [gp_sampling(f, box, 30, 0.8, n_init=5, rng=s, n_candidates=500).n_positive(True) for s in (0, 1)]
    rnd = [random_sampling(f, box, 30, s, h=0.8).n_positive(True) for s in (0, 1)]
    # measured: gp about 13-15 per run, random about 2-3 (10% of the box is reliable)
    assert sum(gp) >= 2 * sum(rnd) + 8, (gp, rnd)


def test_gp_sampling_deterministic_and_prefix():
    f, box = analytic_oracle(2)
    a = gp_sampling(f, box, 9, 0.8, n_init=3, rng=7, n_candidates=200)
    b = gp_sampling(f, box, 9, 0.8, n_init=3, rng=7, n_candidates=200)
    np.testing.assert_array_equal(a.points, b.points)
    assert a.points.shape == (9, 2) and a.values.shape == (9,)
    np.testing.assert_allclose(a.values, f(a.points))
    c = gp_sampling(f, box, 6, 0.8, n_init=3, rng=7, n_candidates=200)
    np.testing.assert_array_equal(a.head(6).points, c.points)


def test_gp_sampling_follows_failing_minority():
    # flip the problem: failing is the rare side; sampling must then hunt low values
    f, box = analytic_oracle(2)
    g = lambda C: 1.15 - f(C)  # noqa: E731
    s = gp_sampling(g, box, 25, 0.35, n_init=5, rng=0, n_candidates=400)
    r = random_sampling(g, box, 25, 0, h=0.35)
    assert not s.minority_reliable
    assert s.n_positive() > r.n_positive(False)


def test_beta_schedule():
    assert rel.beta_schedule(3, 5, 0.1) == pytest.approx(2 * (np.log(3 * 5 * np.pi ** 2) - np.log(0.6)))
    with pytest.raises(ValueError, match="delta"):
        rel.beta_schedule(2, 1, 0.0)


def test_sampling_errors():
    with pytest.raises(ValueError, match="budget"):
        random_sampling(two_blobs, UNIT2, 0)
    with pytest.raises(ValueError, match="n_init"):
        gp_sampling(two_blobs, UNIT2, 5, 0.5, n_init=0)
    with pytest.raises(ValueError, match="beta"):
        gp_sampling(two_blobs, UNIT2, 5, 0.5, beta=-1.0)
    with pytest.raises(ValueError, match="sampler"):
        rel.sample("sobol", two_blobs, UNIT2, 5, 0.5)
    with pytest.raises(TypeError, match="rng"):
        random_sampling(two_blobs, UNIT2, 5, rng="seed")


# -- rebalancing ---------------------------------------------------------------------------------

def _two_blob_samples(seed=1):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.random((60, 2)), [0.2, 0.25] + 0.04 * rng.standard_normal((4, 2)),
                        [0.75, 0.8] + 0.04 * rng.standard_normal((4, 2))])
    v = two_blobs(X)
    return X, (v >= 0.5).astype(int), v


def test_smote_gp_keeps_fewer_but_more_correct_points():
    X, y, v = _two_blob_samples()
    smote = rebalance("smote", X, y, v, seed=1)
    sgp = rebalance("smote_gp", X, y, v, seed=1, v=0.05)
    prec = lambda s: (two_blobs(s) >= 0.5).mean()  # noqa: E731
    assert smote.generated == sgp.generated == len(smote.synthetic) > 0
    assert 0 < len(sgp.synthetic) < len(smote.synthetic)
    # SMOTE interpolates across the gap between the blobs; the GP filter drops those points
    assert prec(smote.synthetic) < 0.8 and prec(sgp.synthetic) > prec(smote.synthetic) + 0.15
    np.testing.assert_array_equal(sgp.X[:len(X)], X)
    assert (sgp.y[len(X):] == 1).all()


@pytest.mark.parametrize("method", rel.REBALANCERS)
def test_rebalancers_keep_real_samples_first(method):
    X, y, v = _two_blob_samples()
    r = rebalance(method, X, y, v, seed=0)
    np.testing.assert_array_equal(r.X[:len(X)], X)
    np.testing.assert_array_equal(r.y[:len(X)], y)
    assert len(r.X) == len(r.y) and (r.y[len(X):] == 1).all()
    if method in ("random_over", "smote", "adasyn"):
        assert r.y.sum() >= 0.8 * (1 - r.y).sum()


def test_rebalance_degenerate_inputs():
    X = np.random.default_rng(0).random((10, 2))
    r = rebalance("smote", X, np.r_[1, np.zeros(9, int)])
    assert r.note == "fewer than 2 minority points" and len(r.X) == 10
    assert rebalance("smote", X, np.zeros(10, int)).note == "one class only"


def test_rebalance_errors():
    X, y, v = _two_blob_samples()
    with pytest.raises(ValueError, match="method"):
        rebalance("tomek", X, y)
    with pytest.raises(ValueError, match="values: SMOTE-GP needs"):
        rebalance("smote_gp", X, y)
    with pytest.raises(ValueError, match="y: expected labels 0"):
        rebalance("smote", X, y * 2)
    with pytest.raises(ValueError, match="X, y"):
        rebalance("smote", X, y[:-1])
    with pytest.raises(ValueError, match="X_min: SMOTE-GP needs at least 2"):
        rel.smote_gp_filter(X[:1], v[:1], X[:3])


# -- classifiers and metrics ----------------------------------------------------------------------

def test_metrics_on_toy_predictions():
    from sklearn.metrics import balanced_accuracy_score, f1_score, precision_score, recall_score

    t = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([1, 0, 1, 1, 0, 0, 0, 1])
    m = classification_metrics(t, p)
    # tp=2 fp=2 fn=1 tn=3
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 3 / 5) / 2)
    assert m["f1"] == pytest.approx(f1_score(t, p))
    assert m["precision"] == pytest.approx(precision_score(t, p))
    assert m["recall"] == pytest.approx(recall_score(t, p))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(t, p))
    z = classification_metrics(t, np.zeros(8))
    assert z["f1"] == z["precision"] == z["recall"] == 0.0 and z["balanced_accuracy"] == 0.5
    with pytest.raises(ValueError, match="y_pred: expected 8"):
        classification_metrics(t, p[:3])


@pytest.mark.parametrize("name", rel.CLASSIFIERS)
def test_classifiers_learn_a_separable_blob(name):
    f, box = analytic_oracle(2)
    G = box.grid(12)
    U = box.scale(G)
    # a linear model gets a half-plane, the others the blob
    y = ((U.sum(1) > 1.2) if name == "logistic_regression" else (f(G) >= 0.6)).astype(int)
    pred = rel.fit_predict(name, U, y, U, seed=0)
    assert pred.shape == y.shape and set(np.unique(pred)) <= {0, 1}
    assert classification_metrics(y, pred)["balanced_accuracy"] > 0.85


def test_fit_predict_one_class_and_errors():
    assert rel.fit_predict("svm", np.zeros((3, 2)), [0, 0, 0], np.zeros((4, 2))).tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="classifier"):
        rel.make_classifier("knn")


# -- experiment ------------------------------------------------------------------------------------

def _small_config(tmp_path=None, **kw):
    base = dict(preset="ci", budgets=(8, 12), seeds=(0, 1), rebalancers=("none", "smote", "smote_gp"),
                n_candidates=200, out=tmp_path)
    base.update(kw)
    return ReliabilityConfig(**base)


def test_run_reliability_ci_save_load_and_determinism(tmp_path):
    res = run_reliability(_small_config(tmp_path / "a"))
    n_rows = 2 * 2 * 2 * 3 * 2  # seeds x samplers x budgets x rebalancers x classifiers
    assert len(res.rows) == n_rows and res.predictions.shape == (n_rows, 36)
    assert {r["budget"] for r in res.positives} == {8, 12}
    for r in res.rows:
        assert 0 <= r["f1"] <= 1 and 0 <= r["balanced_accuracy"] <= 1
    # predictions are consistent with the stored metrics
    i = 5
    assert classification_metrics(res.grid_labels, res.predictions[i])["f1"] == pytest.approx(res.rows[i]["f1"])
    table = res.table()
    assert len(table) == 2 * 2 * 3 and all(t["n"] == 4 for t in table)
    md = res.to_markdown()
    assert "| sampler | budget | rebalancer | f1 |" in md and "positives found" in md
    for name in ("result.json", "arrays.npz", "table.md", "ground_truth.npz"):
        assert (tmp_path / "a" / name).exists()
    back = ReliabilityResult.load(tmp_path / "a")
    assert back.rows == res.rows and back.positives == res.positives and back.synthetic == res.synthetic
    with pytest.raises(ValueError, match="no output directory"):
        dataclasses.replace(res, config=dataclasses.replace(res.config, out=None)).save()
    np.testing.assert_array_equal(back.predictions, res.predictions)
    np.testing.assert_array_equal(back.truth, res.truth)
    assert back.config.box == res.config.box and back.to_markdown() == md
    for k, s in res.samples.items():
        np.testing.assert_array_equal(back.samples[k].points, s.points)
    again = run_reliability(_small_config(tmp_path / "b"))
    assert again.rows == res.rows and again.positives == res.positives


def test_synthetic_truth_grid_vs_exact():
    cfg = dict(preset="ci", points_per_dim=20, budgets=(60,), samplers=("random",), rebalancers=("smote",),
               n_candidates=200, classifiers=("decision_tree",))
    a = run_reliability(ReliabilityConfig(**cfg, synthetic_truth="exact")).synthetic[0]
    b = run_reliability(ReliabilityConfig(**cfg, synthetic_truth="grid")).synthetic[0]
    assert a["kept"] == b["kept"] > 0
    assert abs(a["kept_minority"] - b["kept_minority"]) <= 0.2 * a["kept"]


def test_run_reliability_custom_oracle_and_errors():
    cfg = ReliabilityConfig(preset="ci", box=UNIT2, h=0.5, points_per_dim=10, budgets=(10,),
                            samplers=("random",), rebalancers=("none",), metric="toy")
    res = run_reliability(cfg, f=two_blobs)
    assert res.minority_reliable and len(res.truth) == 100
    with pytest.raises(ValueError, match="box: give config.box"):
        run_reliability(ReliabilityConfig(preset="ci"), f=two_blobs)
    with pytest.raises(ValueError, match="box: a custom box needs its own oracle"):
        run_reliability(cfg)
    with pytest.raises(ValueError, match="rebalancers"):
        ReliabilityConfig(preset="ci", rebalancers=("tomek",)).resolved()
    with pytest.raises(ValueError, match="preset"):
        ReliabilityConfig(preset="huge").resolved()
    with pytest.raises(ValueError, match="synthetic_truth"):
        ReliabilityConfig(preset="ci", synthetic_truth="guess").resolved()
    with pytest.raises(ValueError, match="budgets"):
        ReliabilityConfig(preset="ci", budgets=()).resolved()


def test_plots(tmp_path):
    pytest.importorskip("matplotlib")
    res = run_reliability(ReliabilityConfig(preset="ci", dims=3, points_per_dim=4, budgets=(10,), n_candidates=100))
    fig = rel.plot_map(res, dims=(0, 2), slice_at=(0, 2.2, 0))
    fig.savefig(tmp_path / "map.png")
    assert len(fig.axes) >= 2
    rel.plot_positives(res).savefig(tmp_path / "pos.png")
    with pytest.raises(ValueError, match="dims"):
        rel.plot_map(res, dims=(0, 0))
    with pytest.raises(ValueError, match="slice_at"):
        rel.plot_map(res, slice_at=(1.0,))
    with pytest.raises(ValueError, match="classifier"):
        rel.plot_map(res, classifier="mlp")


# -- the ISP oracle ------------------------------------------------------------------------------

class Brightness(torch.nn.Module):
    """Class 1 iff the mean of the view is above 0.5."""

    def forward(self, v):
        m = v.mean(dim=(1, 2, 3))
        return torch.stack([0.5 - m, m - 0.5], dim=1)


def _raw(n=6, size=8):
    g = torch.Generator().manual_seed(0)
    return 0.0625 + 0.12 * torch.rand(n, 1, size, size, generator=g)


def test_isp_oracle_exposure_changes_accuracy():
    from rawdrift.isp.camera import RAW_DRONE

    box = ParameterBox(("exposure", "gamma"), (0.1, 1.0), (8.0, 3.0))
    f = rel.isp_oracle(Brightness(), RAW_DRONE, _raw(), np.ones(6, int), box, batch_size=4)
    v = f(np.array([[0.1, 2.2], [8.0, 2.2]]))
    assert v.tolist() == [0.0, 1.0]  # dark views are class 0, bright ones class 1


def test_isp_oracle_defaults_reproduce_the_pipeline():
    from rawdrift.isp.camera import RAW_DRONE
    from rawdrift.isp.pipeline import Pipeline

    raw = _raw()
    pipe = Pipeline.parametrized(RAW_DRONE)
    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, v):
            seen["v"] = v.clone()
            return Brightness()(v)

    names = ("exposure", "black_level_offset", "wb_r", "wb_scale", "gamma", "sharpen", "blur_sigma",
             "color_correction.M[0,0]")
    box = ParameterBox(names, (0.5, -0.1, 0.5, 0.5, 1.0, 0.0, 0.0, 0.0), (2, 0.1, 2, 2, 3, 2, 2, 3))
    f = rel.isp_oracle(Spy(), pipe, raw, np.zeros(6, int), box, batch_size=6)
    default = [1.0, 0.0, 1.0, 1.0, 2.2, 1.0, 0.5, float(RAW_DRONE.color_matrix[0][0])]
    f(np.array([default]))
    with torch.no_grad():
        ref = Pipeline.parametrized(RAW_DRONE)(raw)
    torch.testing.assert_close(seen["v"], ref, atol=1e-5, rtol=0)
    # the pipeline is restored after the call, and another point changes the view
    f(np.array([[1.0, 0.0, 1.0, 1.0, 1.2, 0.0, 0.0, 1.0]]))
    assert (seen["v"] - ref).abs().max() > 1e-2
    torch.testing.assert_close(pipe.gamma_correction.gamma.detach(), torch.tensor(2.2))


def test_isp_oracle_generic_module_and_metrics():
    class Tiny(torch.nn.Module):  # a stand-in pipeline: gain, then grey to RGB
        def __init__(self):
            super().__init__()
            self.gain = torch.nn.Parameter(torch.ones(1))

        def forward(self, raw):
            return (raw * self.gain).clamp(0, 1).repeat(1, 3, 1, 1)

    raw = torch.cat([torch.full((3, 1, 4, 4), 0.3), torch.full((1, 1, 4, 4), 0.7)])
    targets = np.array([0, 0, 0, 1])
    box = ParameterBox(("gain",), (0.5,), (3.0,))
    for metric, want in (("accuracy", [1.0, 0.25]), ("balanced_accuracy", [1.0, 0.5]),
                         ("worst_class_accuracy", [1.0, 0.0])):
        f = rel.isp_oracle(Brightness(), Tiny(), raw, targets, box, metric=metric)
        assert f(np.array([[1.0], [2.0]])).tolist() == want
    with pytest.raises(ValueError, match="box: unknown parameter name 'wb_r'"):
        rel.isp_oracle(Brightness(), Tiny(), raw, targets, ParameterBox(("wb_r",), (0,), (1,)))
    with pytest.raises(ValueError, match="targets: expected 4"):
        rel.isp_oracle(Brightness(), Tiny(), raw, targets[:2], box)
    with pytest.raises(ValueError, match=r"raw: expected \(N, 1, H, W\)"):
        rel.isp_oracle(Brightness(), Tiny(), raw[:, 0], targets, box)
    with pytest.raises(ValueError, match="metric"):
        rel.isp_oracle(Brightness(), Tiny(), raw, targets, box, metric="iou")
    with pytest.raises(TypeError, match="model"):
        rel.isp_oracle(lambda v: v, Tiny(), raw, targets, box)
    with pytest.raises(ValueError, match="box: index out of range"):
        rel.isp_oracle(Brightness(), Tiny(), raw, targets, ParameterBox(("gain[3]",), (0,), (1,)))


# -- CLI -----------------------------------------------------------------------------------------

def test_cli_analytic(tmp_path, capsys):
    from rawdrift.cli import main

    out = tmp_path / "rel"
    assert main(["reliability", "--preset", "ci", "--out", str(out), "--rebalancers", "none", "smote_gp"]) == 0
    for name in ("table.md", "result.json", "arrays.npz", "map.png", "positives.png"):
        assert (out / name).exists()
    assert "positives found" in capsys.readouterr().out
    assert ReliabilityResult.load(out).config.rebalancers == ("none", "smote_gp")


def test_cli_isp_without_model_says_what_to_do(tmp_path, capsys):
    from rawdrift.cli import main

    assert main(["reliability", "--preset", "ci", "--out", str(tmp_path), "--oracle", "isp"]) == 2
    assert "--model: the isp oracle needs a trained classifier" in capsys.readouterr().err
    assert main(["reliability", "--preset", "ci", "--out", str(tmp_path), "--axis", "gamma"]) == 2
    assert "--axis" in capsys.readouterr().err


def test_cli_parse_axes():
    from rawdrift.drift.reliability_cli import parse_axes

    box = parse_axes(["gamma=1:3", "wb_r=0.5:2"])
    assert box.names == ("gamma", "wb_r") and box.high.tolist() == [3.0, 2.0]
    with pytest.raises(ValueError, match="--axis: expected NAME=LOW:HIGH"):
        parse_axes(["gamma"])


def test_straddle_acquisition_samples_near_the_boundary():
    f, box = analytic_oracle(2)
    a = gp_sampling(f, box, 30, 0.8, n_init=5, rng=0, n_candidates=400, acquisition="straddle")
    b = gp_sampling(f, box, 30, 0.8, n_init=5, rng=0, n_candidates=400)
    # median distance of the sequential points (after the random start) to the level h
    assert np.median(np.abs(a.values[5:] - 0.8)) < np.median(np.abs(b.values[5:] - 0.8))
    with pytest.raises(ValueError, match="acquisition"):
        gp_sampling(f, box, 6, 0.8, acquisition="ei")


def test_isp_metric_agrees_with_rawdrift_metrics():
    from rawdrift import metrics as M

    rng = np.random.default_rng(3)
    t = rng.integers(0, 5, 60)
    t[t == 3] = 4  # class 3 absent from the targets: left out of the per-class figures
    p = rng.integers(0, 5, 60)
    per_class = np.array(M.per_class_accuracy(t, p, 5))
    assert rel.isp_metric(p, t, "worst_class_accuracy") == pytest.approx(np.nanmin(per_class))
    assert rel.isp_metric(p, t, "balanced_accuracy") == pytest.approx(np.nanmean(per_class))
    assert rel.isp_metric(p, t, "accuracy") == pytest.approx((p == t).mean())
    assert rel.isp_metric(p, t, "macro_f1") == pytest.approx(M.macro_f1(t, p, 5))
    assert set(rel.ISP_METRICS) >= {"balanced_accuracy", "worst_class_accuracy", "macro_f1"}


# -- pluggable metrics, crop, normalisation ------------------------------------------------------

@pytest.mark.parametrize("metric", rel.ISP_METRICS)
def test_isp_metric_is_rawdrift_metrics(metric):
    from rawdrift.metrics import classification_metrics as task_metrics

    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 4, 40), rng.integers(0, 4, 40)
    assert rel.isp_metric(p, t, metric) == pytest.approx(task_metrics(t, p)[metric])
    assert rel.isp_metric(p, t, metric, n_classes=9) == pytest.approx(task_metrics(t, p, 9)[metric])
    with pytest.raises(ValueError, match="pred: expected 40 predictions"):
        rel.isp_metric(p[:3], t, metric)


def test_isp_oracle_crop_shows_the_model_the_centre():
    from rawdrift.isp.camera import RAW_DRONE

    seen = []

    class Spy(torch.nn.Module):
        def forward(self, v):
            seen.append(tuple(v.shape))
            return Brightness()(v)

    box = ParameterBox(("gamma",), (1.0,), (3.0,))
    rel.isp_oracle(Spy(), RAW_DRONE, _raw(4, 12), np.zeros(4, int), box, crop=6)(np.array([[2.2]]))
    assert seen == [(4, 3, 6, 6)]
    with pytest.raises(ValueError, match="crop: expected at most 12"):
        rel.isp_oracle(Spy(), RAW_DRONE, _raw(4, 12), np.zeros(4, int), box, crop=14)


def test_with_normalization():
    net = torch.nn.Conv2d(3, 2, 1)
    wrapped = rel.with_normalization(net, (0.5, 0.4, 0.3), (0.1, 0.2, 0.3))
    v = torch.rand(2, 3, 4, 4)
    mean, std = torch.tensor([0.5, 0.4, 0.3]).reshape(1, 3, 1, 1), torch.tensor([0.1, 0.2, 0.3]).reshape(1, 3, 1, 1)
    torch.testing.assert_close(wrapped(v), net((v - mean) / std))
    with pytest.raises(ValueError, match="mean, std: expected 3 values"):
        rel.with_normalization(net, (0.5,), (0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="std: expected positive"):
        rel.with_normalization(net, (0.5, 0.4, 0.3), (0.1, 0.0, 0.3))
    with pytest.raises(TypeError, match="model"):
        rel.with_normalization(lambda v: v, (0.5, 0.4, 0.3), (0.1, 0.2, 0.3))


def test_memo_oracle_evaluates_each_point_once():
    seen = []

    def f(C):
        seen.append(len(C))
        return C.sum(axis=1)

    m = rel.MemoOracle(f)
    assert m(np.array([[0.0, 1.0], [2.0, 3.0], [0.0, 1.0]])).tolist() == [1.0, 5.0, 1.0]
    assert m(np.array([[2.0, 3.0], [4.0, 4.0]])).tolist() == [5.0, 8.0]
    assert seen == [2, 1] and m.calls == 3
    with pytest.raises(ValueError, match=r"C: expected an array \(n, d\)"):
        m(np.zeros(3))
    with pytest.raises(TypeError, match="f: expected a callable"):
        rel.MemoOracle(3)


def test_default_point():
    from rawdrift.isp.camera import RAW_DRONE
    from rawdrift.isp.pipeline import Pipeline

    pipe = Pipeline.parametrized(RAW_DRONE)
    box = ParameterBox(("exposure", "gamma", "blur_sigma", "white_balance.wb[0]"), (0, 1, 0, 0), (2, 3, 2, 4))
    np.testing.assert_allclose(rel.default_point(box, pipe), [1.0, 2.2, 0.5, RAW_DRONE.white_balance[0]], rtol=1e-6)
    assert rel.default_point(ParameterBox(("color_correction.M",), (0,), (1,)), pipe) is None


# -- the trained model's oracle, cached runs, sweeps ------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("oracle")
    return rel.trained_isp_oracle("synthetic-microscopy", preset="ci", out=out, epochs=1, n_verify=8), out


def test_trained_isp_oracle_trains_once_and_scores_views(trained):
    oracle, out = trained
    assert (out / "model.pt").exists() and (out / "train.json").exists() and not (out / "checkpoint").exists()
    assert oracle.box == rel.CHAPTER_BOX and oracle.info["n_verify"] == 8 and oracle.info["size"] == 32
    np.testing.assert_allclose(oracle.default_point, [1.0, 2.2], rtol=1e-6)
    assert 0 <= oracle.clean <= 1 and oracle.calls == 1
    assert "ci" in oracle.label and "verify8" in oracle.label and oracle.label.endswith("accuracy")
    v = oracle(np.stack([np.array([0.1, 1.0]), oracle.default_point]))
    assert v[1] == oracle.clean and oracle.calls == 2  # the default point is remembered
    mtime = (out / "model.pt").stat().st_mtime_ns
    again = rel.trained_isp_oracle("synthetic-microscopy", preset="ci", out=out, epochs=1, n_verify=8,
                                   metric="worst_class_accuracy")
    assert (out / "model.pt").stat().st_mtime_ns == mtime  # loaded, not retrained
    assert again.clean <= oracle.clean + 1e-12  # the worst class is never above the mean
    assert again.label != oracle.label


def test_trained_isp_oracle_errors(tmp_path):
    with pytest.raises(ValueError, match="metric"):
        rel.trained_isp_oracle(preset="ci", out=tmp_path, metric="iou")
    with pytest.raises(ValueError, match="n_verify"):
        rel.trained_isp_oracle(preset="ci", out=tmp_path, n_verify=0)
    with pytest.raises(TypeError, match="box"):
        rel.trained_isp_oracle(preset="ci", out=tmp_path, box={"names": ["gamma"]})
    with pytest.raises(ValueError, match="dataset: the oracle scores classifiers"):
        rel.trained_isp_oracle("synthetic-drone", preset="ci", out=tmp_path)


def test_cli_isp_with_a_trained_model(trained, tmp_path, capsys):
    from rawdrift.cli import main

    _, out = trained
    args = ["reliability", "--preset", "ci", "--out", str(tmp_path / "r"), "--oracle", "isp", "--model",
            str(out / "model.pt"), "--axis", "exposure=0.1:2", "--axis", "gamma=1:4", "--n-verify", "8",
            "--points-per-dim", "4", "--budgets", "6", "--rebalancers", "none", "--classifiers", "decision_tree",
            "--metric", "balanced_accuracy", "--device", "cpu"]
    assert main(args) == 0
    res = ReliabilityResult.load(tmp_path / "r")
    assert res.config.metric == "balanced_accuracy" and len(res.truth) == 16
    assert ((0 <= res.truth) & (res.truth <= 1)).all()


def _counting(f):
    calls = []

    def g(C):
        calls.append(len(C))
        return f(C)

    return g, calls


def _tiny(tmp_path, **kw):
    base = dict(preset="ci", dims=2, points_per_dim=5, budgets=(6, 10), seeds=(0,), rebalancers=("none", "smote_gp"),
                classifiers=("decision_tree", "logistic_regression"), n_candidates=100, oracle="toy",
                out=tmp_path)
    base.update(kw)
    return ReliabilityConfig(**base)


def test_cached_reliability_reuses_and_invalidates(tmp_path):
    f, box = analytic_oracle(2)
    g, calls = _counting(f)
    cfg = _tiny(tmp_path, box=box)
    first = rel.cached_reliability(cfg, g)
    n = sum(calls)
    assert n > 0
    again = rel.cached_reliability(cfg, g)
    assert sum(calls) == n and again.rows == first.rows  # loaded from disk
    other = rel.cached_reliability(replace_config(cfg, budgets=(6,)), g)
    assert sum(calls) > n and {r["budget"] for r in other.rows} == {6}
    # another oracle label: the cached ground truth is discarded, not reused
    shifted = rel.cached_reliability(replace_config(cfg, budgets=(6,), oracle="shifted"), lambda C: f(C) - 0.1)
    np.testing.assert_allclose(shifted.truth, first.truth - 0.1)
    with pytest.raises(TypeError, match="config"):
        rel.cached_reliability({"preset": "ci"})


def replace_config(cfg, **kw):
    from dataclasses import replace

    return replace(cfg, **kw)


def test_reliability_sweep_shares_grid_and_random_points(tmp_path):
    f, box = analytic_oracle(2)
    g, calls = _counting(f)
    memo = rel.MemoOracle(g)
    runs = rel.reliability_sweep(_tiny(tmp_path, box=box), memo, [0.8, 0.6, 0.8])
    assert sorted(runs) == [0.6, 0.8] and all(r.config.h == h for h, r in runs.items())
    assert (tmp_path / "h=0.6" / "result.json").exists() and (tmp_path / "h=0.8" / "result.json").exists()
    np.testing.assert_array_equal(runs[0.6].truth, runs[0.8].truth)
    np.testing.assert_array_equal(runs[0.6].samples["random/0"].points, runs[0.8].samples["random/0"].points)
    # grid (25) and random points (10) once; GP points per threshold (10 each, minus any repeats)
    assert memo.calls <= 25 + 10 + 2 * 10
    with pytest.raises(ValueError, match="hs: expected at least one"):
        rel.reliability_sweep(_tiny(tmp_path, box=box), memo, [])
    with pytest.raises(ValueError, match="hs"):
        rel.reliability_sweep(_tiny(tmp_path, box=box), memo, [float("nan")])


def test_classifier_table(tmp_path):
    f, box = analytic_oracle(2)
    res = run_reliability(_tiny(None, box=box, seeds=(0, 1)), f)
    table = res.classifier_table()
    assert [(r["sampler"], r["rebalancer"]) for r in table] == [(s, b) for s in ("random", "gp")
                                                                for b in ("none", "smote_gp")]
    for r in table:
        f1s = [x["f1"] for x in res.rows if x["budget"] == 10 and x["sampler"] == r["sampler"]
               and x["rebalancer"] == r["rebalancer"] and x["classifier"] == "decision_tree"]
        assert r["decision_tree"] == pytest.approx(np.mean(f1s))
        assert r["mean"] == pytest.approx((r["decision_tree"] + r["logistic_regression"]) / 2)
    assert len(res.classifier_table(6)) == 4
    with pytest.raises(ValueError, match="budget"):
        res.classifier_table(7)


def test_reliability_figure(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    f, box = analytic_oracle(2)
    runs = rel.reliability_sweep(_tiny(tmp_path, box=box), rel.MemoOracle(f), [0.7, 0.8, 0.9])
    fig = rel.reliability_figure(runs, mark=(1.0, 2.2))
    assert len(fig.axes) == 4  # truth + colour bar + random + gp
    assert "h = 0.8" in fig.axes[0].get_title() and "10 points" in fig.axes[2].get_title()
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float)
    assert pixels.std() > 10  # not blank
    plt.close(fig)
    fig = rel.reliability_figure(runs[0.7], budget=6, rebalancer="none", classifier="decision_tree")
    assert "h = 0.7" in fig.axes[0].get_title() and "6 points" in fig.axes[2].get_title()
    plt.close(fig)
    with pytest.raises(ValueError, match="h: expected one of"):
        rel.reliability_figure(runs, h=0.75)
    with pytest.raises(ValueError, match="budget"):
        rel.reliability_figure(runs, budget=7)
    with pytest.raises(TypeError, match="runs"):
        rel.reliability_figure({})
