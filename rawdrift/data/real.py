"""The paper's real raw datasets, Raw-Microscopy and Raw-Drone (Zenodo record 5235536).

Both read from a folder laid out the way the authors' code expects (an extra
top-level folder, such as the one an archive unpacks to, is tolerated)::

    ROOT/microscopy/images/raw_scale100/<name>.tiff   16-bit Bayer RGGB patches
    ROOT/microscopy/images/raw_scale001 ... 075/      the six intensity variants
    ROOT/microscopy/labels/Ma190c_annotations.dat     "<name> <CODE>" per line
    ROOT/drone/images_full/raw_scale100/<frame>.tif   full 16-bit Bayer frames
    ROOT/drone/masks_full/<frame>.png                 car masks (non-zero = car)

Intensity ``s`` reads folder ``raw_scale{round(100 s):03d}``: 1.0 is ``raw_scale100``,
0.01 is ``raw_scale001``. Raw values are 16-bit counts / 65535, black level
not subtracted (the camera records :data:`~rawdrift.isp.camera.RAW_MICROSCOPY`
and :data:`~rawdrift.isp.camera.RAW_DRONE` hold it for the ISP).

Raw-Drone frames are cut into non-overlapping ``tile_size`` tiles starting at the
top-left corner (remainders dropped); only tiles whose mask holds a car are kept.
The tiles are written once, next to the frames, as ``drone/images_tiles_256/raw_scaleXXX/``
(16-bit ``.tif``) and ``drone/masks_tiles_256/`` (``.png``), named
``<frame index:02d>_<kept tile index:05d>`` like the authors' tiles, so a folder
of tiles made by their code is read as is.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from .._checks import check_int
from ..isp.camera import RAW_DRONE, RAW_MICROSCOPY
from .base import RawDataset

INTENSITIES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)

# The 16 cell codes of the annotation file, and the 9 left after dropping
# classes with <= 4 samples (the paper's classes, in this fixed order).
MICROSCOPY_CODES = (
    "BAS", "EBO", "EOS", "KSC", "LYA", "LYT", "MMZ", "MOB",
    "MON", "MYB", "MYO", "NGB", "NGS", "PMB", "PMO", "UNC",
)  # fmt: skip
MICROSCOPY_CLASSES = ("BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC")
MIN_CLASS_SAMPLES = 5
# Listed in the annotation file but left out by the authors' loader.
MICROSCOPY_EXCLUDED = ("Ma190c_lame3_zone13_composite_Mcropped_2",)
LABEL_FILE = "Ma190c_annotations.dat"

TIFF_EXTS = (".tiff", ".tif")
MASK_EXTS = (".png", ".tif", ".tiff")
_SCALE_RE = re.compile(r"^raw_scale(\d{3})$")

DOWNLOAD_HELP = (
    "Get the data from https://zenodo.org/record/5235536 (DOI 10.5281/zenodo.5235536) and unpack it "
    "under {root}, or pass download=True (CLI: `rawdrift data download {name} --root {root}`)."
)


# ---------------------------------------------------------------------------
# locating the data


def default_root() -> Path:
    """Where the real datasets live unless told otherwise: ``$RAWDRIFT_DATA`` or the cache."""
    from ..io import cache_dir

    env = os.environ.get("RAWDRIFT_DATA")
    return Path(env) if env else cache_dir("datasets")


def find_dataset_dir(root, name: str, marker: str) -> Path | None:
    """``root/name`` holding ``marker``, also one or two folders down (an archive's
    top-level folder, or ``data/``), or ``root`` itself if it is that folder."""
    root = Path(root)
    candidates = [root / name, root] if root.name == name else [root / name]
    if root.is_dir():
        for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            candidates.append(sub / name)
            candidates += [s / name for s in sorted(sub.iterdir()) if s.is_dir() and not s.name.startswith(".")]
    for c in candidates:
        if (c / marker).exists():
            return c
    return None


def scale_folder(intensity) -> str:
    """Folder name for an intensity: ``scale_folder(1.0) == "raw_scale100"``.

    >>> scale_folder(0.05)
    'raw_scale005'
    """
    if isinstance(intensity, bool) or not isinstance(intensity, (int, float)) or not np.isfinite(intensity):
        raise ValueError(f"intensity: expected a number such as 1.0 or 0.05, got {intensity!r}")
    code = round(intensity * 100)
    if abs(intensity * 100 - code) > 1e-6 or not 1 <= code <= 100:
        raise ValueError(
            f"intensity: expected a multiple of 0.01 in (0, 1] (the paper's levels are "
            f"{', '.join(map(str, INTENSITIES))}), got {intensity!r}"
        )
    return f"raw_scale{code:03d}"


def available_intensities(images_dir) -> tuple[float, ...]:
    """Intensities with a ``raw_scaleXXX`` folder under ``images_dir``."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        return ()
    found = [int(m.group(1)) / 100 for p in images_dir.iterdir() if p.is_dir() and (m := _SCALE_RE.match(p.name))]
    return tuple(sorted(found))


def _intensity_dir(images_dir: Path, intensity) -> Path:
    folder = images_dir / scale_folder(intensity)
    if not folder.is_dir():
        have = available_intensities(images_dir)
        listed = ", ".join(map(str, have)) if have else "none"
        raise ValueError(f"intensity: no folder {folder} for intensity {intensity}; available intensities: {listed}")
    return folder


def _find_image(folder: Path, stem: str, exts=TIFF_EXTS) -> Path | None:
    for ext in exts:
        for e in (ext, ext.upper()):
            p = folder / f"{stem}{e}"
            if p.is_file():
                return p
    return None


def _strip_ext(name: str) -> str:
    low = name.lower()
    for ext in TIFF_EXTS:
        if low.endswith(ext):
            return name[: -len(ext)]
    return name


# ---------------------------------------------------------------------------
# reading files with checks


def read_tiff16(path) -> np.ndarray:
    """Read a single-channel 16-bit TIFF as ``uint16 (H, W)``, with errors naming the file."""
    import tifffile

    path = Path(path)
    try:
        a = tifffile.imread(path)
    except Exception as err:  # tifffile raises several types for damaged files
        raise ValueError(f"{path}: cannot read this TIFF (truncated or damaged?): {err}") from None
    if a.dtype != np.uint16:
        bits = a.dtype.itemsize * 8
        raise ValueError(f"{path}: expected 16-bit raw data (uint16), got {bits}-bit {a.dtype}")
    a = np.squeeze(a)
    if a.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel Bayer mosaic, got shape {a.shape}")
    if a.shape[0] % 2 or a.shape[1] % 2:
        raise ValueError(f"{path}: expected even height and width (Bayer 2x2 tiles), got {a.shape[0]}x{a.shape[1]}")
    return a


def read_frame16(path) -> np.ndarray:
    """A full raw frame as ``uint16 (H, W)``: 16-bit TIFF, or any raw file rawpy reads (DNG)."""
    path = Path(path)
    if path.suffix.lower() in TIFF_EXTS:
        return read_tiff16(path)
    import rawpy

    try:
        with rawpy.imread(str(path)) as r:
            return np.array(r.raw_image_visible, dtype=np.uint16)
    except rawpy.LibRawError as err:
        raise ValueError(f"{path}: not a raw file rawpy can read ({type(err).__name__})") from None


def read_mask(path) -> np.ndarray:
    """A mask image as ``bool (H, W)``: a pixel is foreground where any colour channel is non-zero."""
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "PA"):
                im = im.convert("RGB")
            a = np.asarray(im)
    except Exception as err:
        raise ValueError(f"{path}: cannot read this mask image: {err}") from None
    if a.ndim == 3:
        a = a[..., :3].max(axis=-1)
    if a.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D mask, got shape {a.shape}")
    return a > 0


def _to_raw(counts: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(counts.astype(np.float32) / 65535.0)[None]


# ---------------------------------------------------------------------------
# Raw-Microscopy


def read_label_file(path) -> list[tuple[str, str]]:
    """``(image name without extension, class code)`` pairs from an annotation file."""
    path = Path(path)
    pairs = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}, line {n}: expected '<file name> <class code>', got {line!r}")
        name, code = parts
        if code not in MICROSCOPY_CODES:
            raise ValueError(f"{path}, line {n}: unknown class code {code!r}; expected one of {' '.join(MICROSCOPY_CODES)}")
        pairs.append((_strip_ext(name), code))
    if not pairs:
        raise ValueError(f"{path}: holds no annotations")
    return pairs


class RawMicroscopy(RawDataset):
    """Raw-Microscopy: 256x256 raw patches of single white blood cells, 9 classes.

    Args:
        root: folder holding ``microscopy/`` (default :func:`default_root`).
        download: fetch the data from Zenodo if it is not found.
        intensity: which raw intensity level to read (see :func:`scale_folder`).
    Raises:
        FileNotFoundError: data not found (the message gives the layout and how to
            download), or the annotation file names an image that is missing.
        ValueError: unknown intensity (the message lists the available ones).

    Samples are ``(raw (1, H, W) float32, class index, meta)``. Classes with
    fewer than 5 annotations are dropped, leaving the paper's 9 in a fixed order.
    """

    name = "raw-microscopy"
    task = "classification"
    camera = RAW_MICROSCOPY

    def __init__(self, root=None, download: bool = False, intensity: float = 1.0):
        root = Path(root) if root is not None else default_root()
        scale_folder(intensity)  # validate before touching the disk
        base = find_dataset_dir(root, "microscopy", f"labels/{LABEL_FILE}")
        if base is None and download:
            from .download import download_dataset

            download_dataset("microscopy", root)
            base = find_dataset_dir(root, "microscopy", f"labels/{LABEL_FILE}")
        if base is None:
            raise FileNotFoundError(_missing_message("raw-microscopy", root, MICROSCOPY_LAYOUT))
        self.root = base
        self.intensity = float(intensity)
        self.label_file = base / "labels" / LABEL_FILE
        self.image_dir = _intensity_dir(base / "images", intensity)
        pairs = read_label_file(self.label_file)
        counts = {c: sum(1 for _, k in pairs if k == c) for c in MICROSCOPY_CODES}
        self.label_counts = {c: n for c, n in counts.items() if n}
        self.classes = tuple(c for c in MICROSCOPY_CODES if counts[c] >= MIN_CLASS_SAMPLES)
        self.dropped_classes = tuple(c for c in MICROSCOPY_CODES if 0 < counts[c] < MIN_CLASS_SAMPLES)
        files, labels, codes = [], [], []
        for stem, code in pairs:
            if code not in self.classes or stem in MICROSCOPY_EXCLUDED:
                continue
            path = _find_image(self.image_dir, stem)
            if path is None:
                raise FileNotFoundError(
                    f"{self.label_file} names image {stem!r}, but neither {stem}.tiff nor {stem}.tif is in {self.image_dir}"
                )
            files.append(path)
            labels.append(self.classes.index(code))
            codes.append(code)
        if not files:
            raise ValueError(f"{self.label_file}: no image belongs to a class with >= {MIN_CLASS_SAMPLES} samples")
        self.files = files
        self.codes = codes
        self._labels = np.asarray(labels, dtype=np.int64)

    @property
    def targets(self) -> np.ndarray:
        return self._labels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        counts = read_tiff16(self.files[index])
        meta = {"index": index, "intensity": self.intensity, "file": str(self.files[index]), "code": self.codes[index]}
        return _to_raw(counts), int(self._labels[index]), meta

    def summary(self) -> dict:
        """What was found: folders, counts per class, intensities available."""
        per_class = {c: int((self._labels == i).sum()) for i, c in enumerate(self.classes)}
        return {
            "dataset": self.name,
            "root": str(self.root),
            "images": str(self.image_dir),
            "intensity": self.intensity,
            "intensities_available": list(available_intensities(self.root / "images")),
            "samples": len(self),
            "classes": list(self.classes),
            "per_class": per_class,
            "dropped_classes": {c: self.label_counts[c] for c in self.dropped_classes},
            "paper_classes": self.classes == MICROSCOPY_CLASSES,
        }


MICROSCOPY_LAYOUT = """\
  microscopy/images/raw_scale100/<name>.tiff   (16-bit raw patches; also raw_scale001 ... raw_scale075)
  microscopy/labels/Ma190c_annotations.dat     ('<name> <CLASS>' per line)"""

DRONE_LAYOUT = """\
  drone/images_full/raw_scale100/<frame>.tif   (16-bit raw frames; also raw_scale001 ... raw_scale075)
  drone/masks_full/<frame>.png                 (car masks, non-zero = car)"""


def _missing_message(name: str, root: Path, layout: str) -> str:
    return (
        f"{name}: data not found under {root}. Expected this layout (an extra top-level folder is fine):\n"
        f"{layout}\n" + DOWNLOAD_HELP.format(root=root, name=name)
    )


# ---------------------------------------------------------------------------
# Raw-Drone


def tile_origins(height: int, width: int, tile: int) -> list[tuple[int, int]]:
    """Top-left corners of the non-overlapping ``tile`` x ``tile`` grid, raster order.

    >>> tile_origins(5, 7, 2)
    [(0, 0), (0, 2), (0, 4), (2, 0), (2, 2), (2, 4)]
    """
    return [(r, c) for r in range(0, height - tile + 1, tile) for c in range(0, width - tile + 1, tile)]


class RawDrone(RawDataset):
    """Raw-Drone: raw tiles of aerial frames with binary car masks.

    Args:
        root: folder holding ``drone/`` (default :func:`default_root`).
        download: fetch the data from Zenodo if it is not found.
        intensity: which raw intensity level to read.
        tile_size: tile edge in pixels (256 in the paper), even.
    Raises:
        FileNotFoundError: data not found (the message gives the layout and how to download).
        ValueError: unknown intensity, a frame without a mask, or a mask whose size
            differs from its frame (the messages name the files).

    Samples are ``(raw (1, T, T) float32, mask (1, T, T) float32 in {0, 1}, meta)``.
    Every tile holds a car, so :attr:`targets` (has foreground) is all ones.
    """

    name = "raw-drone"
    task = "segmentation"
    classes = ("background", "car")
    camera = RAW_DRONE

    def __init__(self, root=None, download: bool = False, intensity: float = 1.0, tile_size: int = 256):
        root = Path(root) if root is not None else default_root()
        folder = scale_folder(intensity)
        check_int(tile_size, "tile_size", minimum=2, even=True)
        marker_full, marker_tiles = "masks_full", f"masks_tiles_{tile_size}"
        base = find_dataset_dir(root, "drone", marker_full) or find_dataset_dir(root, "drone", marker_tiles)
        if base is None and download:
            from .download import download_dataset

            download_dataset("drone", root)
            base = find_dataset_dir(root, "drone", marker_full)
        if base is None:
            raise FileNotFoundError(_missing_message("raw-drone", root, DRONE_LAYOUT))
        self.root = base
        self.intensity = float(intensity)
        self.tile_size = tile_size
        self.tile_dir = base / f"images_tiles_{tile_size}" / folder
        self.mask_dir = base / f"masks_tiles_{tile_size}"
        if not (self.tile_dir.is_dir() and self.mask_dir.is_dir()):
            make_drone_tiles(base, intensity, tile_size)
        self.index = _read_tile_index(base, tile_size)
        self.tiles, self.masks = [], []
        for mask in sorted(p for p in self.mask_dir.iterdir() if p.suffix.lower() in MASK_EXTS):
            tile = _find_image(self.tile_dir, mask.stem)
            if tile is None:
                raise FileNotFoundError(f"{mask}: no tile {mask.stem}.tif in {self.tile_dir}")
            self.tiles.append(tile)
            self.masks.append(mask)
        if not self.tiles:
            raise ValueError(f"{self.mask_dir}: holds no tiles (no mask contains a car?)")

    @property
    def targets(self) -> np.ndarray:
        return np.ones(len(self.tiles), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, index: int):
        counts = read_tiff16(self.tiles[index])
        mask = read_mask(self.masks[index])
        if mask.shape != counts.shape:
            raise ValueError(f"{self.masks[index]}: mask is {mask.shape}, but tile {self.tiles[index].name} is {counts.shape}")
        stem = self.tiles[index].stem
        meta = {"index": index, "intensity": self.intensity, "file": str(self.tiles[index]), "tile": stem}
        meta.update(self.index.get(stem, {}))
        return _to_raw(counts), torch.from_numpy(mask.astype(np.float32))[None], meta

    def summary(self) -> dict:
        frames = sorted({m.get("frame") for m in self.index.values() if "frame" in m})
        return {
            "dataset": self.name,
            "root": str(self.root),
            "tiles_dir": str(self.tile_dir),
            "intensity": self.intensity,
            "intensities_available": list(available_intensities(self.root / "images_full"))
            or list(available_intensities(self.root / f"images_tiles_{self.tile_size}")),
            "tile_size": self.tile_size,
            "tiles": len(self),
            "frames": len(frames) if frames else None,
        }


def _frame_files(base: Path, intensity) -> list[Path]:
    folder = _intensity_dir(base / "images_full", intensity)
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in (*TIFF_EXTS, ".dng"))
    if not frames:
        raise FileNotFoundError(f"{folder}: no raw frames (.tif, .tiff or .dng)")
    return frames


def _mask_for(frame: Path, mask_dir: Path) -> Path:
    masks = sorted(p for p in mask_dir.iterdir() if p.suffix.lower() in MASK_EXTS)
    exact = [m for m in masks if m.stem == frame.stem]
    near = exact or [m for m in masks if frame.stem in m.stem]
    if len(near) != 1:
        what = "no mask" if not near else f"{len(near)} masks ({', '.join(m.name for m in near)})"
        raise ValueError(f"{frame}: found {what} for this frame in {mask_dir}; expected one named {frame.stem}.png")
    return near[0]


def _read_tile_index(base: Path, tile_size: int) -> dict:
    path = base / f"tiles_{tile_size}_index.json"
    if not path.is_file():
        return {}
    return {t["tile"]: {k: v for k, v in t.items() if k != "tile"} for t in json.loads(path.read_text())["tiles"]}


def make_drone_tiles(base, intensity: float = 1.0, tile_size: int = 256) -> Path:
    """Cut the full frames of one intensity (and the masks, once) into tiles that hold cars.

    Each output folder is written to a temporary folder and renamed into place, so
    an interrupted run never leaves a folder that looks complete. The tile
    selection comes from the masks only, so every intensity gets the same tiles.
    Returns the tile folder of ``intensity``.
    """
    from PIL import Image
    import tifffile

    base = Path(base)
    mask_full = base / "masks_full"
    if not mask_full.is_dir():
        raise FileNotFoundError(f"{mask_full}: no full-frame masks to tile from")
    frames = _frame_files(base, intensity)
    tile_root = base / f"images_tiles_{tile_size}"
    out_dir = tile_root / scale_folder(intensity)
    mask_out = base / f"masks_tiles_{tile_size}"
    index_path = base / f"tiles_{tile_size}_index.json"

    # 1. choose the tiles from the masks and check every frame matches its mask
    selection: list[dict] = []
    masks: dict[str, np.ndarray] = {}
    for n, frame in enumerate(frames):
        mpath = _mask_for(frame, mask_full)
        mask = read_mask(mpath)
        shape = _frame_shape(frame)
        if mask.shape != shape:
            raise ValueError(
                f"{mpath}: mask is {mask.shape[0]}x{mask.shape[1]}, but frame {frame} is {shape[0]}x{shape[1]}"
            )
        kept = 0
        for r, c in tile_origins(*mask.shape, tile_size):
            m = mask[r : r + tile_size, c : c + tile_size]
            if m.any():
                name = f"{n:02d}_{kept:05d}"
                selection.append({"tile": name, "frame": frame.stem, "row": r, "col": c})
                masks[name] = m
                kept += 1
    if not selection:
        raise ValueError(f"{mask_full}: no {tile_size}x{tile_size} tile of any mask contains a car")

    # 2. mask tiles and the index (once), 3. raw tiles of this intensity
    if not mask_out.is_dir():
        with _staging(mask_out) as tmp:
            for name, m in masks.items():
                Image.fromarray(m).save(tmp / f"{name}.png")
    if not index_path.exists():
        from ..io import write_json

        write_json(index_path, {"tile_size": tile_size, "tiles": selection})
    with _staging(out_dir) as tmp:
        for frame in frames:
            counts = read_frame16(frame)
            for t in (t for t in selection if t["frame"] == frame.stem):
                r, c = t["row"], t["col"]
                tifffile.imwrite(tmp / f"{t['tile']}.tif", counts[r : r + tile_size, c : c + tile_size])
    return out_dir


def _frame_shape(path: Path) -> tuple[int, int]:
    if path.suffix.lower() in TIFF_EXTS:
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                shape = tuple(s for s in page.shape if s != 1)
                bits = page.bitspersample
        except Exception as err:
            raise ValueError(f"{path}: cannot read this TIFF (truncated or damaged?): {err}") from None
        if bits != 16:
            raise ValueError(f"{path}: expected 16-bit raw data (uint16), got {bits}-bit")
        if len(shape) != 2:
            raise ValueError(f"{path}: expected a single-channel Bayer mosaic, got shape {page.shape}")
        return shape
    return read_frame16(path).shape


class _staging:
    """Context manager: yield a temporary folder beside ``target``; rename it onto
    ``target`` on success, delete it on error."""

    def __init__(self, target: Path):
        self.target = Path(target)

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", suffix=".part", dir=self.target.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and not self.target.exists():
            os.replace(self.tmp, self.target)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False
