"""Drift adjustment: frozen vs learned ISP vs raw input, on tiny synthetic datasets."""

import json

import numpy as np
import pytest
import torch

from rawdrift.cli import main as cli_main
from rawdrift.drift import adjustment as A
from rawdrift.drift.adjustment import (
    AdjustmentConfig, AdjustmentResult, PackedRaw, build_pipeline, curve_gap, pack_mosaic, parameter_change,
    run_adjustment,
)
from rawdrift.isp import Pipeline
from rawdrift.isp.camera import RAW_MICROSCOPY

TINY = dict(preset="ci", n=24, folds=2, epochs=2, batch_size=8, size=32, device="cpu", progress=False, n_samples=2)


@pytest.fixture(scope="module")
def cls_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("adjust-cls")
    cfg = AdjustmentConfig(dataset="synthetic-microscopy", eval_every=1, out=str(out), **TINY)
    return cfg, run_adjustment(cfg)


def test_classification_end_to_end(cls_run):
    cfg, res = cls_run
    out = cfg.out
    assert res.task == "classification" and res.metric == "accuracy"
    assert res.modes == ["frozen", "learned", "raw"] and res.intensities == [0.001, 1.0]
    I, M, F, T = res.values.shape
    assert (I, M, F) == (2, 3, 2) and res.steps.shape == res.values.shape and T >= 3
    assert np.all(np.diff(res.steps, axis=-1) > 0)  # steps strictly increase
    assert np.all(res.steps[..., 0] == 1)  # eval_every=1: validation after every step
    assert np.all((res.values >= 0) & (res.values <= 1)) and res.final.shape == (2, 3, 2)
    assert res.samples_frozen.shape == res.samples_learned.shape == (2, 2, 32, 32, 3)
    for name in ("result.json", "curves.npz", "summary.md", "curves.csv", "adjustment.png",
                 "adjustment_0.001.png", "adjustment_1.png"):
        assert (A.Path(out) / name).exists(), name
    assert len(list(A.Path(out).rglob("cell.json"))) == 12 and not list(A.Path(out).rglob("checkpoint.pt"))
    back = AdjustmentResult.load(out)
    np.testing.assert_array_equal(back.values, res.values)
    np.testing.assert_array_equal(back.samples_learned, res.samples_learned)
    assert back.to_markdown() == res.to_markdown() and "Gap learned - frozen" in back.to_markdown()
    steps, mean, std = back.band(0.001, "learned")
    assert steps.shape == mean.shape == std.shape == (T,)


def test_resume_does_not_retrain(cls_run, monkeypatch):
    cfg, res = cls_run

    def no_training(*a, **k):
        raise AssertionError("fit was called on a finished study")

    monkeypatch.setattr("rawdrift.train.fit", no_training)
    again = run_adjustment(cfg)
    np.testing.assert_array_equal(again.values, res.values)
    np.testing.assert_array_equal(again.steps, res.steps)


def test_learned_moves_parameters_frozen_does_not(cls_run):
    cfg, res = cls_run
    defaults = {k: np.asarray(v) for k, v in res.defaults.items()}
    fresh = Pipeline.parametrized(RAW_MICROSCOPY).state_dict()
    for x in ("0.001", "1"):
        for f in range(2):
            frozen_dir = A.Path(cfg.out) / "cells" / f"intensity{x}" / "frozen" / f"fold{f}"
            frozen = json.loads((frozen_dir / "cell.json").read_text())["params"]
            for g, v in frozen.items():
                assert np.array_equal(np.asarray(v), defaults[g]), (x, f, g)  # exact equality
            state = torch.load(frozen_dir / "pipeline.pt", weights_only=True)
            camera_state = Pipeline.parametrized(_camera()).state_dict()
            assert all(torch.equal(state[k], camera_state[k]) for k in state)
            learned = res.params[x][f]
            moved = [g for g in defaults if not np.array_equal(np.asarray(learned[g]), defaults[g])]
            assert {"bl", "wb", "cc", "gc"} <= set(moved), moved
        change = res.parameter_change(float(x))
        assert all(d["abs"] > 0 for d in change.values())
    assert set(fresh) == set(state)


def _camera():
    from rawdrift.data import get_dataset

    return get_dataset("synthetic-microscopy", preset="ci", n=24).camera


def test_raw_mode_has_no_isp(cls_run):
    cfg, res = cls_run
    pipe = build_pipeline("raw", RAW_MICROSCOPY, torch.rand(4, 1, 8, 8))
    assert isinstance(pipe, PackedRaw) and not isinstance(pipe, Pipeline)
    assert list(pipe.parameters()) == []
    raw_dir = A.Path(cfg.out) / "cells" / "intensity1" / "raw" / "fold0"
    assert "params" not in json.loads((raw_dir / "cell.json").read_text())
    assert not (raw_dir / "pipeline.pt").exists()
    # the input is the mosaic's own samples, standardised: nothing else
    raw = torch.rand(2, 1, 4, 6)
    p = PackedRaw(mean=(0.1, 0.2, 0.3), std=(2.0, 4.0, 8.0))
    y = p(raw)
    r, g1, g2, b = raw[..., 0::2, 0::2], raw[..., 0::2, 1::2], raw[..., 1::2, 0::2], raw[..., 1::2, 1::2]
    torch.testing.assert_close(y[:, 0:1, 1::2, 0::2], (r - 0.1) / 2.0)
    torch.testing.assert_close(y[:, 1:2, 0::2, 1::2], ((g1 + g2) / 2 - 0.2) / 4.0)
    torch.testing.assert_close(y[:, 2:3, 1::2, 1::2], (b - 0.3) / 8.0)


def test_pack_mosaic_follows_the_pattern():
    raw = torch.tensor([[[[1.0, 2.0], [4.0, 8.0]]]])
    assert pack_mosaic(raw, "BGGR")[0, :, 1, 1].tolist() == [8.0, 3.0, 1.0]
    with pytest.raises(ValueError, match="raw"):
        pack_mosaic(torch.rand(1, 1, 3, 4))


def test_segmentation_end_to_end_via_cli(tmp_path, capsys):
    out = tmp_path / "seg"
    rc = cli_main(["adjustment", "--dataset", "synthetic-drone", "--preset", "ci", "--out", str(out), "--n", "12",
                   "--folds", "2", "--epochs", "2", "--batch-size", "4", "--size", "32", "--intensities", "0.01",
                   "--device", "cpu", "--quiet"])
    assert rc == 0 and "Drift adjustment" in capsys.readouterr().out
    res = AdjustmentResult.load(out)
    assert res.task == "segmentation" and res.metric == "iou"
    assert res.values.shape[:3] == (1, 3, 2) and res.values.shape[-1] == 2  # one point per epoch
    assert np.all(res.steps[..., 1] > res.steps[..., 0])
    train = json.loads((out / "cells" / "intensity0.01" / "learned" / "fold0" / "cell.json").read_text())
    assert train["steps"] == res.steps[0, 1, 0].tolist()
    assert (out / "adjustment.png").exists()
    assert res.final_per_class is None and res.metric_names() == ["iou", "dice"]
    assert "| mode | final iou | final dice |" in res.to_markdown()


# ------------------------------------------------------------------ gap and parameter bookkeeping


def test_curve_gap_on_hand_made_curves():
    steps = [5, 10, 15, 20]
    learned = [[0.5, 0.6, 0.9, 0.8], [0.5, 0.8, 0.9, 0.8]]  # mean 0.5 0.7 0.9 0.8
    frozen = [[0.5, 0.3, 0.7, 0.8], [0.3, 0.3, 0.7, 0.6]]   # mean 0.4 0.3 0.7 0.7
    g = curve_gap(steps, learned, frozen)
    np.testing.assert_allclose(g["gap"], [0.1, 0.4, 0.2, 0.1])
    assert g["max_gap"] == pytest.approx(0.4) and g["at_step"] == 10
    assert g["mean_gap"] == pytest.approx(0.2)
    assert g["std_learned"] == pytest.approx(np.mean([0, 0.1, 0, 0]))
    assert g["std_frozen"] == pytest.approx(np.mean([0.1, 0, 0, 0.1]))
    neg = curve_gap([1, 2], [0.2, 0.1], [0.3, 0.4])  # learned worse everywhere: the max gap is negative
    assert neg["max_gap"] == pytest.approx(-0.1) and neg["at_step"] == 1


def test_parameter_change_by_group():
    d = parameter_change({"bl": [0.0, 0.0], "gc": [3.0]}, {"bl": [0.0, 0.0], "gc": [2.0]})
    assert d["bl"]["abs"] == 0 and np.isnan(d["bl"]["rel"])
    assert d["gc"] == {"abs": 1.0, "rel": 0.5}


# ------------------------------------------------------------------ errors name their argument


@pytest.mark.parametrize("kw, name", [
    (dict(intensities=(0.0, 1.0)), "intensities"),
    (dict(intensities=()), "intensities"),
    (dict(intensities=(1.0, 1.0)), "intensities"),
    (dict(modes=("frozen", "tuned")), "modes"),
    (dict(modes="frozen"), "modes"),
    (dict(folds=1), "folds"),
    (dict(epochs=0), "epochs"),
    (dict(pipeline_lr=0.0), "pipeline_lr"),
    (dict(eval_every=0), "eval_every"),
    (dict(dataset="cifar"), "dataset"),
    (dict(size=33), "size"),
])
def test_config_errors_name_the_argument(kw, name):
    with pytest.raises((ValueError, TypeError), match=name):
        AdjustmentConfig(preset="ci", **kw).resolved()


def test_curve_gap_errors():
    with pytest.raises(ValueError, match="frozen"):
        curve_gap([1, 2, 3], [[0.1, 0.2, 0.3]], [[0.1, 0.2]])
    with pytest.raises(ValueError, match="steps"):
        curve_gap([], [], [])
    with pytest.raises(ValueError, match="theta"):
        parameter_change({}, {"bl": [0.0]})


def test_result_errors(cls_run, tmp_path):
    _, res = cls_run
    with pytest.raises(ValueError, match="intensity"):
        res.band(0.5, "frozen")
    with pytest.raises(ValueError, match="mode"):
        res.band(1.0, "tuned")
    with pytest.raises(FileNotFoundError, match="out"):
        AdjustmentResult.load(tmp_path / "nothing")
    with pytest.raises(ValueError, match="mode"):
        build_pipeline("isp", RAW_MICROSCOPY)


def test_eval_every_longer_than_training(tmp_path):
    cfg = AdjustmentConfig(dataset="synthetic-microscopy", modes=("frozen",), intensities=(1.0,), eval_every=1000,
                           out=str(tmp_path), **{**TINY, "epochs": 1})
    with pytest.raises(ValueError, match="eval_every"):
        run_adjustment(cfg)


# -- class-wise metrics (issue #12) ---------------------------------------------------------


def test_classwise_final_metrics_equal_direct_computation(cls_run):
    cfg, res = cls_run
    pc = res.final_per_class
    assert pc.shape == (2, 3, 2, 9) and res.classes[0] == "BAS"
    np.testing.assert_allclose(res.final_metric("worst_class_accuracy"), np.nanmin(pc, -1))
    np.testing.assert_allclose(res.final_metric("class_range"), np.nanmax(pc, -1) - np.nanmin(pc, -1))
    np.testing.assert_allclose(res.final_metric("balanced_accuracy"), np.nanmean(pc, -1))
    # each cell's stored final metrics agree with its per-class vector
    cell = json.loads((A.Path(cfg.out) / "cells" / "intensity1" / "learned" / "fold1" / "cell.json").read_text())
    np.testing.assert_allclose(cell["final_per_class"], pc[1, 1, 1])
    assert cell["final"]["worst_class_accuracy"] == pytest.approx(np.nanmin(pc[1, 1, 1]))
    md = res.to_markdown()
    assert "| mode | final accuracy | final balanced accuracy | final worst class accuracy | best accuracy" in md
    back = AdjustmentResult.load(cfg.out)
    np.testing.assert_array_equal(back.final_per_class, pc)
    np.testing.assert_array_equal(back.final_metric("macro_f1"), res.final_metric("macro_f1"))
    with pytest.raises(ValueError, match="name: expected one of"):
        res.final_metric("iou")


def test_cells_cached_without_per_class_still_load(cls_run, tmp_path, monkeypatch):
    cfg, res = cls_run
    import dataclasses
    import shutil

    copy_dir = tmp_path / "copy"
    shutil.copytree(cfg.out, copy_dir)
    old = copy_dir / "cells" / "intensity0.001" / "raw" / "fold0" / "cell.json"
    rec = json.loads(old.read_text())
    rec.pop("final_per_class")  # as written before per-class vectors were recorded
    old.write_text(json.dumps(rec))
    monkeypatch.setattr("rawdrift.train.fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    again = run_adjustment(dataclasses.replace(cfg, out=str(copy_dir)))
    worst = again.final_metric("worst_class_accuracy")
    assert np.isnan(worst[0, 2, 0]) and np.isfinite(worst[1]).all()
    md = again.to_markdown()
    assert " n/a |" not in md and "leave out 1 cell(s) cached before" in md  # the other fold still gives a value
    assert "cached before" not in res.to_markdown()
