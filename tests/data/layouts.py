"""Miniature copies of the real datasets' layouts, written into tmp_path by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

SCALES = ("100", "010")
# class code -> number of annotated images; "MYB" (2 samples) must be dropped
MICRO_COUNTS = {"BAS": 5, "LYT": 6, "NGS": 5, "MYB": 2}


def write_microscopy(root: Path, size: int = 8, top: str = "microscopy", ext: str = ".tiff") -> dict:
    base = root / top
    (base / "labels").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines, truth = [], {}
    for code, n in MICRO_COUNTS.items():
        for i in range(n):
            name = f"Ma190c_{code}_{i}"
            lines.append(f"{name} {code}")
            truth[name] = code
    lines.append("Ma190c_lame3_zone13_composite_Mcropped_2 LYT")  # excluded by name, has no image
    (base / "labels" / "Ma190c_annotations.dat").write_text("\n".join(lines) + "\n")
    for scale in SCALES:
        d = base / "images" / f"raw_scale{scale}"
        d.mkdir(parents=True)
        for name in truth:
            counts = rng.integers(0, 65536, (size, size), dtype=np.uint16)
            tifffile.imwrite(d / f"{name}{ext}", counts)
    return truth


def write_drone(root: Path, tile: int = 8, top: str = "drone", frames: int = 2) -> list:
    """Frames of 3x4 tiles (+ a remainder strip); cars in a known set of tiles."""
    base = root / top
    (base / "masks_full").mkdir(parents=True)
    h, w = 3 * tile + 2, 4 * tile + 4
    cars = {0: [(0, 1), (2, 3)], 1: [(1, 0)]}
    for f in range(frames):
        mask = np.zeros((h, w, 3), np.uint8)  # colour mask
        for r, c in cars[f]:
            mask[r * tile + 2 : r * tile + 5, c * tile + 1 : c * tile + 4] = (255, 0, 0)
        mask[-2:, :] = 255  # a car only in the dropped remainder strip: never a tile
        Image.fromarray(mask).save(base / "masks_full" / f"DJI_{f:04d}.png")
    for scale in SCALES:
        d = base / "images_full" / f"raw_scale{scale}"
        d.mkdir(parents=True)
        for f in range(frames):
            counts = (np.arange(h * w).reshape(h, w) * 7 + f * 1000 + int(scale)).astype(np.uint16)
            tifffile.imwrite(d / f"DJI_{f:04d}.tif", counts)
    return [(f, r, c) for f in range(frames) for r, c in cars[f]]


