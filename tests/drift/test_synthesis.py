"""End-to-end drift synthesis on a tiny preset, resume, reload, CLI."""

import json

import numpy as np
import pytest

from rawdrift.cli import main
from rawdrift.drift.synthesis import SynthesisConfig, SynthesisResult, run_synthesis

TINY = dict(preset="ci", n=24, folds=2, epochs=1, train_configs=("bi,s,ga", "ma,u,me"),
            test_configs=("bi,s,ga", "ma,u,me", "me,s,me"), corruptions=("gaussian_noise", "contrast"),
            severities=(1, 3), progress=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return run_synthesis(SynthesisConfig(out=str(out), **TINY)), out


def test_grid_shapes_and_files(tiny_run):
    res, out = tiny_run
    assert res.isp_scores.shape == (2, 3, 2)
    assert res.corruption_scores.shape == (2, 1 + 4, 2)
    assert res.conditions == ["gaussian_noise@1", "contrast@1", "gaussian_noise@3", "contrast@3"]
    assert np.isfinite(res.isp_scores).all() and ((res.isp_scores >= 0) & (res.isp_scores <= 1)).all()
    assert res.per_class.shape == (2, 3, 2, 9)
    for f in ("result.json", "grid.npz", "summary.md", "isp_grid.csv", "corruption_grid.csv", "grids.png"):
        assert (out / f).stat().st_size > 0
    # finished cells keep their model but not the (4x larger) resume checkpoint
    assert len(list(out.glob("models/*/fold*/model.pt"))) == 4 and not list(out.rglob("checkpoint.pt"))
    # the clean corruption column is the diagonal of the ISP grid (same model, same views)
    np.testing.assert_allclose(res.corruption_scores[0, 0], res.isp_scores[0, 0])
    np.testing.assert_allclose(res.corruption_scores[1, 0], res.isp_scores[1, 1])
    assert "Drift synthesis" in res.to_markdown()


def test_reload_and_resume_reuse_cache(tiny_run, monkeypatch):
    res, out = tiny_run
    again = SynthesisResult.load(out)
    np.testing.assert_array_equal(again.isp_scores, res.isp_scores)
    # a rerun must not train anything: make training fail loudly if it is attempted
    import rawdrift.train as train

    monkeypatch.setattr(train, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    rerun = run_synthesis(SynthesisConfig(out=str(out), **TINY))
    np.testing.assert_array_equal(rerun.corruption_scores, res.corruption_scores)


def test_interrupted_evaluation_resumes(tiny_run, tmp_path):
    res, out = tiny_run
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    ev = copy / "evals" / "ma,u,me" / "fold1.json"
    done = json.loads(ev.read_text())
    done.pop("isp:me,s,me")
    ev.write_text(json.dumps(done))
    rerun = run_synthesis(SynthesisConfig(out=str(copy), **TINY))
    np.testing.assert_allclose(rerun.isp_scores, res.isp_scores)


def test_errors():
    with pytest.raises(ValueError, match="dataset: expected one of"):
        SynthesisConfig(dataset="imagenet").resolved()
    with pytest.raises(ValueError, match="severities: expected values in 1..5"):
        SynthesisConfig(severities=(6,)).resolved()
    with pytest.raises(ValueError, match="corruptions: expected one of"):
        SynthesisConfig(corruptions=("fog",)).resolved()
    with pytest.raises(ValueError):
        SynthesisConfig(train_configs=("bi,x,ga",)).resolved()
    with pytest.raises(ValueError, match="scheduler: expected one of"):
        run_synthesis(SynthesisConfig(**TINY), scheduler="ray")


@pytest.mark.slow
def test_cli_segmentation(tmp_path, capsys):
    rc = main(["synthesis", "--dataset", "synthetic-drone", "--preset", "ci", "--out", str(tmp_path), "--n", "8",
               "--folds", "2", "--epochs", "1", "--train-configs", "bi,s,ga", "--test-configs", "bi,s,ga", "ma,s,me",
               "--corruptions", "brightness", "--quiet"])
    assert rc == 0
    assert "iou" in capsys.readouterr().out
    res = SynthesisResult.load(tmp_path)
    assert res.task == "segmentation" and res.isp_scores.shape == (1, 2, 2)
    # segmentation keeps IoU and Dice, no per-class parts
    assert res.per_class is None and res.metric_names() == ["iou", "dice"]
    assert res.metric_grid("dice", "cor").shape == (1, 2, 2) and "| cells | iou | dice |" in res.to_markdown()
    assert (tmp_path / "classwise.csv").read_text().startswith('"grid","train","test","fold","iou","dice"')
    assert not (tmp_path / "per_class_drop.png").exists()


@pytest.mark.slow
def test_dask_cluster_runs_the_same_grid_and_merges_with_local_cells(tiny_run, tmp_path):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    from rawdrift.drift.synthesis import run_cell

    res, _ = tiny_run
    cfg = SynthesisConfig(out=str(tmp_path / "d"), **TINY)
    run_cell(cfg, 0, 0)  # one cell done locally first
    local_model = tmp_path / "d" / "models" / "bi,s,ga" / "fold0" / "model.pt"
    stamp = local_model.stat().st_mtime_ns
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster, Client(cluster) as client:
        dres = run_synthesis(cfg, scheduler="dask", client=client)
    assert local_model.stat().st_mtime_ns == stamp  # reused, not retrained
    assert dres.isp_scores.shape == res.isp_scores.shape
    # same seeds, same data: the cluster reproduces the in-process grid
    np.testing.assert_allclose(dres.isp_scores, res.isp_scores, atol=1e-6)
    np.testing.assert_allclose(dres.corruption_scores, res.corruption_scores, atol=1e-6)


def test_assemble_names_missing_cells(tmp_path):
    from rawdrift.drift.synthesis import assemble

    with pytest.raises(FileNotFoundError, match=r"grid cell \(bi,s,ga, fold 0\) has not been run"):
        assemble(SynthesisConfig(out=str(tmp_path), **TINY))


# -- class-wise metrics (issue #12) ---------------------------------------------------------


def test_classwise_grids_equal_direct_computation_from_per_class(tiny_run):
    res, out = tiny_run
    pc, cpc = res.per_class_grid("isp"), res.per_class_grid("cor")
    assert cpc.shape == (2, 5, 2, 9)
    # the clean corruption column is the diagonal cell: same model, same views
    np.testing.assert_allclose(cpc[1, 0], pc[1, 1])
    worst = res.metric_grid("worst_class_accuracy")
    np.testing.assert_allclose(worst, np.nanmin(pc, axis=-1))
    np.testing.assert_allclose(res.metric_grid("class_range", "cor"), np.nanmax(cpc, -1) - np.nanmin(cpc, -1))
    np.testing.assert_allclose(res.metric_grid("class_std"), np.nanstd(pc, -1))
    np.testing.assert_allclose(res.metric_grid("balanced_accuracy"), np.nanmean(pc, -1))
    f1 = res.metric_grid("macro_f1", "cor")
    assert f1.shape == res.corruption_scores.shape and np.isfinite(f1).all()
    # drop relative to the training configuration: diagonal minus cell, per fold and class
    drop = res.per_class_drop("isp")
    diag = pc[1, res.test_configs.index("ma,u,me")]
    np.testing.assert_allclose(drop[1, 2], diag - pc[1, 2])
    np.testing.assert_allclose(drop[1, 1][~np.isnan(diag)], 0)
    np.testing.assert_allclose(res.per_class_drop("cor")[0, 3], cpc[0, 0] - cpc[0, 3])
    np.testing.assert_allclose(res.metric_grid("worst_class_drop"), np.nanmax(drop, -1))
    with pytest.raises(ValueError, match="name: expected one of"):
        res.metric_grid("iou")


def test_classwise_summary_markdown_csv_and_round_trip(tiny_run, tmp_path):
    res, out = tiny_run
    rows = res.classwise_summary()
    assert [r["cells"] for r in rows] == ["ISP: training configuration", "ISP: other configurations",
                                         "corruptions: clean", "corruptions: corrupted"]
    train_worst = res.metric_grid("worst_class_accuracy")[[0, 1], [0, 1]].mean(1).mean()
    assert rows[0]["worst_class_accuracy"] == pytest.approx(train_worst)
    assert rows[0]["worst_class_drop"] == pytest.approx(0.0)
    assert res.summary().classwise == rows and "worst_class_accuracy" in res.summary().to_text()
    md = res.to_markdown()
    assert "| cells | accuracy | balanced accuracy | macro f1 | worst class accuracy" in md
    assert "The class that pays most there:" in md
    csv = (out / "classwise.csv").read_text().splitlines()
    assert len(csv) == 1 + 2 * 2 * (3 + 5) and '"acc BAS"' in csv[0] and '"drop UNC"' in csv[0]
    again = SynthesisResult.load(out)
    np.testing.assert_array_equal(again.corruption_per_class, res.corruption_per_class)
    assert set(again.metric_grids) == {"isp:balanced_accuracy", "isp:macro_f1", "cor:balanced_accuracy",
                                       "cor:macro_f1"}
    np.testing.assert_array_equal(again.metric_grid("macro_f1"), res.metric_grid("macro_f1"))
    assert again.to_markdown().rsplit("Wall", 1)[0] == res.to_markdown().rsplit("Wall", 1)[0]  # rerun: new time
    # a result saved before the class-wise fields existed still loads and reports what it can
    import shutil

    old = tmp_path / "old"
    shutil.copytree(out, old)
    with np.load(old / "grid.npz") as z:
        np.savez(old / "grid.npz", isp_scores=z["isp_scores"], corruption_scores=z["corruption_scores"],
                 per_class=z["per_class"])
    legacy = SynthesisResult.load(old)
    assert legacy.corruption_per_class is None and legacy.metric_grids == {}
    np.testing.assert_allclose(legacy.metric_grid("worst_class_accuracy"), res.metric_grid("worst_class_accuracy"))
    assert np.isnan(legacy.classwise_summary()[3]["worst_class_accuracy"])
    assert "balanced_accuracy" not in legacy.metric_names() and legacy.to_markdown()


def test_per_class_drop_figure(tiny_run):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res, out = tiny_run
    assert (out / "per_class_drop.png").stat().st_size > 0
    fig = res.per_class_drop_figure()
    tr, te, _ = res.worst_pair()
    assert f"trained on {tr}, tested on {te}" == fig.axes[0].get_title()
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == res.classes
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    assert img.std() > 10  # not blank
    plt.close(fig)
    with pytest.raises(ValueError, match="test_config: expected one of"):
        res.per_class_drop_figure("bi,s,ga", "xx")


def test_a_class_without_test_samples_stays_blank_and_quiet(tiny_run):
    import dataclasses
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res, _ = tiny_run
    pc = res.per_class.copy()
    pc[..., 0] = np.nan  # class 0 absent from every test fold
    gone = dataclasses.replace(res, per_class=pc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = gone.per_class_drop_figure()
        gone.to_markdown()
    assert np.isnan(gone.per_class_drop("isp")[..., 0]).all()
    np.testing.assert_allclose(gone.metric_grid("worst_class_accuracy"), np.nanmin(pc[..., 1:], -1))
    plt.close(fig)
