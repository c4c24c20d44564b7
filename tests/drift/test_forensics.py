"""Drift forensics: tiny end-to-end sweeps (both tasks), resume, eq. (6) bookkeeping, constraints, signature."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from rawdrift.cli import main
from rawdrift.drift import forensics as FX
from rawdrift.drift.forensics import (ForensicsConfig, ForensicSignature, ForensicsResult, group_parameters,
                                      run_forensics, signature)
from rawdrift.isp import Pipeline
from rawdrift.isp.camera import RAW_MICROSCOPY
from rawdrift.train import normalization_for

TINY = dict(preset="ci", n=24, groups=("bl", "all"), lambdas=(1e3, 0.0), epochs=1, model_epochs=1, lr=0.05,
            n_samples=2, progress=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("forensics")
    return run_forensics(ForensicsConfig(out=str(out), **TINY)), out


def test_classification_end_to_end(tiny_run):
    res, out = tiny_run
    assert res.task == "classification" and res.metric == "accuracy"
    assert res.table().shape == (2, 2)
    for r in res.records:
        for k in ("accuracy", "balanced_accuracy", "macro_f1"):
            assert 0 <= r[k] <= 1
        assert r["l2"] >= 0 and r["rms"] >= 0 and r["linf"] >= r["rms"]
        assert set(r["theta"]) == set(group_parameters(Pipeline.parametrized(RAW_MICROSCOPY), r["group"]))
    assert set(res.record("bl", 0)["theta"]) == {"black_level.bl"}
    assert res.samples["clean"].shape == (2, 32, 32, 3) and res.samples["all|0"].dtype == np.uint8
    for f in ("result.json", "summary.md", "sweep.csv", "samples.npz", "figure6.png", "samples.png",
              "model/model.pt"):
        assert (out / f).stat().st_size > 0
    assert not list(out.rglob("checkpoint.pt"))
    assert "Drift forensics" in res.to_markdown() and "lambda=0" in res.to_markdown()
    again = ForensicsResult.load(out)
    np.testing.assert_array_equal(again.table("l2"), res.table("l2"))
    np.testing.assert_array_equal(again.samples["bl|1000"], res.samples["bl|1000"])


def test_explorer(tiny_run):
    import matplotlib

    matplotlib.use("Agg")
    res, _ = tiny_run
    fig = FX.explorer_figure(res)
    assert "lambda=0" in fig.axes[1].get_title()
    box = FX.forensics_explorer(res)
    group, lam = box.children[0].children
    assert group.value == "all" and lam.value == 0.0
    lam.value = 1000.0  # redraws without error
    with pytest.raises(ValueError, match="lam: expected one of"):
        FX.explorer_figure(res, "bl", 5.0)
    with pytest.raises(ValueError, match="group: expected one of"):
        FX.explorer_figure(res, "dn")


def test_rerun_reuses_model_and_cells(tiny_run, monkeypatch):
    res, out = tiny_run
    import rawdrift.train as train

    monkeypatch.setattr(train, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    monkeypatch.setattr(FX, "search", lambda *a, **k: (_ for _ in ()).throw(AssertionError("searched again")))
    rerun = run_forensics(ForensicsConfig(out=str(out), **TINY))
    np.testing.assert_array_equal(rerun.table(), res.table())
    assert rerun.clean == res.clean


def test_changed_settings_recompute_cells(tiny_run, tmp_path):
    res, out = tiny_run
    import shutil

    copy_dir = tmp_path / "copy"
    shutil.copytree(out, copy_dir)
    cell = copy_dir / "cells" / "l2_penalty" / "bl" / "lambda=0.json"
    rec = json.loads(cell.read_text())
    rec["fingerprint"]["lr"] = 123.0  # as if written by another run
    rec["accuracy"] = -1.0
    cell.write_text(json.dumps(rec))
    rerun = run_forensics(ForensicsConfig(out=str(copy_dir), **TINY))
    assert rerun.record("bl", 0)["accuracy"] == res.record("bl", 0)["accuracy"]


@pytest.mark.parametrize("constraint", ["box", "linf_view"])
def test_constraints_end_to_end_with_a_reused_model(tiny_run, tmp_path, constraint, monkeypatch):
    res, out = tiny_run
    import rawdrift.train as train

    monkeypatch.setattr(train, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    eps = 0.02
    cfg = ForensicsConfig(out=str(tmp_path), model_path=str(out / "model" / "model.pt"), constraint=constraint,
                          epsilon=eps, **{**TINY, "groups": ("all",), "lambdas": (0.0,)})
    r = run_forensics(cfg).record("all", 0.0)
    assert r["accuracy"] is not None and np.isfinite(r["loss"])
    assert (tmp_path / "cells" / f"{constraint}-eps0.02" / "all" / "lambda=0.json").exists()
    if constraint == "linf_view":
        assert 0 < r["linf"] <= eps
    else:
        for n, v in r["theta"].items():
            d0 = torch.tensor(res.default_theta[n])
            half = eps * max(float(d0.abs().max()), FX.BOX_FLOOR)
            assert float((torch.tensor(v) - d0).abs().max()) <= half * (1 + 1e-5) + 1e-7, n


def test_segmentation_cli(tmp_path, capsys):
    rc = main(["forensics", "--dataset", "synthetic-drone", "--preset", "ci", "--out", str(tmp_path), "--n", "8",
               "--groups", "dn", "--lambdas", "1", "--epochs", "1", "--model-epochs", "1", "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "iou" in text and "Forensic signature" in text
    res = ForensicsResult.load(tmp_path)
    assert res.task == "segmentation" and 0 <= res.record("dn", 1)["iou"] <= 1 and "dice" in res.clean
    sig = ForensicSignature.load(tmp_path / "signature.json")
    assert sig.metric == "iou" and (tmp_path / "signature.md").exists()


# ----------------------------------------------------------------------------- eq. (6) on a toy setup


@pytest.fixture(scope="module")
def toy():
    """A frozen tiny classifier and one fold of synthetic raw data (no task-model training needed)."""
    from rawdrift.data import get_dataset

    ds = get_dataset("synthetic-microscopy", preset="ci", n=24)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 9))
    with torch.no_grad():
        model[-1].weight.mul_(5.0)
    norm = normalization_for("microscopy")
    task = FX._Task(model, "classification", norm, torch.device("cpu"))
    default = Pipeline.parametrized(ds.camera).freeze()
    raw = ds.raw_tensor()
    y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
    data = FX._Data(raw, y, 32, default, 8)
    return task, default, data


def _search(toy, group, lam, **kw):
    task, default, data = toy
    cfg = ForensicsConfig(preset="ci", epochs=kw.pop("epochs", 3), lr=kw.pop("lr", 0.02), batch_size=8,
                          **kw).resolved()
    return FX.search(task, default, data, group, lam, cfg, torch.Generator().manual_seed(0))


def test_crop_with_margin_equals_full_frame(toy):
    _, default, data = toy
    from rawdrift.drift.views import render_views

    full = render_views(data.raw, default)  # the margin-cropped raw, processed whole
    my, mx = data.margin
    assert my >= 4 and mx >= 4
    torch.testing.assert_close(data.views, full[..., my : my + 32, mx : mx + 32])


def test_only_the_chosen_group_changes(toy):
    _, default, _ = toy
    pipe, history = _search(toy, "wb", 0.0, epochs=1)
    d0 = dict(default.named_parameters())
    changed = group_parameters(pipe, "wb")
    for n, p in pipe.named_parameters():
        if n in changed:
            assert not torch.equal(p, d0[n])
        else:
            assert torch.equal(p, d0[n]), n
    assert not any(p.requires_grad for p in pipe.parameters())
    assert len(history) == 1


def test_lambda_zero_increases_the_loss_and_huge_lambda_stays_at_defaults(toy):
    task, default, data = toy
    clean, _ = FX._evaluate(task, default, data, 9)
    free, _ = _search(toy, "all", 0.0)
    tied, _ = _search(toy, "all", 1e7, lr=1e-3, epochs=6)
    ev_free, _ = FX._evaluate(task, free, data, 9)
    ev_tied, _ = FX._evaluate(task, tied, data, 9)
    assert ev_free["loss"] > clean["loss"] + 0.05
    assert ev_free["rms"] > 0.01
    assert ev_tied["rms"] < 0.05 * ev_free["rms"]
    assert ev_tied["accuracy"] == clean["accuracy"]
    assert abs(ev_tied["loss"] - clean["loss"]) < 0.1 * (ev_free["loss"] - clean["loss"])


def test_box_constraint_keeps_parameters_in_bounds(toy):
    _, default, _ = toy
    eps = 0.02
    pipe, _ = _search(toy, "all", 0.0, constraint="box", epsilon=eps, lr=0.05)
    d0 = dict(default.named_parameters())
    moved = False
    for n, p in pipe.named_parameters():
        half = eps * max(float(d0[n].abs().max()), FX.BOX_FLOOR)
        assert float((p - d0[n]).abs().max()) <= half * (1 + 1e-5) + 1e-7, n
        moved |= float((p - d0[n]).abs().max()) > 0.5 * half
    assert moved  # the box was active, not trivially satisfied


def test_linf_view_budget_holds(toy):
    task, default, data = toy
    eps = 0.02
    free, _ = _search(toy, "all", 0.0, lr=0.05, epochs=1)
    assert FX._max_diff_all(free, (data,)) > eps  # unconstrained, the budget would be broken
    pipe, _ = _search(toy, "all", 0.0, constraint="linf_view", epsilon=eps, lr=0.05, epochs=1)
    params = group_parameters(pipe, "all")
    theta0 = {n: p.detach().clone() for n, p in group_parameters(default, "all").items()}
    t = FX._shrink_to_budget(params, theta0, lambda: FX._max_diff_all(pipe, (data,)), eps)
    assert 0 <= t <= 1
    assert FX._max_diff_all(pipe, (data,)) <= eps
    ev, _ = FX._evaluate(task, pipe, data, 9)
    assert ev["linf"] <= eps and ev["rms"] > 0


# ----------------------------------------------------------------------------- signature


def _rec(group, lam, acc, l2):
    return {"group": group, "lambda": lam, "accuracy": acc, "l2": l2, "rms": l2 / 100, "theta_change": 2 * l2,
            "theta": {"p": [l2]}, "loss": 1.0, "linf": l2}


def _hand_made():
    recs = [_rec("bl", 10.0, 0.89, 0.5), _rec("bl", 1.0, 0.86, 2.0), _rec("bl", 0.0, 0.40, 9.0),
            _rec("dn", 10.0, 0.90, 3.0), _rec("dn", 0.0, 0.88, 30.0),
            _rec("all", 10.0, 0.70, 1.0), _rec("all", 0.0, 0.10, 50.0)]
    return ForensicsResult({"dataset": "toy", "constraint": "l2_penalty", "preset": "ci", "epochs": 1},
                           "classification", "accuracy", ["bl", "dn", "all"], [10.0, 1.0, 0.0], {"accuracy": 0.9},
                           {}, recs)


def test_signature_logic(tmp_path):
    sig = signature(_hand_made(), tolerance=0.05)
    bl, dn, al = (sig.groups[g] for g in ("bl", "dn", "all"))
    assert bl["safe"]["l2"] == 2.0 and bl["safe"]["lambda"] == 1.0 and bl["safe"]["theta_change"] == 4.0
    assert [a["metric"] for a in bl["avoid"]] == [0.40] and bl["avoid"][0]["theta"] == {"p": [9.0]}
    assert dn["safe"]["l2"] == 30.0 and dn["avoid"] == []
    assert al["safe"] is None and [a["metric"] for a in al["avoid"]] == [0.10, 0.70]
    strict = signature(_hand_made(), tolerance=0.0)
    assert strict.groups["dn"]["safe"]["l2"] == 3.0 and len(strict.groups["dn"]["avoid"]) == 1
    text = sig.to_markdown()
    assert "none found" in text and "lambda=0" in text
    sig.save(tmp_path / "sig.json")
    assert ForensicSignature.load(tmp_path / "sig.json") == sig
    assert (tmp_path / "sig.md").read_text().startswith("# Forensic signature")


def test_result_tables_and_plots():
    import matplotlib

    matplotlib.use("Agg")
    res = _hand_made()
    with pytest.raises(KeyError):
        res.table()  # "dn" has no lambda=1 record
    res.records.append(_rec("dn", 1.0, 0.9, 1.0))
    res.records.append(_rec("all", 1.0, 0.5, 5.0))
    np.testing.assert_allclose(res.drops()["all"], 0.8)
    fig = res.plot_figure6()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert "0" in labels  # lambda = 0 drawn at the left edge of the log axis
    with pytest.raises(ValueError, match="samples"):
        res.plot_samples("bl")


def test_errors():
    with pytest.raises(ValueError, match="groups: expected one of"):
        ForensicsConfig(groups=("bl", "xx")).resolved()
    with pytest.raises(ValueError, match="lambdas: expected finite values >= 0"):
        ForensicsConfig(lambdas=(1.0, -1.0)).resolved()
    with pytest.raises(ValueError, match="constraint: expected one of"):
        ForensicsConfig(constraint="l1").resolved()
    with pytest.raises(ValueError, match="epsilon: expected a value > 0"):
        ForensicsConfig(constraint="box", epsilon=0.0).resolved()
    with pytest.raises(ValueError, match="lr: expected a value > 0"):
        ForensicsConfig(lr=0.0).resolved()
    with pytest.raises(ValueError, match="dataset: expected one of"):
        ForensicsConfig(dataset="imagenet").resolved()
    with pytest.raises(ValueError, match="group: expected one of"):
        group_parameters(Pipeline.parametrized(RAW_MICROSCOPY), "iso")
    with pytest.raises(ValueError, match="tolerance"):
        signature(_hand_made(), tolerance=-1)
    with pytest.raises(TypeError, match="result: expected a ForensicsResult"):
        signature({"records": []})


# -- class-wise metrics (issue #12) ---------------------------------------------------------


def test_classwise_records_equal_direct_computation(tiny_run):
    res, out = tiny_run
    assert res.classes == ["BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC"]
    pc = res.table("per_class_accuracy")
    assert pc.shape == (2, 2, 9)
    np.testing.assert_allclose(res.table("worst_class_accuracy"), np.nanmin(pc, -1))
    np.testing.assert_allclose(res.table("balanced_accuracy"), np.nanmean(pc, -1))
    np.testing.assert_allclose(res.table("class_range"), np.nanmax(pc, -1) - np.nanmin(pc, -1))
    clean = np.asarray(res.clean["per_class_accuracy"], dtype=float)
    drop = res.table("per_class_drop")
    np.testing.assert_allclose(drop, clean - pc)
    np.testing.assert_allclose(res.table("worst_class_drop"), np.nanmax(clean - pc, -1))
    assert res.clean["worst_class_accuracy"] == np.nanmin(clean)
    md = res.to_markdown()
    assert "Who pays, at lambda=0" in md and "| bl | " in md
    assert "worst_class_accuracy" in (out / "sweep.csv").read_text().splitlines()[0]
    again = ForensicsResult.load(out)
    assert again.classes == res.classes
    np.testing.assert_array_equal(again.table("per_class_drop"), drop)
    with pytest.raises(KeyError, match="key: 'iou' is not in the records"):
        res.table("iou")


def test_class_drop_figure(tiny_run):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res, out = tiny_run
    assert (out / "class_drops.png").stat().st_size > 0
    fig = res.plot_class_drops()
    assert "lambda=0" in fig.axes[0].get_title()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == res.classes
    fig.canvas.draw()
    assert np.asarray(fig.canvas.buffer_rgba())[..., :3].std() > 10
    plt.close(fig)
    with pytest.raises(ValueError, match="lam: expected one of"):
        res.plot_class_drops(5.0)


def test_cells_cached_without_per_class_are_evaluated_again_not_searched(tiny_run, tmp_path, monkeypatch):
    res, out = tiny_run
    import shutil

    copy_dir = tmp_path / "copy"
    shutil.copytree(out, copy_dir)
    cell = copy_dir / "cells" / "l2_penalty" / "all" / "lambda=0.json"
    rec = json.loads(cell.read_text())
    for k in FX.CLASSIFICATION_KEYS[3:]:  # as written before per-class metrics were recorded
        rec.pop(k)
    cell.write_text(json.dumps(rec))
    monkeypatch.setattr(FX, "search", lambda *a, **k: (_ for _ in ()).throw(AssertionError("searched again")))
    rerun = run_forensics(ForensicsConfig(out=str(copy_dir), **TINY))
    np.testing.assert_allclose(rerun.table("per_class_accuracy"), res.table("per_class_accuracy"))
    assert "per_class_accuracy" in json.loads(cell.read_text())
