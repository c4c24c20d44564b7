import json

import numpy as np
import pytest
import torch

from rawdrift.data.base import stratified_kfold
from rawdrift.device import pick_device
from rawdrift.io import atomic_path, cache_dir, read_json, write_json
from rawdrift.isp.camera import RAW_DRONE, RAW_MICROSCOPY, Camera


def test_stratified_kfold_balances_classes():
    labels = np.repeat(np.arange(4), [40, 20, 10, 3])
    folds = stratified_kfold(labels, k=5, seed=3)
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(len(labels)))
    for tr, te in folds:
        assert not set(tr) & set(te)
        counts = np.bincount(labels[te], minlength=4)
        assert np.all(np.abs(counts - np.bincount(labels, minlength=4) / 5) <= 1)
    assert [te.tolist() for _, te in folds] == [te.tolist() for _, te in stratified_kfold(labels, 5, seed=3)]


def test_stratified_kfold_errors():
    with pytest.raises(ValueError, match="k: cannot make 5 folds from 3 samples"):
        stratified_kfold([0, 1, 0], k=5)
    with pytest.raises(ValueError, match="labels: expected a 1-D"):
        stratified_kfold(np.zeros((2, 2)), k=2)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "r.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    write_json(target, {"a": np.float32(1.5), "b": np.arange(2)})
    assert read_json(target) == {"a": 1.5, "b": [0, 1]}


def test_cache_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RAWDRIFT_CACHE", str(tmp_path / "c"))
    assert cache_dir("x") == tmp_path / "c" / "x" and (tmp_path / "c" / "x").is_dir()


def test_camera_records_roundtrip_and_validate():
    assert Camera.from_dict(json.loads(json.dumps(RAW_DRONE.to_dict()))) == RAW_DRONE
    t = RAW_MICROSCOPY.tensors()
    assert t["M"].shape == (3, 3) and t["bl"].shape == (4,) and float(t["gamma"]) == pytest.approx(2.2)
    with pytest.raises(ValueError, match=r"cam.black_level: expected shape \(4,\)"):
        Camera("cam", (0.1, 0.1), (1, 1, 1), np.eye(3))
    with pytest.raises(ValueError, match=r"cam.black_level: expected values in \[0, 1\)"):
        Camera("cam", (0.1, 0.1, 0.1, 1.5), (1, 1, 1), np.eye(3))
    with pytest.raises(ValueError, match="cam.gamma: expected values > 0"):
        Camera("cam", (0, 0, 0, 0), (1, 1, 1), np.eye(3), gamma=0)
    with pytest.raises(ValueError, match="cam.color_matrix: expected finite"):
        Camera("cam", (0, 0, 0, 0), (1, 1, 1), np.full((3, 3), np.nan))


def test_pick_device():
    assert pick_device("cpu").type == "cpu"
    assert pick_device().type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="device: expected one of"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")
