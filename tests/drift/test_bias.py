"""Bias study: config checks, statistics, the numbers-derived answer, a tiny end-to-end run and the CLI."""

import json
import math

import numpy as np
import pytest

from rawdrift.drift.bias import BiasConfig, BiasResult, mean_ci, run_bias_study

TINY = dict(preset="ci", n=36, test_per_class=1, seeds=1, epochs=1, levels=("exponential",),
            methods=("standard", "isp_aug"), drift_configs=("ma,u,me",), corruptions=("contrast",),
            device="cpu", progress=False)


def test_mean_ci_t_interval():
    m, h = mean_ci([0.5, 0.7])
    assert m == pytest.approx(0.6)
    assert h == pytest.approx(12.7062 * 0.1414214 / math.sqrt(2), rel=1e-4)
    assert math.isnan(mean_ci([0.3])[1])


@pytest.mark.parametrize("field,value,match", [
    ("levels", ("zipf",), "levels"), ("methods", ("mixup",), "methods"), ("levels", (), "levels: expected at least"),
    ("imbalance_ratio", 0.5, "imbalance_ratio"), ("severity", 6, "severity"), ("corruptions", ("fog",), "corruptions"),
])
def test_config_errors(field, value, match):
    with pytest.raises(ValueError, match=match):
        BiasConfig(preset="ci", **{field: value}).resolved()


def test_config_aug_configs_leave_out_drift_configs():
    c = BiasConfig(preset="ci", drift_configs=("ma,u,me",)).resolved()
    assert "ma,u,me" not in c.aug_configs and len(c.aug_configs) == 11


def _fake(rob_gain, tail_change, seeds=3, spread=1.0):
    """A result where `augmix` changes drifted balanced accuracy and tail (class 2) accuracy vs `standard`."""

    def cell(bal_drift, tail):
        pc = [0.9, 0.8, tail]
        return {"clean": {"balanced_accuracy": 0.8, "per_class_accuracy": pc},
                "isp:ma,u,me": {"balanced_accuracy": bal_drift, "per_class_accuracy": pc},
                "cor:contrast@3": {"balanced_accuracy": bal_drift, "per_class_accuracy": pc}}

    noise = [0.0, 0.01, -0.01][:seeds]
    cells = {"exponential": {"standard": [cell(0.5 + e, 0.6 + e) for e in noise],
                             "augmix": [cell(0.5 + rob_gain + 2 * spread * e, 0.6 + tail_change + 2 * spread * e) for e in noise]}}
    cfg = {"levels": ["exponential"], "methods": ["standard", "augmix"], "drift_configs": ["ma,u,me"],
           "corruptions": ["contrast"], "severity": 3, "seeds": seeds, "dataset": "toy", "preset": "ci",
           "imbalance_ratio": 4.0, "test_per_class": 1}
    prof = {"exponential": {"counts": [4, 2, 1], "order": [0, 1, 2], "ratio": 4.0, "n": 7}}
    return BiasResult(config=cfg, classes=["a", "b", "c"], profiles=prof, cells=cells)


def test_answer_follows_the_numbers():
    costly = _fake(0.1, -0.2).answer()
    assert "`augmix` bought robustness at the tail classes' expense" in costly
    assert "clearly beyond seed noise for augmix (exponential)" in costly
    assert "no method raised" in _fake(0.1, +0.2).answer()
    assert "no method raised" in _fake(-0.1, -0.2).answer()
    assert "too few seeds" in _fake(0.1, -0.2, seeds=2).answer()
    noisy = _fake(0.1, -0.2, spread=30).answer()
    assert "within seed noise on at least one" in noisy and "no such trade-off is beyond the seed noise" in noisy


def test_table_and_comparison_values():
    r = _fake(0.1, -0.2)
    row = next(x for x in r.table() if x["method"] == "augmix")
    assert row["isp"] == pytest.approx(0.6) and row["clean"] == pytest.approx(0.8)
    comp = r.comparison()[0]
    assert comp["robustness"] == pytest.approx(0.1) and comp["tail_clean"] == pytest.approx(-0.2)
    assert r.tail_classes() == [2]


def test_run_tiny_resume_and_reload(tmp_path, monkeypatch):
    cfg = BiasConfig(out=str(tmp_path / "run"), **TINY)
    r = run_bias_study(cfg)
    assert set(r.cells["exponential"]) == {"standard", "isp_aug"}
    cell = r.cells["exponential"]["standard"][0]
    assert set(cell) == {"clean", "isp:ma,u,me", "cor:contrast@3"}
    assert len(cell["isp:ma,u,me"]["per_class_drop"]) == 9
    assert r.profiles["exponential"]["counts"][0] == 3 and r.profiles["exponential"]["counts"][-1] == 1
    assert r.test_counts == [1] * 9
    assert not list(tmp_path.rglob("checkpoint.pt"))
    import rawdrift.train as train

    monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("a finished cell was trained again"))
    again = run_bias_study(cfg)
    assert again.cells == r.cells
    loaded = BiasResult.load(tmp_path / "run")
    assert loaded.table() == r.table()
    assert "## Answer" in loaded.to_markdown()
    loaded.plot_accuracy()
    loaded.plot_class_drop()


def test_cli_end_to_end(tmp_path, capsys):
    from rawdrift.cli import main

    out = tmp_path / "cli"
    rc = main(["bias", "--preset", "ci", "--out", str(out), "--levels", "balanced", "--methods", "plain", "augmix",
               "--seeds", "1", "--epochs", "1", "--n", "36", "--test-per-class", "1", "--drift-configs", "me,s,me",
               "--corruptions", "gaussian_blur", "--quiet", "--device", "cpu"])
    assert rc == 0
    for name in ("result.json", "summary.md", "cells.csv", "accuracy.png", "class_drop.png"):
        assert (out / name).is_file()
    res = json.loads((out / "result.json").read_text())
    assert res["config"]["methods"] == ["plain", "augmix"]
    assert "Robustness vs dataset bias" in capsys.readouterr().out
    lines = (out / "cells.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 3 and np.isfinite(float(lines[1].split(",")[4]))


def test_cli_rejects_segmentation(tmp_path):
    from rawdrift.cli import main

    assert main(["bias", "--task", "segmentation", "--out", str(tmp_path)]) == 2
