"""Look up a dataset by name: ``get_dataset("synthetic-microscopy", preset="ci")``."""

from __future__ import annotations

from .._checks import check_choice
from .base import DATASET_NAMES


def get_dataset(name: str, preset: str | None = None, root=None, intensity: float = 1.0, seed: int = 0, **kw):
    """Build the dataset called ``name`` (one of :data:`~rawdrift.data.base.DATASET_NAMES`).

    Synthetic datasets take ``n`` and ``size`` from ``preset`` (``n_microscopy`` or
    ``n_drone``, and ``raw_size``) unless given in ``kw``. The real datasets
    (``raw-microscopy``, ``raw-drone``) are read from ``root`` by
    :mod:`rawdrift.data.real`; ``preset`` and ``seed`` do not apply to them.

    Args:
        name: dataset name.
        preset: preset name (default: ``RAWDRIFT_PRESET``, else ``lab``).
        root: folder of a real dataset (ignored for synthetic data).
        intensity: raw intensity level / photon-budget factor in (0, 1].
        seed: seed of a synthetic dataset.
        **kw: passed to the dataset class (e.g. ``n``, ``size``, ``cache``).

    >>> get_dataset("synthetic-drone", preset="ci", n=2, size=32, cache=False).task
    'segmentation'
    """
    check_choice(name, DATASET_NAMES, "name")
    if name in ("synthetic-microscopy", "synthetic-drone"):
        from .synthetic import SyntheticDrone, SyntheticMicroscopy

        cls = SyntheticMicroscopy if name == "synthetic-microscopy" else SyntheticDrone
        return cls(intensity=intensity, seed=seed, preset=preset, **kw)
    from .real import RawDrone, RawMicroscopy

    cls = RawMicroscopy if name == "raw-microscopy" else RawDrone
    return cls(root, intensity=intensity, **kw)
