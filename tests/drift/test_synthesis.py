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
