"""Result folders of the drift controls: result.json plus one .npz, and clear errors when missing."""

import numpy as np
import pytest

from rawdrift.drift._results import read_result, write_result
from rawdrift.drift.adjustment import AdjustmentResult
from rawdrift.drift.bias import BiasResult
from rawdrift.drift.forensics import ForensicsResult
from rawdrift.drift.reliability import ReliabilityResult
from rawdrift.drift.synthesis import SynthesisResult


def test_write_read_round_trip(tmp_path):
    out = write_result(tmp_path / "r", {"a": 1, "b": [1, 2]}, {"x": np.arange(3.0)}, npz="grid.npz")
    assert sorted(p.name for p in out.iterdir()) == ["grid.npz", "result.json"]
    meta, arrays = read_result(out, "run_x", npz="grid.npz")
    assert meta == {"a": 1, "b": [1, 2]}
    np.testing.assert_array_equal(arrays["x"], np.arange(3.0))


def test_no_arrays_no_npz(tmp_path):
    out = write_result(tmp_path / "r", {"a": 1}, {})
    assert [p.name for p in out.iterdir()] == ["result.json"]
    assert read_result(out, "run_x") == ({"a": 1}, {})


@pytest.mark.parametrize("cls, runner", [
    (SynthesisResult, "run_synthesis"), (ForensicsResult, "run_forensics"), (AdjustmentResult, "run_adjustment"),
    (BiasResult, "run_bias_study"), (ReliabilityResult, "run_reliability"),
])
def test_load_from_an_empty_folder_names_the_runner(tmp_path, cls, runner):
    with pytest.raises(FileNotFoundError, match=f"no result.json in .*{runner}"):
        cls.load(tmp_path)
