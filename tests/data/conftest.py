import pytest

from .layouts import write_drone, write_microscopy


@pytest.fixture
def microscopy_root(tmp_path):
    truth = write_microscopy(tmp_path)
    return tmp_path, truth


@pytest.fixture
def drone_root(tmp_path):
    cars = write_drone(tmp_path)
    return tmp_path, cars
