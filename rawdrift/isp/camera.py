"""Camera records: the continuous ISP parameters fixed per camera or dataset.

A :class:`Camera` holds what the paper keeps fixed across the 12 static
configurations: black level ``bl`` (one value per CFA site, tile raster order,
in normalised [0, 1) units), white-balance gains ``wb``, the 3x3 colour matrix
``M`` and the display gamma. Synthetic datasets, the paper's two datasets and
any DNG (through :func:`rawdrift.raw.dng.read_raw`) each provide one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .._checks import check_finite, check_positive, check_shape
from ..raw.cfa import check_pattern


@dataclass(frozen=True)
class Camera:
    """Continuous data-model parameters of one camera.

    Attributes:
        name: human-readable name.
        black_level: 4 per-site offsets in [0, 1), tile raster order.
        white_balance: 3 per-channel gains (R, G, B).
        color_matrix: 3x3 camera-RGB to output-RGB matrix, rows = output channels.
        gamma: display gamma, > 0.
        pattern: Bayer pattern of the mosaic the ISP receives (normally ``"RGGB"``).
    """

    name: str
    black_level: tuple[float, float, float, float]
    white_balance: tuple[float, float, float]
    color_matrix: tuple[tuple[float, float, float], ...]
    gamma: float = 2.2
    pattern: str = "RGGB"
    notes: str = field(default="", compare=False)

    def __post_init__(self):
        bl = check_shape(torch.as_tensor(self.black_level, dtype=torch.float64), (4,), f"{self.name}.black_level")
        check_finite(bl, f"{self.name}.black_level")
        if ((bl < 0) | (bl >= 1)).any():
            raise ValueError(f"{self.name}.black_level: expected values in [0, 1), got {bl.tolist()}")
        wb = check_shape(torch.as_tensor(self.white_balance, dtype=torch.float64), (3,), f"{self.name}.white_balance")
        check_finite(wb, f"{self.name}.white_balance")
        m = check_shape(torch.as_tensor(self.color_matrix, dtype=torch.float64), (3, 3), f"{self.name}.color_matrix")
        check_finite(m, f"{self.name}.color_matrix")
        check_positive(self.gamma, f"{self.name}.gamma")
        check_pattern(self.pattern, f"{self.name}.pattern")
        # store plain tuples so the record is hashable and JSON friendly
        object.__setattr__(self, "black_level", tuple(float(v) for v in bl))
        object.__setattr__(self, "white_balance", tuple(float(v) for v in wb))
        object.__setattr__(self, "color_matrix", tuple(tuple(float(v) for v in row) for row in m))
        object.__setattr__(self, "gamma", float(self.gamma))

    def tensors(self, dtype=torch.float32, device=None) -> dict[str, torch.Tensor]:
        """The parameters as tensors: ``bl (4,)``, ``wb (3,)``, ``M (3, 3)``, ``gamma ()``."""
        kw = dict(dtype=dtype, device=device)
        return {
            "bl": torch.tensor(self.black_level, **kw),
            "wb": torch.tensor(self.white_balance, **kw),
            "M": torch.tensor(self.color_matrix, **kw),
            "gamma": torch.tensor(self.gamma, **kw),
        }

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "black_level": list(self.black_level),
            "white_balance": list(self.white_balance),
            "color_matrix": [list(r) for r in self.color_matrix],
            "gamma": self.gamma,
            "pattern": self.pattern,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Camera":
        return cls(
            name=d["name"],
            black_level=tuple(d["black_level"]),
            white_balance=tuple(d["white_balance"]),
            color_matrix=tuple(tuple(r) for r in d["color_matrix"]),
            gamma=d.get("gamma", 2.2),
            pattern=d.get("pattern", "RGGB"),
        )


# The authors' released values (DESIGN.md section 3). The microscopy white balance
# and colour matrix carry negative entries exactly as in their code.
RAW_MICROSCOPY = Camera(
    name="raw-microscopy",
    black_level=(9.834368e-06,) * 4,
    white_balance=(-0.6567, 1.9673, 3.5304),
    color_matrix=((-2.0338, 0.0933, 0.4157), (-0.0286, 2.6464, -0.0574), (-0.5516, -0.0947, 2.9308)),
    notes="values from the authors' released code; negative entries are theirs",
)

RAW_DRONE = Camera(
    name="raw-drone",
    black_level=(0.0625, 0.0626, 0.0625, 0.0626),
    white_balance=(2.86653646, 1.0, 1.73079425),
    color_matrix=((1.5077, -0.3357, -0.1720), (-0.2305, 1.7070, -0.4765), (-0.0312, -0.3280, 1.3592)),
)
