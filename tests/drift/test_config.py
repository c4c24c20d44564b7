"""The shared base of the drift-control configs."""

import dataclasses

import pytest

from rawdrift.drift._config import RunConfig
from rawdrift.drift.adjustment import AdjustmentConfig
from rawdrift.drift.bias import BiasConfig
from rawdrift.drift.forensics import ForensicsConfig
from rawdrift.drift.synthesis import SynthesisConfig

CONFIGS = [SynthesisConfig, ForensicsConfig, AdjustmentConfig, BiasConfig]
SHARED = [f.name for f in dataclasses.fields(RunConfig)]


@pytest.mark.parametrize("cls", CONFIGS)
def test_shared_fields_and_default_out(cls):
    assert issubclass(cls, RunConfig)
    fields = {f.name: f.default for f in dataclasses.fields(cls)}
    assert [n for n in fields if n in SHARED] == SHARED
    for f in dataclasses.fields(RunConfig):
        assert fields[f.name] == f.default, f.name
    c = cls(preset="ci").resolved()
    assert c.preset == "ci" and c.out == f"runs/{cls.KIND}-synthetic-microscopy-ci"
    assert cls(preset="ci", out="elsewhere").resolved().out == "elsewhere"


@pytest.mark.parametrize("cls", CONFIGS)
@pytest.mark.parametrize("bad, message", [
    ({"dataset": "imagenet"}, "dataset"),
    ({"seed": -1}, "seed"),
    ({"n": 0}, "n"),
    ({"preset": "huge"}, "preset"),
])
def test_shared_checks(cls, bad, message):
    with pytest.raises(ValueError, match=message):
        cls(**{"preset": "ci", **bad}).resolved()


@pytest.mark.parametrize("cls", CONFIGS)
def test_dict_round_trip(cls):
    c = cls(preset="ci", seed=3).resolved()
    d = c.to_dict()
    assert d["seed"] == 3 and cls.from_dict(d).resolved() == c
    with pytest.raises(ValueError, match="unknown fields"):
        cls.from_dict({**d, "colour": "blue"})
