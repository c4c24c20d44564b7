"""Experiment presets: ``ci`` (tests), ``lab`` (book defaults, laptops, Colab) and ``paper``.

Every experiment config has a ``preset`` field; fields left at ``None`` in a
config are filled from the preset. ``RAWDRIFT_PRESET`` picks the default.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace

from ._checks import check_choice

PRESET_NAMES = ("ci", "lab", "paper")


@dataclass(frozen=True)
class Preset:
    """Sizes and hyperparameters of one preset (DESIGN.md section 5)."""

    name: str
    size: int                  # image side the task models see (crop of the raw patch)
    n_microscopy: int          # synthetic microscopy patches
    n_drone: int               # synthetic drone patches
    raw_size: int              # side of generated synthetic raw patches
    epochs: int
    folds: int
    batch_size_cls: int
    lr_cls: float
    batch_size_seg: int
    lr_seg: float
    forensics_epochs: int
    unet_width: int
    lr_schedule: str = "cosine"  # per-epoch learning-rate schedule: constant or cosine


PRESETS = {
    "ci": Preset("ci", size=32, n_microscopy=72, n_drone=24, raw_size=64, epochs=2, folds=2,
                 batch_size_cls=16, lr_cls=1e-3, batch_size_seg=8, lr_seg=1e-3,
                 forensics_epochs=1, unet_width=8),
    "lab": Preset("lab", size=64, n_microscopy=1000, n_drone=500, raw_size=128, epochs=12, folds=3,
                  batch_size_cls=64, lr_cls=1e-3, batch_size_seg=16, lr_seg=1e-3,
                  forensics_epochs=4, unet_width=16),
    "paper": Preset("paper", size=256, n_microscopy=940, n_drone=548, raw_size=256, epochs=100, folds=5,
                    batch_size_cls=128, lr_cls=1e-4, batch_size_seg=12, lr_seg=7.5e-5,
                    forensics_epochs=20, unet_width=32, lr_schedule="constant"),
}


def default_preset_name() -> str:
    """The preset named by ``RAWDRIFT_PRESET`` (default ``lab``)."""
    return check_choice(os.environ.get("RAWDRIFT_PRESET", "lab"), PRESET_NAMES, "RAWDRIFT_PRESET")


def get_preset(name: str | None = None, **overrides) -> Preset:
    """Return the named preset (default from the environment), with fields overridden."""
    name = default_preset_name() if name is None else check_choice(name, PRESET_NAMES, "preset")
    preset = PRESETS[name]
    if overrides:
        unknown = set(overrides) - set(asdict(preset))
        if unknown:
            raise ValueError(f"overrides: unknown preset fields {sorted(unknown)}")
        preset = replace(preset, **overrides)
    return preset
