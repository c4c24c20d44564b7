"""The engine with the real ISP Pipeline and the synthetic datasets (tiny sizes)."""

import math

import pytest
import torch

from rawdrift.data import get_dataset
from rawdrift.isp import Pipeline
from rawdrift.train import TrainConfig, evaluate, train_task_model


@pytest.fixture(scope="module")
def microscopy():
    return get_dataset("synthetic-microscopy", preset="ci", n=18, size=48)


def test_parametrized_pipeline_is_trained(microscopy):
    pipe = Pipeline.parametrized(microscopy.camera)
    before = {k: v.detach().clone() for k, v in pipe.state_dict().items()}
    cfg = TrainConfig(preset="ci", epochs=1, batch_size=6, device="cpu", progress=False, pipeline_lr=1e-2)
    model, res = train_task_model(microscopy, pipe, cfg)
    assert res.task == "classification" and math.isfinite(res.final["loss"])
    assert res.config["normalization"][0] == (0.91, 0.84, 0.94)
    changed = [k for k, v in pipe.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "no pipeline parameter moved"


def test_static_pipeline_stays_frozen_and_evaluates_other_configs(microscopy):
    pipe = Pipeline.static("bi,s,ga", microscopy.camera)
    before = {k: v.detach().clone() for k, v in pipe.state_dict().items()}
    cfg = TrainConfig(preset="ci", epochs=1, batch_size=6, device="cpu", progress=False)
    model, res = train_task_model(microscopy, pipe, cfg)
    assert all(torch.equal(v, before[k]) for k, v in pipe.state_dict().items())
    other = evaluate(model, Pipeline.static("ma,u,me", microscopy.camera), microscopy, cfg)
    assert 0 <= other["accuracy"] <= 1 and len(other["confusion_matrix"]) == len(microscopy.classes)


def test_drone_segmentation():
    drone = get_dataset("synthetic-drone", preset="ci", n=6, size=48)
    cfg = TrainConfig(preset="ci", epochs=1, device="cpu", progress=False)
    _, res = train_task_model(drone, Pipeline.static("bi,s,ga", drone.camera), cfg)
    assert 0 <= res.final["iou"] <= 1 and 0 <= res.final["dice"] <= 1
