"""Read any Bayer raw file (DNG first) and write minimal DNGs.

Reading goes through rawpy (LibRaw), so every format LibRaw understands works:
DNG, and the vendors' own raw formats (NEF, CR2, ARW, ...). Writing produces a
plain uncompressed DNG: a TIFF whose first image is the raw CFA mosaic, tagged
with the DNG tags a raw converter needs (CFA layout, black and white level,
as-shot neutral, colour matrix).

Normalisation convention
------------------------
:func:`read_raw` divides the 16-bit counts by the file's **white level** (and
clips to [0, 1]); the black level is *not* subtracted. The black levels are
divided by the same white level and handed to the ISP, whose ``bl`` stage
subtracts them. So ``raw * white_level`` gives back the counts, and the
paper's datasets (16-bit data, white level 65535) read exactly as
``counts / 65535``, the convention of :mod:`rawdrift.data`.

Colour matrix convention
------------------------
``color_matrix`` maps white-balanced camera RGB to linear sRGB (rows = output
channels), the matrix LibRaw calls ``rgb_cam``. rawpy exposes it as
``color_matrix[:, :3]``; when that is all zeros (some formats) it is derived
from the XYZ-to-camera matrix ``rgb_xyz_matrix[:3]`` the way LibRaw does it:
``cam_rgb = cam_xyz @ xyz_rgb``, rows normalised to sum to 1, then inverted.
When neither is present the identity is used and :attr:`RawImage.matrix_source`
says so. Because of that row normalisation a matrix survives a
:func:`write_dng` / :func:`read_raw` round trip exactly only when its rows sum
to 1 (any other scaling belongs to the white balance).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..isp.camera import Camera
from .cfa import PATTERNS, TILE_POSITIONS, check_pattern, crop_to_rggb

# Linear sRGB (D65) to CIE XYZ, to the precision LibRaw 0.21+ uses.
XYZ_FROM_SRGB = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)

# DNG / TIFF tag codes used by the writer.
_TAG = {
    "NewSubfileType": 254,
    "Make": 271,
    "Model": 272,
    "CFARepeatPatternDim": 33421,
    "CFAPattern": 33422,
    "DNGVersion": 50706,
    "DNGBackwardVersion": 50707,
    "UniqueCameraModel": 50708,
    "CFAPlaneColor": 50710,
    "CFALayout": 50711,
    "BlackLevelRepeatDim": 50713,
    "BlackLevel": 50714,
    "WhiteLevel": 50717,
    "ColorMatrix1": 50721,
    "AsShotNeutral": 50728,
    "CalibrationIlluminant1": 50778,
}
_PHOTOMETRIC_CFA = 32803
_D65 = 21  # EXIF LightSource code
_RATIONAL_DEN = 1_000_000
MIN_SIZE = 22  # LibRaw (after dcraw) refuses raw images narrower or shorter than this


@dataclass(frozen=True)
class RawImage:
    """A Bayer mosaic with the metadata the ISP needs.

    Attributes:
        raw: ``(1, H, W)`` float32 in [0, 1]: counts divided by ``white_level``.
        pattern: Bayer pattern of ``raw`` (one of ``PATTERNS``).
        black_level: 4 per-site black levels, tile raster order, divided by ``white_level``.
        white_level: the file's saturation level in counts.
        white_balance: as-shot RGB gains normalised so green is 1.
        color_matrix: 3x3 camera RGB to linear sRGB (see the module notes).
        path: the file read (``None`` for images built in memory).
        model: camera model from the file's tags, else the file name.
        offset: ``(row, col)`` of ``raw[0, 0]`` in the file's visible image.
        source_pattern: Bayer pattern of the file itself.
        white_balance_source: ``"as-shot"``, ``"daylight"`` or ``"none"`` (unit gains).
        matrix_source: ``"color_matrix"``, ``"rgb_xyz_matrix"`` or ``"none"`` (identity).
    """

    raw: torch.Tensor
    pattern: str
    black_level: tuple[float, float, float, float]
    white_level: int
    white_balance: tuple[float, float, float]
    color_matrix: tuple[tuple[float, float, float], ...]
    path: Path | None = None
    model: str = ""
    offset: tuple[int, int] = (0, 0)
    source_pattern: str = ""
    white_balance_source: str = "as-shot"
    matrix_source: str = "color_matrix"

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the mosaic."""
        return tuple(self.raw.shape[-2:])

    def camera(self) -> Camera:
        """The :class:`~rawdrift.isp.camera.Camera` whose ``bl``, ``wb`` and ``M`` are
        this file's own: the ISP defaults for processing :attr:`raw`."""
        return Camera(
            name=self.model or "raw file",
            black_level=self.black_level,
            white_balance=self.white_balance,
            color_matrix=self.color_matrix,
            pattern=self.pattern,
            notes=f"read from {self.path}" if self.path else "",
        )

    def to_rggb(self) -> "RawImage":
        """Crop to an RGGB mosaic (one row/column off each end where needed) and
        reorder the per-site black levels to match; RGGB input is returned as is."""
        if self.pattern == "RGGB":
            return self
        sites = TILE_POSITIONS
        dy, dx = sites[self.pattern.index("R")]
        cropped = crop_to_rggb(self.raw[None], self.pattern)[0]
        # site (i, j) of the cropped image is site ((i + dy) % 2, (j + dx) % 2) of the original
        bl = tuple(self.black_level[sites.index(((i + dy) % 2, (j + dx) % 2))] for i, j in sites)
        return replace(
            self,
            raw=cropped,
            pattern="RGGB",
            black_level=bl,
            offset=(self.offset[0] + dy, self.offset[1] + dx),
        )

    def summary(self) -> dict:
        """Plain-Python metadata (for printing or JSON)."""
        return {
            "path": str(self.path) if self.path else None,
            "model": self.model,
            "height": self.shape[0],
            "width": self.shape[1],
            "pattern": self.pattern,
            "source_pattern": self.source_pattern,
            "offset": list(self.offset),
            "white_level": self.white_level,
            "black_level": [round(v, 8) for v in self.black_level],
            "black_level_counts": [round(v * self.white_level, 3) for v in self.black_level],
            "white_balance": [round(v, 6) for v in self.white_balance],
            "white_balance_source": self.white_balance_source,
            "color_matrix": [[round(v, 6) for v in row] for row in self.color_matrix],
            "matrix_source": self.matrix_source,
            "raw_min": float(self.raw.min()),
            "raw_max": float(self.raw.max()),
            "raw_mean": float(self.raw.mean()),
        }


def read_raw(path: str | os.PathLike, rggb: bool = True) -> RawImage:
    """Read a Bayer raw file (DNG or any format LibRaw reads).

    Args:
        path: the file.
        rggb: crop the mosaic to RGGB (see :meth:`RawImage.to_rggb`), the layout
            the ISP expects. ``False`` keeps the file's own pattern.
    Returns:
        a :class:`RawImage`; ``image.camera()`` gives the ISP's ``bl``/``wb``/``M``.
    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a raw file LibRaw can read, or its sensor
            is not a 2x2 RGB Bayer mosaic (X-Trans, four-colour CMYG, linear DNG).
    """
    import rawpy

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such raw file: {path}")
    try:
        with rawpy.imread(str(path)) as r:
            if r.raw_type != rawpy.RawType.Flat:
                raise ValueError(f"{path}: holds {r.raw_type.name} (already demosaiced) data, not a Bayer mosaic")
            pattern = _pattern_name(r.raw_pattern, r.color_desc, path)
            counts = np.array(r.raw_image_visible, dtype=np.float64)
            blpc = list(r.black_level_per_channel)
            black = [float(blpc[r.raw_pattern[dy, dx]]) for dy, dx in TILE_POSITIONS]
            white = int(r.white_level)
            wb, wb_source = _white_balance(r.camera_whitebalance, r.daylight_whitebalance)
            cm, cm_source = _color_matrix(np.asarray(r.color_matrix), np.asarray(r.rgb_xyz_matrix))
    except rawpy.LibRawError as err:
        msg = err.args[0].decode() if err.args and isinstance(err.args[0], bytes) else str(err)
        raise ValueError(f"{path}: not a raw file rawpy/LibRaw can read ({type(err).__name__}: {msg})") from None
    if white <= 0:
        raise ValueError(f"{path}: white level {white} is not positive")
    h, w = counts.shape
    if h < 2 or w < 2:
        raise ValueError(f"{path}: the visible mosaic is only {h}x{w} pixels")
    counts = counts[: h - h % 2, : w - w % 2]  # whole 2x2 tiles only
    raw = torch.from_numpy(np.clip(counts / white, 0.0, 1.0).astype(np.float32))[None]
    black = tuple(min(max(b / white, 0.0), 1.0 - 1e-6) for b in black)
    image = RawImage(
        raw=raw,
        pattern=pattern,
        black_level=black,
        white_level=white,
        white_balance=wb,
        color_matrix=cm,
        path=path,
        model=_model_name(path),
        source_pattern=pattern,
        white_balance_source=wb_source,
        matrix_source=cm_source,
    )
    return image.to_rggb() if rggb else image


def _pattern_name(raw_pattern, color_desc: bytes, path: Path) -> str:
    if raw_pattern is None:
        raise ValueError(f"{path}: has no colour filter array description; only Bayer raw files are supported")
    raw_pattern = np.asarray(raw_pattern)
    desc = color_desc.decode(errors="replace")
    if raw_pattern.shape != (2, 2):
        kind = "an X-Trans" if raw_pattern.shape == (6, 6) else f"a {raw_pattern.shape[0]}x{raw_pattern.shape[1]}"
        raise ValueError(f"{path}: {kind} colour filter array is not supported; only 2x2 Bayer (RGGB, BGGR, GRBG, GBRG)")
    name = "".join(desc[i] if i < len(desc) else "?" for i in raw_pattern.ravel())
    if name not in PATTERNS:
        raise ValueError(
            f"{path}: colour filter array {name!r} (colours {desc!r}) is not an RGB Bayer pattern; "
            f"expected one of {', '.join(PATTERNS)}"
        )
    return name


def _white_balance(as_shot, daylight) -> tuple[tuple[float, float, float], str]:
    for gains, source in ((as_shot, "as-shot"), (daylight, "daylight")):
        g = np.asarray(gains, dtype=np.float64)[:3]
        if g.shape == (3,) and np.all(np.isfinite(g)) and np.all(g > 0):
            return tuple(float(v) for v in g / g[1]), source
    return (1.0, 1.0, 1.0), "none"


def _color_matrix(rgb_cam, cam_xyz) -> tuple[tuple[tuple[float, ...], ...], str]:
    m = rgb_cam[:3, :3].astype(np.float64) if rgb_cam.size else np.zeros((3, 3))
    if np.all(np.isfinite(m)) and np.abs(m).sum() > 0:
        return _tuple3(m), "color_matrix"
    c = cam_xyz[:3, :3].astype(np.float64) if cam_xyz.size else np.zeros((3, 3))
    if np.all(np.isfinite(c)) and np.abs(c).sum() > 0:
        cam_rgb = c @ XYZ_FROM_SRGB
        sums = cam_rgb.sum(axis=1, keepdims=True)
        if np.all(np.abs(sums) > 1e-12):
            cam_rgb = cam_rgb / sums
            if abs(np.linalg.det(cam_rgb)) > 1e-12:
                return _tuple3(np.linalg.inv(cam_rgb)), "rgb_xyz_matrix"
    return _tuple3(np.eye(3)), "none"


def _tuple3(m) -> tuple[tuple[float, float, float], ...]:
    return tuple(tuple(float(v) for v in row) for row in m)


def _model_name(path: Path) -> str:
    """Camera model from the TIFF tags of TIFF-based raws (DNG, NEF, CR2, ARW...)."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            for code in (_TAG["UniqueCameraModel"], _TAG["Model"]):
                if code in tags and str(tags[code].value).strip():
                    return str(tags[code].value).strip().rstrip("\x00")
    except Exception:  # not a TIFF container: fall back to the file name
        pass
    return path.stem


def write_dng(
    path: str | os.PathLike,
    raw,
    pattern: str = "RGGB",
    black_level=0,
    white_level: int = 65535,
    white_balance=(1.0, 1.0, 1.0),
    color_matrix=None,
    camera_model: str = "rawdrift synthetic",
) -> Path:
    """Write a Bayer mosaic as a minimal, uncompressed DNG (atomically).

    Args:
        path: output file (``.dng``).
        raw: the mosaic, ``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)``, numpy or
            torch, ``H`` and ``W`` even and at least :data:`MIN_SIZE`; integer counts in [0, 65535] are written bit for bit, floats
            in [0, 1] are multiplied by ``white_level`` and rounded (so
            :func:`read_raw` gives them back).
        pattern: Bayer pattern of ``raw``.
        black_level: one value or 4 per-site values (tile raster order) in the
            units of ``raw``: counts for integer ``raw``, fractions of
            ``white_level`` for float ``raw``. Stored rounded to whole counts.
        white_level: saturation level in counts, 1..65535.
        white_balance: as-shot RGB gains (stored as AsShotNeutral = 1 / gains).
        color_matrix: 3x3 camera RGB to linear sRGB (default identity); stored
            as ColorMatrix1 (XYZ to camera, D65). Rows should sum to 1.
        camera_model: written to Make/Model/UniqueCameraModel.
    Returns:
        the path written.
    """
    import tifffile

    from ..io import atomic_path

    check_pattern(pattern)
    counts, is_float = _as_counts(raw, white_level)
    bl = np.broadcast_to(np.asarray(black_level, dtype=np.float64), (4,)) if np.ndim(black_level) == 0 else None
    if bl is None:
        bl = np.asarray(black_level, dtype=np.float64).reshape(-1)
        if bl.shape != (4,):
            raise ValueError(f"black_level: expected 1 or 4 values, got {bl.size}")
    if not np.all(np.isfinite(bl)) or np.any(bl < 0):
        raise ValueError(f"black_level: expected finite values >= 0, got {bl.tolist()}")
    bl_counts = np.rint(bl * white_level if is_float else bl).astype(np.int64)
    if np.any(bl_counts >= white_level):
        raise ValueError(f"black_level: expected values below the white level {white_level}, got {bl_counts.tolist()}")
    wb = np.asarray(white_balance, dtype=np.float64).reshape(-1)
    if wb.shape != (3,) or not np.all(np.isfinite(wb)) or np.any(wb <= 0):
        raise ValueError(f"white_balance: expected 3 finite gains > 0, got {wb.tolist()}")
    cm = np.eye(3) if color_matrix is None else np.asarray(color_matrix, dtype=np.float64)
    if cm.shape != (3, 3) or not np.all(np.isfinite(cm)) or abs(np.linalg.det(cm)) < 1e-9:
        raise ValueError(f"color_matrix: expected an invertible finite 3x3 matrix, got {cm.tolist()}")
    if not isinstance(camera_model, str) or not camera_model.isascii():
        raise ValueError(f"camera_model: expected an ASCII string, got {camera_model!r}")
    xyz_to_cam = np.linalg.inv(cm) @ np.linalg.inv(XYZ_FROM_SRGB)

    cfa = tuple("RGB".index(c) for c in pattern)
    neutral = (1.0 / wb) / (1.0 / wb).max()
    t = _TAG
    tags = [
        (t["NewSubfileType"], 4, 1, 0, True),
        (t["Make"], 2, None, camera_model, True),
        (t["Model"], 2, None, camera_model, True),
        (t["CFARepeatPatternDim"], 3, 2, (2, 2), True),
        (t["CFAPattern"], 1, 4, cfa, True),
        (t["DNGVersion"], 1, 4, (1, 4, 0, 0), True),
        (t["DNGBackwardVersion"], 1, 4, (1, 1, 0, 0), True),
        (t["UniqueCameraModel"], 2, None, camera_model, True),
        (t["CFAPlaneColor"], 1, 3, (0, 1, 2), True),
        (t["CFALayout"], 3, 1, 1, True),
        (t["BlackLevelRepeatDim"], 3, 2, (2, 2), True),
        (t["BlackLevel"], 4, 4, tuple(int(v) for v in bl_counts), True),
        (t["WhiteLevel"], 4, 1, int(white_level), True),
        (t["ColorMatrix1"], 10, 9, _rationals(xyz_to_cam.ravel()), True),
        (t["CalibrationIlluminant1"], 3, 1, _D65, True),
        (t["AsShotNeutral"], 5, 3, _rationals(neutral), True),
    ]
    path = Path(path)
    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp, counts, photometric=_PHOTOMETRIC_CFA, extratags=tags, metadata=None, software=False
        )
    return path


def _as_counts(raw, white_level) -> tuple[np.ndarray, bool]:
    if isinstance(white_level, bool) or not isinstance(white_level, (int, np.integer)) or not 1 <= white_level <= 65535:
        raise ValueError(f"white_level: expected an integer in [1, 65535], got {white_level!r}")
    if isinstance(raw, torch.Tensor):
        raw = raw.detach().cpu().numpy()
    a = np.asarray(raw)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"raw: expected an (H, W), (1, H, W) or (1, 1, H, W) mosaic, got shape {np.shape(raw)}")
    h, w = a.shape
    if h % 2 or w % 2:
        raise ValueError(f"raw: expected even height and width (Bayer 2x2 tiles), got {h}x{w}")
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(f"raw: expected at least {MIN_SIZE}x{MIN_SIZE} pixels (LibRaw ignores smaller raws), got {h}x{w}")
    if np.issubdtype(a.dtype, np.integer):
        if a.min() < 0 or a.max() > 65535:
            raise ValueError(f"raw: integer counts must lie in [0, 65535], got [{a.min()}, {a.max()}]")
        return a.astype(np.uint16), False
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1:
            raise ValueError(f"raw: float values must be finite and in [0, 1], got [{np.nanmin(a)}, {np.nanmax(a)}]")
        return np.rint(a.astype(np.float64) * white_level).astype(np.uint16), True
    raise ValueError(f"raw: expected integer counts or floats in [0, 1], got dtype {a.dtype}")


def _rationals(values) -> tuple[int, ...]:
    out: list[int] = []
    for v in values:
        # the largest power-of-ten denominator that keeps the numerator in int32
        den = _RATIONAL_DEN
        while den > 1 and abs(float(v)) * den * 10 < 2**31 - 1 and den < 10**8:
            den *= 10
        while den > 1 and abs(float(v)) * den >= 2**31 - 1:
            den //= 10
        out += [int(round(float(v) * den)), den]
    return tuple(out)
