"""Lab self-checks: each passes the reference solution and names what is wrong in broken ones."""

import numpy as np
import pytest
import torch
from torch import nn

from rawdrift.drift.forensics import ForensicsConfig, ForensicsResult
from rawdrift.isp.camera import RAW_DRONE
from rawdrift.labs import CheckResult, check_linf_forensics, check_own_dng, check_tone_mapping
from rawdrift.raw.dng import read_raw, write_dng


# ----------------------------------------------------------------------------- tone mapping


class ToneMap(nn.Module):
    """The reference solution: a Reinhard-style curve through (0, 0) and (1, 1)."""

    def __init__(self, strength=0.5):
        super().__init__()
        self.strength = nn.Parameter(torch.tensor(float(strength)))

    def forward(self, rgb):
        s = self.strength.clamp_min(0.0)
        return rgb * (1 + s) / (1 + s * rgb)


class PowerCurve(ToneMap):
    """Broken: identity at strength 1, not 0, and an infinite slope at 0."""

    def forward(self, rgb):
        return rgb.clamp(0, 1) ** self.strength


class Overshoot(ToneMap):
    """Broken: leaves [0, 1]."""

    def forward(self, rgb):
        return rgb * (1 + self.strength)


class Detached(ToneMap):
    """Broken: goes through numpy, so no gradient."""

    def forward(self, rgb):
        s = float(self.strength)
        return torch.from_numpy(rgb.detach().numpy() * (1 + s) / (1 + s * rgb.detach().numpy()))


class Wavy(ToneMap):
    """Broken: not monotone."""

    def forward(self, rgb):
        return (rgb + self.strength * 0.1 * torch.sin(20 * rgb)).clamp(0, 1)


class InPlace(ToneMap):
    """Broken: overwrites the pipeline's tensor."""

    def forward(self, rgb):
        return rgb.pow_(1.0 / (1.0 + float(self.strength)))


class NoParameter(nn.Module):
    def __init__(self, strength=0.5):
        super().__init__()
        self.s = float(strength)

    def forward(self, rgb):
        return rgb * (1 + self.s) / (1 + self.s * rgb)


def test_result_object_text_and_markdown():
    r = CheckResult("t")
    assert not r.passed  # nothing verified yet
    r.ok("a", measured="1")
    r.note("b")
    assert r.passed and bool(r)
    r.fail("c", measured="2", hint="do d")
    assert not r.passed and r.failures == ["FAIL c (measured: 2). Hint: do d"]
    assert "1 problem(s) to fix" in str(r) and "*Hint:* do d" in r._repr_markdown_()


def test_tone_mapping_reference_passes():
    res = check_tone_mapping(ToneMap)
    assert res.passed, str(res)
    assert not res.failures and res.data["max_change"][4.0] > 0.1


@pytest.mark.parametrize("broken, message", [
    (PowerCurve, "ToneMap(0) is not the identity"),
    (Overshoot, "the output leaves [0, 1]"),
    (Detached, "no gradient reaches the input"),
    (Wavy, "is not monotone"),
    (InPlace, "modified its input in place"),
    (NoParameter, "has no trainable nn.Parameter"),
])
def test_tone_mapping_broken_solutions_are_named(broken, message):
    res = check_tone_mapping(broken)
    assert not res.passed
    assert any(message in f for f in res.failures), str(res)


def test_tone_mapping_power_curve_also_flags_the_infinite_slope():
    res = check_tone_mapping(PowerCurve, identity_at=1.0, strengths=(0.5, 2.0))
    assert any("NaN or inf" in f for f in res.failures), str(res)


def test_tone_mapping_wrong_inputs_give_feedback():
    for wrong, message in [(ToneMap(0.5), "you passed an instance"), (3, "expected the ToneMap class"),
                           (lambda s: "curve", "not an nn.Module"), (lambda s: 1 / 0, "ZeroDivisionError")]:
        res = check_tone_mapping(wrong)
        assert not res.passed and any(message in f for f in res.failures), str(res)


def test_tone_mapping_starter_gets_feedback_not_an_error():
    class Starter(nn.Module):  # the notebook's starter: runs, does nothing yet
        def __init__(self, strength=0.5):
            super().__init__()
            self.strength = nn.Parameter(torch.tensor(float(strength)))

        def forward(self, rgb):
            return rgb

    res = check_tone_mapping(Starter)
    assert any("ToneMap does nothing" in f for f in res.failures)


# ----------------------------------------------------------------------------- l-inf forensics


def _result(constraint="linf_view", eps=0.1, linf=(0.05, 0.1), acc=(0.7, 0.6), lambdas=(10.0, 0.0)):
    recs = [{"group": "bl", "lambda": lam, "accuracy": a, "l2": 1.0, "rms": 0.01, "linf": li, "theta_change": 0.1,
             "theta": {}, "loss": 1.0, "train_loss": 1.0} for lam, li, a in zip(lambdas, linf, acc)]
    recs += [{**r, "group": "dn", "accuracy": 0.75} for r in recs]
    return ForensicsResult({"dataset": "d", "preset": "ci", "constraint": constraint, "epsilon": eps,
                            "epochs": 1}, "classification",
                           "accuracy", ["bl", "dn"], list(lambdas), {"accuracy": 0.8}, {}, recs)


def test_linf_reference_result_passes():
    res = check_linf_forensics(_result(), epsilon=0.1, most_harmful="bl")
    assert res.passed, str(res)
    assert res.data["drops"]["bl"] == pytest.approx(0.2)


@pytest.mark.parametrize("kw, check_kw, message", [
    (dict(constraint="l2_penalty", eps=None, linf=(0.1, 0.3)), {}, "not under an l-infinity budget"),
    (dict(constraint="l2_penalty", eps=None, linf=(0.1, 0.3)), {}, "move a view pixel by more than"),
    (dict(eps=0.3, linf=(0.2, 0.25)), {}, "epsilon is 0.3, the exercise asks for 0.1"),
    (dict(linf=(0.05, 0.2)), {}, "2 of 4 searched data models move a view pixel by more than epsilon = 0.1"),
    (dict(acc=(0.95, 0.7)), {}, "raised the test accuracy above the clean value"),
    (dict(lambdas=(10.0, 1.0)), {}, "at least two lambdas, one of them 0"),
    (dict(), {"most_harmful": "dn"}, "'dn' is not the most harmful group"),
    (dict(), {"most_harmful": "gc"}, "was not in your sweep"),
])
def test_linf_broken_results_are_named(kw, check_kw, message):
    res = check_linf_forensics(_result(**kw), **check_kw)
    assert not res.passed and any(message in f for f in res.failures), str(res)


def test_linf_no_drop_gets_a_note():
    r = _result()
    for rec in r.records:
        rec["accuracy"] = 0.8
    res = check_linf_forensics(r)
    assert any("no group lowered the test accuracy" in m for m in res.messages)


def test_linf_config_and_wrong_inputs(tmp_path):
    res = check_linf_forensics(ForensicsConfig(constraint="linf_view", epsilon=0.1))
    assert not res.passed and any("this is the configuration" in f for f in res.failures)
    assert not any("constraint" in f for f in res.failures)
    res = check_linf_forensics(ForensicsConfig())
    assert any("not under an l-infinity budget" in f for f in res.failures)
    assert any("no forensics result" in f for f in check_linf_forensics(tmp_path).failures)
    assert any("got a dict" in f for f in check_linf_forensics({}).failures)
    _result().save(tmp_path / "run")
    assert check_linf_forensics(str(tmp_path / "run")).passed


def test_linf_on_a_real_tiny_sweep(tmp_path):
    from rawdrift.drift.forensics import run_forensics

    cfg = ForensicsConfig(preset="ci", n=24, groups=("bl",), lambdas=(10.0, 0.0), epochs=1, model_epochs=1, lr=0.05,
                          batch_size=8, n_samples=1, constraint="linf_view", epsilon=0.02, progress=False,
                          out=str(tmp_path))
    res = check_linf_forensics(run_forensics(cfg), epsilon=0.02, most_harmful="bl")
    assert res.passed, str(res)


# ----------------------------------------------------------------------------- own DNG


@pytest.fixture(scope="module")
def dng(tmp_path_factory):
    rng = np.random.default_rng(0)
    raw = 0.0625 + 0.4 * rng.random((32, 48))
    path = tmp_path_factory.mktemp("dng") / "mine.dng"
    return write_dng(path, raw, black_level=0.0625, white_balance=(2.0, 1.0, 1.5))


def test_own_dng_reference_passes(dng):
    res = check_own_dng(dng)
    assert res.passed, str(res)
    assert res.data["view"].shape == (3, 32, 48) and torch.isfinite(res.data["view"]).all()
    assert check_own_dng(str(dng), config="ma,u,me", max_side=16).data["view"].shape == (3, 16, 16)
    assert check_own_dng(read_raw(dng)).passed


def test_own_dng_array_input():
    raw = 0.0625 + 0.4 * torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(0))
    res = check_own_dng(raw, camera=RAW_DRONE)
    assert res.passed and any("carries no metadata" in m for m in res.messages)


def test_own_dng_broken_inputs_are_named(dng, tmp_path):
    from dataclasses import replace

    text = tmp_path / "photo.dng"
    text.write_text("not a raw file")
    img = read_raw(dng)
    cases = [
        (tmp_path / "missing.dng", "no file at"),
        (text, "cannot read photo.dng as a Bayer raw file"),
        (np.zeros((31, 32)), "even height and width"),
        (np.zeros((32, 32, 3)), "must be (H, W) or (1, H, W)"),
        (np.full((32, 32), np.nan), "NaN or inf"),
        (np.full((32, 32), 300.0), "normalised to [0, 1]"),
        (replace(img, black_level=(0.9,) * 4), "black levels must be 4 values"),
        (replace(img, black_level=(0.3,) * 4), "black level is not below the typical pixel"),
        (replace(img, white_balance=(1.0, -1.0, 1.0)), "white-balance gains"),
        (42, "expected a file path"),
    ]
    for source, message in cases:
        res = check_own_dng(source)
        assert not res.passed and any(message in f for f in res.failures), (message, str(res))
    assert any("is not one of the 12" in f for f in check_own_dng(dng, config="xx").failures)


# ----------------------------------------------------------------------------- helpers


def test_stage_drift_tiny_and_cached(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from rawdrift.labs import stage_drift

    path = tmp_path / "model.pt"
    d = stage_drift(ToneMap, strengths=(0.0, 4.0), preset="ci", n=24, epochs=1, model_path=path, device="cpu",
                    batch_size=8)
    assert path.exists() and d.metric == "accuracy" and len(d.scores) == 2 and len(d.views) == 2
    assert d.scores[0] == pytest.approx(d.clean)  # strength 0 is the identity
    assert "| 4 |" in d.to_markdown() and d.plot() is not None
    again = stage_drift(ToneMap, strengths=(0.0,), preset="ci", n=24, epochs=1, model_path=path, device="cpu")
    assert again.clean == d.clean
    with pytest.raises(TypeError, match="stage: expected a class"):
        stage_drift(ToneMap(1.0))


def test_standin_dng_round_trip(tmp_path):
    from rawdrift.labs import standin_dng

    p = standin_dng(tmp_path / "s.dng", preset="ci")
    img = read_raw(p)
    assert img.pattern == "RGGB" and img.black_level == pytest.approx(RAW_DRONE.black_level, abs=1e-4)
    assert check_own_dng(standin_dng(tmp_path / "m.dng", dataset="synthetic-microscopy", preset="ci")).passed
