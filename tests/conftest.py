"""Shared fixtures: a repository-local cache, device/dtype parametrisation, tolerances."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Synthetic datasets are cached between test runs in the repository (git-ignored).
os.environ.setdefault("RAWDRIFT_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "rawdrift"))
os.environ.setdefault("MPLBACKEND", "Agg")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# Per-dtype tolerances, in one place.
ATOL = {torch.float32: 1e-4, torch.float64: 1e-10}


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)
