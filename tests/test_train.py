"""The training engine, on tiny in-test stand-ins for datasets and ISP pipelines."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from rawdrift.data.base import RawDataset
from rawdrift.models import ResNet18, UNet
from rawdrift.raw.cfa import site_map, split_planes
from rawdrift.train import (
    CVResult, TrainConfig, TrainResult, _crop, _crop_offsets, center_crop_offset, _load, _Runner, cross_validate, dihedral,
    discard_checkpoint, evaluate, fit, load_checkpoint, normalization_for, train_task_model,
)


class TinyRaw(RawDataset):
    """Random raw mosaics; class = which quadrant is brightest (learnable), or a bright-box mask."""

    def __init__(self, n=16, size=40, task="classification", seed=0, name="tiny-microscopy"):
        g = torch.Generator().manual_seed(seed)
        self.name, self.task = name, task
        self.raw = torch.rand(n, 1, size, size, generator=g) * 0.3
        self.labels = torch.arange(n) % 3
        self.masks = torch.zeros(n, 1, size, size)
        for i in range(n):
            y, x = torch.randint(0, size - 12, (2,), generator=g).tolist()
            self.masks[i, :, y : y + 12, x : x + 12] = 1
            if task == "segmentation":
                self.raw[i, :, y : y + 12, x : x + 12] += 0.6
            else:
                q = int(self.labels[i])
                h = size // 2
                self.raw[i, :, (q // 2) * h : (q // 2) * h + h, (q % 2) * h : (q % 2) * h + h] += 0.5
        self.classes = ("a", "b", "c") if task == "classification" else ("background", "car")

    def __len__(self):
        return len(self.raw)

    def __getitem__(self, i):
        target = int(self.labels[i]) if self.task == "classification" else self.masks[i]
        return self.raw[i], target, {"index": i, "intensity": 1.0}

    @property
    def targets(self):
        if self.task == "classification":
            return self.labels.numpy()
        return (self.masks.flatten(1).sum(1) > 0).long().numpy()


class TinyISP(nn.Module):
    """Sparse planes (split_planes) + a 3x3 convolution; a stand-in for the real Pipeline."""

    def __init__(self, learnable=False):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        with torch.no_grad():
            k = torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
            self.conv.weight.zero_()
            for c in range(3):
                self.conv.weight[c, c] = k
        self.conv.weight.requires_grad_(learnable)

    def forward(self, raw):
        return self.conv(split_planes(raw)).clamp(0, 1)


class Replicate(nn.Module):
    def forward(self, raw):
        return raw.repeat(1, 3, 1, 1)


def cfg(**kw):
    base = dict(preset="ci", epochs=2, batch_size=8, lr=1e-3, device="cpu", progress=False, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def strip_time(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


# ------------------------------------------------------------------ config


def test_preset_defaults():
    c = TrainConfig(task="classification", preset="paper").resolved()
    assert (c.lr, c.batch_size, c.epochs, c.size) == (1e-4, 128, 100, 256)
    s = TrainConfig(task="segmentation", preset="paper").resolved()
    assert (s.lr, s.batch_size, s.epochs) == (7.5e-5, 12, 100)
    ci = TrainConfig(task="classification", preset="ci").resolved()
    assert ci.size == 32 and ci.pipeline_lr == ci.lr


def test_task_taken_from_dataset():
    assert TrainConfig(preset="ci").resolved("segmentation").task == "segmentation"
    with pytest.raises(ValueError, match="task: not set"):
        TrainConfig(preset="ci").resolved()


@pytest.mark.parametrize("kw, msg", [
    ({"task": "detection"}, "task: expected one of"),
    ({"size": 33}, "size: expected an even integer"),
    ({"size": 30}, "size: expected an integer >= 32"),
    ({"augment": "strong"}, "augment: expected one of"),
    ({"normalize": "imagenet"}, "normalize: expected one of"),
    ({"lr": 0.0}, "lr: expected a value > 0"),
    ({"epochs": 0}, "epochs: expected an integer >= 1"),
])
def test_config_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        TrainConfig(**kw)


def test_normalization_lookup():
    assert normalization_for("auto", "synthetic-microscopy") == ((0.91, 0.84, 0.94), (0.08, 0.12, 0.05))
    assert normalization_for("auto", "something-else") is None
    assert normalization_for(None, "raw-drone") is None


def test_crop_larger_than_raw():
    with pytest.raises(ValueError, match="size: crop 64 is larger"):
        fit(ResNet18(3), TinyISP(), TinyRaw(8, 40), None, cfg(size=64))


def test_task_mismatch():
    with pytest.raises(ValueError, match="task: config says 'segmentation'"):
        fit(UNet(4), TinyISP(), TinyRaw(8, 40), None, cfg(task="segmentation"))


def test_bad_model_and_data_types():
    with pytest.raises(TypeError, match="model: expected an nn.Module"):
        fit("resnet", TinyISP(), TinyRaw(8), None, cfg())
    with pytest.raises(TypeError, match="data: expected a RawDataset"):
        fit(ResNet18(3), TinyISP(), 3, None, cfg())


# ------------------------------------------------------------------ augmentation


def test_even_crop_offsets_keep_rggb():
    offs = _crop_offsets(200, 40, 32, True, torch.Generator().manual_seed(0))
    assert (offs % 2 == 0).all() and offs.min() == 0 and offs.max() == 8
    assert _crop_offsets(3, 40, 32, False, None).tolist() == [4, 4, 4]
    assert [center_crop_offset(full, 32) for full in (32, 34, 36, 38, 40)] == [0, 0, 2, 2, 4]
    with pytest.raises(ValueError, match="does not fit"):
        center_crop_offset(30, 32)
    # Tile positions encoded as values 0..3: every crop must start on position 0 (red).
    sites = site_map(torch.tensor([0.0, 1.0, 2.0, 3.0]), 40, 40).reshape(1, 1, 40, 40).repeat(6, 1, 1, 1)
    g = torch.Generator().manual_seed(1)
    crops = _crop(sites, _crop_offsets(6, 40, 32, True, g), _crop_offsets(6, 40, 32, True, g), 32)
    torch.testing.assert_close(crops, sites[:, :, :32, :32])


def test_dihedral_group():
    x = torch.rand(8, 2, 6, 6)
    out = dihedral(x, torch.arange(8))
    assert all(torch.equal(out[i], torch.rot90(x[i], i, dims=(-2, -1))) for i in range(4))
    assert all(torch.equal(out[i], torch.rot90(x[i].flip(-1), i - 4, dims=(-2, -1))) for i in range(4, 8))
    with pytest.raises(ValueError, match="x: flips and rotations need square"):
        dihedral(torch.rand(1, 1, 4, 6), torch.tensor([1]))


@pytest.mark.parametrize("augment", ["weak", "crop"])
def test_masks_follow_views(augment):
    # The view is the raw itself (replicated), and the mask is where raw is bright:
    # after crops and flips the two must still agree pixel for pixel.
    data = TinyRaw(8, 48, task="segmentation")
    c = cfg(task="segmentation", augment=augment, normalize=None).resolved()
    runner = _Runner(UNet(2), Replicate(), c, None)
    t = runner.to_device(_load(data, "segmentation"))
    view, target = runner.batch(t, torch.arange(8), torch.Generator().manual_seed(3), train=True)
    assert view.shape == (8, 3, 32, 32) and target.shape == (8, 1, 32, 32)
    torch.testing.assert_close((view[:, :1] > 0.55).float(), target)


# ------------------------------------------------------------------ training


def test_fit_classification_learns_and_reports():
    data = TinyRaw(24, 40)
    tr, va = np.arange(0, 24, 2), np.arange(1, 24, 2)
    res = fit(ResNet18(3), TinyISP(), (data, tr), (data, va), cfg(epochs=3, augment=None))
    assert [h["epoch"] for h in res.history] == [1, 2, 3]
    assert set(res.final) >= {"loss", "accuracy", "balanced_accuracy", "macro_f1", "per_class_accuracy",
                              "confusion_matrix"}
    assert np.sum(res.final["confusion_matrix"]) == len(va)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert res.best["accuracy"] == max(h["val"]["accuracy"] for h in res.history)


def test_fit_segmentation():
    data = TinyRaw(12, 40, task="segmentation", name="tiny-drone")
    res = fit(UNet(4), TinyISP(), (data, range(8)), (data, range(8, 12)), cfg(task="segmentation"))
    assert set(res.final) >= {"loss", "iou", "dice", "pixel_accuracy"}
    assert 0 <= res.final["iou"] <= 1 and math.isfinite(res.history[-1]["train_loss"])
    assert res.config["normalization"][0] == (0.35, 0.36, 0.35)


def test_evaluate_matches_fit_final():
    data = TinyRaw(16, 40)
    model, pipe = ResNet18(3), TinyISP()
    c = cfg(epochs=1)
    res = fit(model, pipe, (data, range(10)), (data, range(10, 16)), c)
    ev = evaluate(model, pipe, (data, range(10, 16)), c)
    assert ev["accuracy"] == res.final["accuracy"]
    assert ev["loss"] == pytest.approx(res.final["loss"], rel=1e-6)


def test_learnable_pipeline_gets_gradients_and_is_optimised():
    data = TinyRaw(16, 40)
    pipe = TinyISP(learnable=True)
    before = pipe.conv.weight.detach().clone()
    fit(ResNet18(3), pipe, data, None, cfg(epochs=1, pipeline_lr=1e-2))
    assert not torch.equal(before, pipe.conv.weight.detach())
    frozen = TinyISP(learnable=False)
    before = frozen.conv.weight.detach().clone()
    fit(ResNet18(3), frozen, data, None, cfg(epochs=1))
    assert torch.equal(before, frozen.conv.weight.detach())


def test_gradient_flows_through_batch_to_pipeline():
    data = TinyRaw(4, 40)
    pipe = TinyISP(learnable=True)
    c = cfg(augment="crop").resolved("classification")
    runner = _Runner(ResNet18(3), pipe, c, normalization_for("microscopy"))
    t = runner.to_device(_load(data, "classification"))
    view, target = runner.batch(t, torch.arange(4), torch.Generator().manual_seed(0), train=True)
    runner.loss(runner.logits(view), target).backward()
    assert pipe.conv.weight.grad is not None and pipe.conv.weight.grad.abs().sum() > 0


def test_same_seed_same_metrics():
    data = TinyRaw(16, 40)
    runs = []
    for _ in range(2):
        torch.manual_seed(123)  # a different global state must not matter: fit seeds itself
        model = ResNet18(3)
        torch.manual_seed(0)
        model.load_state_dict(ResNet18(3).state_dict())
        runs.append(fit(model, TinyISP(True), (data, range(10)), (data, range(10, 16)), cfg(augment="crop")))
    assert strip_time(runs[0].history) == strip_time(runs[1].history)
    for k, v in runs[0].model_state.items():
        assert torch.equal(v, runs[1].model_state[k]), k


def test_train_task_model_is_deterministic():
    data = TinyRaw(18, 40)
    a = train_task_model(data, TinyISP(), cfg(epochs=1))[1]
    b = train_task_model(data, TinyISP(), cfg(epochs=1))[1]
    assert strip_time(a.history) == strip_time(b.history)


class Interrupt(Exception):
    pass


def _interrupt_after(n):
    def cb(epoch, record):
        if epoch == n:
            raise Interrupt
    return cb


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_resume_after_interruption_matches_uninterrupted(tmp_path, task):
    data = TinyRaw(12, 40, task=task)
    split = (data, range(8)), (data, range(8, 12))

    def fresh():
        torch.manual_seed(0)
        return (ResNet18(3) if task == "classification" else UNet(4)), TinyISP(learnable=True)

    c = dict(epochs=3, augment="crop", task=task)
    full = fit(*fresh(), *split, cfg(**c, checkpoint_dir=tmp_path / "a"))
    with pytest.raises(Interrupt):
        fit(*fresh(), *split, cfg(**c, checkpoint_dir=tmp_path / "b"), callback=_interrupt_after(1))
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 1
    m, p = fresh()
    with torch.no_grad():  # scramble: everything must come from the checkpoint
        for prm in list(m.parameters()) + list(p.parameters()):
            prm.add_(1.0)
    resumed = fit(m, p, *split, cfg(**c, checkpoint_dir=tmp_path / "b"))
    assert strip_time(resumed.history) == strip_time(full.history)
    assert resumed.final == full.final
    for k, v in full.model_state.items():
        assert torch.equal(v, resumed.model_state[k]), k
    assert torch.equal(full.pipeline_state["conv.weight"], resumed.pipeline_state["conv.weight"])


def test_extend_training_by_resuming(tmp_path):
    data = TinyRaw(12, 40)
    split = (data, range(8)), (data, range(8, 12))
    torch.manual_seed(0)
    full = fit(ResNet18(3), TinyISP(), *split, cfg(epochs=2))
    torch.manual_seed(0)
    fit(ResNet18(3), TinyISP(), *split, cfg(epochs=1, checkpoint_dir=tmp_path))
    two = fit(ResNet18(3), TinyISP(), *split, cfg(epochs=2, checkpoint_dir=tmp_path))
    assert strip_time(two.history) == strip_time(full.history)


def test_discard_checkpoint_removes_file_and_empty_folder(tmp_path):
    ck = tmp_path / "ck"
    fit(ResNet18(3), TinyISP(), TinyRaw(8, 40), None, cfg(epochs=1, checkpoint_dir=ck))
    assert (ck / "checkpoint.pt").stat().st_size > 0
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    discard_checkpoint(ck)
    discard_checkpoint(tmp_path / "other")  # no checkpoint: nothing removed, no error
    discard_checkpoint(None)
    assert not ck.exists() and (tmp_path / "other" / "keep.txt").exists()


def test_resume_with_other_settings_is_refused(tmp_path):
    data = TinyRaw(8, 40)
    fit(ResNet18(3), TinyISP(), data, None, cfg(epochs=1, checkpoint_dir=tmp_path))
    with pytest.raises(ValueError, match=r"different settings \['lr', 'pipeline_lr'\]"):
        fit(ResNet18(3), TinyISP(), data, None, cfg(epochs=2, lr=1e-2, checkpoint_dir=tmp_path))


def test_result_save_load(tmp_path):
    data = TinyRaw(8, 40)
    res = fit(ResNet18(3), TinyISP(), (data, range(6)), (data, range(6, 8)), cfg(epochs=1))
    res.save(tmp_path / "run")
    back = TrainResult.load(tmp_path / "run")
    assert back.final["accuracy"] == res.final["accuracy"] and back.best_epoch == res.best_epoch
    assert torch.equal(back.model_state["fc.weight"], res.model_state["fc.weight"])
    assert not list((tmp_path / "run").glob("*.part"))


def test_cross_validate(tmp_path):
    data = TinyRaw(12, 40)
    cv = cross_validate(data, TinyISP, cfg(epochs=1, checkpoint_dir=tmp_path), k=2)
    assert isinstance(cv, CVResult) and len(cv.folds) == 2
    assert cv.mean["accuracy"] == pytest.approx(np.mean([f.final["accuracy"] for f in cv.folds]))
    assert (tmp_path / "fold0" / "checkpoint.pt").exists() and (tmp_path / "fold1" / "checkpoint.pt").exists()
    cv.save(tmp_path / "cv.json")
    assert (tmp_path / "cv.json").exists()


def test_eval_every_records_step_validations_without_changing_training():
    data = TinyRaw(24, 40)
    tr, va = np.arange(0, 24, 2), np.arange(1, 24, 2)  # 12 training samples, batch 4: 3 steps per epoch
    torch.manual_seed(0)
    plain = fit(ResNet18(3), TinyISP(learnable=True), (data, tr), (data, va), cfg(epochs=2, batch_size=4))
    torch.manual_seed(0)
    seen = []
    stepped = fit(ResNet18(3), TinyISP(learnable=True), (data, tr), (data, va),
                  cfg(epochs=2, batch_size=4, eval_every=2), callback=lambda e, r: seen.append(r))
    assert [r["step"] for r in stepped.steps] == [2, 4, 6]
    assert [r["epoch"] for r in stepped.steps] == [1, 2, 2]
    assert [h["step"] for h in stepped.history] == [3, 6]
    # the last step-wise validation happens at the end of epoch 2, so it equals the epoch's validation
    assert stepped.steps[-1]["val"]["accuracy"] == stepped.history[-1]["val"]["accuracy"]
    assert strip_time(plain.history) == strip_time(stepped.history)  # evaluating mid-epoch changes nothing
    assert len(seen) == 5 and sum("step" in r and "train_loss" not in r for r in seen) == 3


def test_eval_every_must_be_positive():
    with pytest.raises(ValueError, match="eval_every"):
        TrainConfig(eval_every=0)


def test_lr_schedule_follows_the_preset_and_is_recorded():
    data = TinyRaw(8, 40)
    split = (data, range(6)), (data, range(6, 8))
    torch.manual_seed(0)
    cos = fit(ResNet18(3), TinyISP(), *split, cfg(epochs=3, lr=1e-3))
    assert [round(h["lr"], 7) for h in cos.history] == [1e-3, 7.5e-4, 2.5e-4]
    torch.manual_seed(0)
    const = fit(ResNet18(3), TinyISP(), *split, cfg(epochs=2, lr=1e-3, lr_schedule="constant"))
    assert [h["lr"] for h in const.history] == [1e-3, 1e-3]
    assert TrainConfig(task="classification", preset="paper").resolved().lr_schedule == "constant"
    with pytest.raises(ValueError, match="lr_schedule: expected one of"):
        TrainConfig(lr_schedule="step")
