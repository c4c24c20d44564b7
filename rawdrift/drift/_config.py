"""The fields and checks every drift-control run shares (synthesis, forensics, adjustment, bias)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import ClassVar

from .._checks import check_choice, check_int
from ..presets import Preset, get_preset


@dataclass
class RunConfig:
    """Base of the drift-control configs: where the data comes from, how it runs, where results go.

    Args:
        dataset: one of ``rawdrift.data.DATASET_NAMES``.
        preset: ``ci``, ``lab`` or ``paper`` (``None``: ``RAWDRIFT_PRESET``, else ``lab``).
        seed: base random seed, ``>= 0``.
        n: dataset size override (synthetic data), ``>= 1``.
        root: folder of a real dataset.
        device: ``auto``, ``cuda``, ``mps`` or ``cpu``.
        out: result folder (default ``runs/<kind>-<dataset>-<preset>``).
        progress: show progress bars.

    Subclasses add their own fields (all with defaults) and call :meth:`_resolve_common`
    in their ``resolved()``.
    """

    #: Name of the control, used in the default result folder.
    KIND: ClassVar[str] = "run"

    dataset: str = "synthetic-microscopy"
    preset: str | None = None
    seed: int = 0
    n: int | None = None
    root: str | None = None
    device: str = "auto"
    out: str | None = None
    progress: bool = True

    def _resolve_common(self) -> tuple[Preset, dict]:
        """Check the shared fields; returns the preset and the resolved ``preset`` and ``out`` values.

        >>> p, common = RunConfig(preset="ci")._resolve_common()
        >>> p.name, common
        ('ci', {'preset': 'ci', 'out': 'runs/run-synthetic-microscopy-ci'})
        """
        from ..data.base import DATASET_NAMES

        check_choice(self.dataset, DATASET_NAMES, "dataset")
        p = get_preset(self.preset)
        check_int(self.seed, "seed", minimum=0)
        if self.n is not None:
            check_int(self.n, "n", minimum=1)
        out = self.out or str(Path("runs") / f"{self.KIND}-{self.dataset}-{p.name}")
        return p, {"preset": p.name, "out": str(out)}

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict (what results store as ``config``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        """Rebuild a config from :meth:`to_dict` output; unknown keys raise a clear error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {unknown}")
        return cls(**d)
