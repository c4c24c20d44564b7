"""Synthetic raw datasets: the embedded default data of rawdrift.

Both datasets are physically modelled scenes rendered in linear radiance,
blurred by the optics' point-spread function, sampled through an RGGB colour
filter array and recorded by a :class:`~rawdrift.raw.sensor.SensorModel`
(photon shot noise, read noise, black level, 16-bit quantisation). They are
**synthetic**: they mimic the structure of the paper's Raw-Microscopy and
Raw-Drone datasets, not their pixels.

- :class:`SyntheticMicroscopy`: single white blood cells in bright-field
  transmission (Beer-Lambert absorbance of stained nucleus, cytoplasm and
  granules; red blood cells in the background), 9 classes with the paper's
  names and proportions.
- :class:`SyntheticDrone`: top-down ground patches at 6 cm ground sampling with
  grass, soil, pavement, roads with markings, trees and cars with shadows, plus
  exact binary car masks.

``size`` sets the sampling of a fixed field of view (256 reference pixels: a
~41 µm microscope field, a 15.36 m ground patch); a smaller ``size`` renders
the same scenes with coarser pixels, so cells and cars keep their relative size.

Everything is deterministic from ``seed``. A dataset is generated in vectorised
chunks on first use and cached as a ``.npz`` under
``rawdrift.io.cache_dir("synthetic")``; the cache key hashes :data:`VERSION`
and every parameter. Intensity variants (same ``seed``, other ``intensity``)
share the noise-free scenes and differ only in the capture: the photon budget
is scaled before noise is drawn.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import torch
from torch import Tensor

from .._checks import check_int
from ..io import cache_dir, write_npz
from ..raw.sensor import DRONE_SENSOR, MICROSCOPY_SENSOR, WHITE_DN, SensorModel, check_intensity
from .base import RawDataset

# Bump whenever a change to this file changes generated data (it is part of the cache key).
VERSION = 5

REF = 256.0  # reference field of view in reference pixels
CHUNK = 32  # samples rendered per vectorised batch (fixed: part of the noise streams)

MICROSCOPY_CLASSES = ("BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC")
MICROSCOPY_PROPORTIONS = (0.0191, 0.0574, 0.1734, 0.0319, 0.2447, 0.2032, 0.0085, 0.2298, 0.0319)


# --------------------------------------------------------------------------- helpers
def class_counts(n: int, proportions=MICROSCOPY_PROPORTIONS, minimum: int = 3) -> np.ndarray:
    """Samples per class for ``n`` samples: at least ``min(minimum, n // K)`` each, the
    rest by the largest-remainder method on ``proportions``.

    >>> class_counts(72).tolist()
    [3, 3, 11, 3, 17, 14, 3, 15, 3]
    >>> int(class_counts(940).sum())
    940
    """
    check_int(n, "n", minimum=1)
    p = np.asarray(proportions, dtype=np.float64)
    p = p / p.sum()
    base = min(minimum, n // len(p))
    # classes whose proportional share already exceeds the floor keep their share
    share = p * n
    counts = np.maximum(np.floor(share).astype(np.int64), base)
    while counts.sum() > n:  # remove from the classes furthest above their share
        i = np.argmax(np.where(counts > base, counts - share, -np.inf))
        counts[i] -= 1
    while counts.sum() < n:  # add to the classes furthest below their share
        i = np.argmax(share - counts)
        counts[i] += 1
    return counts


def _grid(size: int) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates ``(X, Y)`` of shape ``(S, S)`` in reference pixels."""
    c = (torch.arange(size, dtype=torch.float32) + 0.5) * (REF / size)
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return xx, yy


def _local(xx, yy, cx, cy, theta):
    """Rotate coordinates into frames centred at ``(cx, cy)`` with angle ``theta`` (all ``(n,)``)."""
    dx = xx - cx[:, None, None]
    dy = yy - cy[:, None, None]
    c, s = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    return c * dx + s * dy, -s * dx + c * dy


def _t(a) -> Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float32)


def _col(a) -> Tensor:
    """``(n,)`` -> ``(n, 1, 1)`` tensor for broadcasting over an image."""
    return _t(a)[:, None, None]


def _smooth_noise(n: int, size: int, sigma_ref, gen: torch.Generator, angle=None, aspect=1.0) -> Tensor:
    """Gaussian-filtered white noise ``(n, S, S)`` with unit standard deviation per sample.

    ``sigma_ref`` (scalar or ``(n,)``) is the correlation length in reference pixels;
    with ``angle`` (``(n,)``) and ``aspect`` > 1 the texture is streaked along ``angle``.
    """
    w = torch.randn(n, size, size, generator=gen)
    fy = torch.fft.fftfreq(size)[:, None]
    fx = torch.fft.rfftfreq(size)[None, :]
    sig = torch.as_tensor(sigma_ref, dtype=torch.float32).reshape(-1, 1, 1) * (size / REF)
    if angle is None:
        k2 = (fx**2 + fy**2)[None] * sig**2
    else:
        a = _col(angle)
        ku = torch.cos(a) * fx + torch.sin(a) * fy
        kv = -torch.sin(a) * fx + torch.cos(a) * fy
        k2 = (ku * aspect) ** 2 * sig**2 + kv**2 * sig**2
    out = torch.fft.irfft2(torch.fft.rfft2(w) * torch.exp(-2 * math.pi**2 * k2), s=(size, size))
    return (out - out.mean(dim=(1, 2), keepdim=True)) / out.std(dim=(1, 2), keepdim=True).clamp_min(1e-8)


def gaussian_blur(x: Tensor, sigma_px: float) -> Tensor:
    """Gaussian blur of ``(B, C, H, W)`` (``scipy.ndimage.gaussian_filter`` over H and W,
    ``reflect`` borders, truncated at 4 sigma); a no-op below 0.2 px."""
    from scipy.ndimage import gaussian_filter

    if sigma_px < 0.2:
        return x
    out = gaussian_filter(x.detach().cpu().numpy(), sigma=(0, 0, sigma_px, sigma_px), mode="reflect", truncate=4.0)
    return torch.from_numpy(out).to(x.device)


def _soft(d: Tensor, soft: float) -> Tensor:
    return torch.sigmoid(d / soft)


def _check_proportions(proportions, k: int) -> tuple | None:
    """``None``, ``"uniform"`` or ``k`` positive finite weights -> ``None`` or a tuple of ``k`` floats.

    >>> _check_proportions("uniform", 3)
    (1.0, 1.0, 1.0)
    """
    if proportions is None:
        return None
    if isinstance(proportions, str):
        if proportions != "uniform":
            raise ValueError(f"proportions: expected None, 'uniform' or {k} positive weights, got {proportions!r}")
        return (1.0,) * k
    p = np.asarray(proportions, dtype=np.float64)
    if p.shape != (k,) or not np.isfinite(p).all() or (p <= 0).any():
        raise ValueError(f"proportions: expected {k} positive finite weights, got {proportions!r}")
    return tuple(float(v) for v in p)


# ------------------------------------------------------------------------ base class
class SyntheticRawDataset(RawDataset):
    """Shared machinery: argument checks, the cache, noise streams, ``__getitem__``."""

    sensor: SensorModel = MICROSCOPY_SENSOR
    _code = 0

    def __init__(self, n=None, size=None, intensity: float = 1.0, seed: int = 0, cache: bool = True, preset=None):
        from ..presets import get_preset

        if n is None or size is None:
            p = get_preset(preset)
            n = self._preset_n(p) if n is None else n
            size = p.raw_size if size is None else size
        self.n = check_int(n, "n", minimum=1)
        self.size = check_int(size, "size", minimum=16, even=True)
        self.intensity = check_intensity(intensity)
        self.seed = check_int(seed, "seed", minimum=0)
        self.camera = self.sensor.camera(self.name)
        self.cache_path = cache_dir("synthetic") / f"{self.name}-{self.cache_key()}.npz"
        self.cache_hit = False
        arrays = self._load_cache() if cache else None
        self.cache_hit = arrays is not None
        if arrays is None:
            arrays = self._generate()
            if cache:
                write_npz(self.cache_path, **arrays)
        self._arrays = arrays
        self._raw = torch.from_numpy(arrays["raw"].astype(np.float32) / np.float32(WHITE_DN))

    # -- parameters and cache
    def _load_cache(self) -> dict | None:
        """The cached arrays, or ``None`` when missing or unreadable (then they are regenerated)."""
        if not self.cache_path.exists():
            return None
        try:
            with np.load(self.cache_path) as f:
                arrays = {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError):
            return None
        if arrays.get("raw") is None or arrays["raw"].shape != (self.n, self.size, self.size):
            return None
        return arrays

    def params(self) -> dict:
        return {
            "version": VERSION, "name": self.name, "n": self.n, "size": self.size,
            "intensity": self.intensity, "seed": self.seed, "sensor": self.sensor.to_dict(), "chunk": CHUNK,
        }

    def cache_key(self) -> str:
        """Hash of :data:`VERSION` and every parameter that changes the data."""
        blob = json.dumps(self.params(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:20]

    def _scene_rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self._code, 1])

    def _texture_gen(self, chunk: int) -> torch.Generator:
        s = np.random.SeedSequence([self.seed, self._code, 2, chunk]).generate_state(1)[0]
        return torch.Generator().manual_seed(int(s))

    def _noise_gen(self) -> torch.Generator:
        level = int(round(self.intensity * 1e9))
        s = np.random.SeedSequence([self.seed, self._code, 3, level]).generate_state(1)[0]
        return torch.Generator().manual_seed(int(s))

    def _generate(self) -> dict:
        scene = self._draw_scenes(self._scene_rng())
        gen = self._noise_gen()
        raws, extras = [], []
        for c, start in enumerate(range(0, self.n, CHUNK)):
            idx = np.arange(start, min(start + CHUNK, self.n))
            radiance, extra = self._render(scene, idx, self._texture_gen(c))
            raw = self.sensor.capture(radiance, self.intensity, gen)
            raws.append(torch.round(raw[:, 0].double() * WHITE_DN).numpy().astype(np.uint16))
            extras.append(extra)
        out = {"raw": np.concatenate(raws)}
        for k in extras[0]:
            out[k] = np.concatenate([e[k] for e in extras])
        out.update(self._scene_arrays(scene))
        return out

    def radiance(self, indices) -> Tensor:
        """Noise-free linear radiance ``(B, 3, H, W)`` of the scenes ``indices`` (after the PSF).

        Identical for every ``intensity`` with the same ``seed`` and ``size``.
        """
        scene = self._draw_scenes(self._scene_rng())
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= self.n):
            raise ValueError(f"indices: expected values in [0, {self.n}), got {indices.tolist()[:8]}")
        outs = []
        for c in np.unique(indices // CHUNK):  # textures are drawn per chunk: rebuild whole chunks
            idx = np.arange(c * CHUNK, min((c + 1) * CHUNK, self.n))
            rad, _ = self._render(scene, idx, self._texture_gen(int(c)))
            outs.append((idx, rad))
        lookup = {int(i): r for idx, rad in outs for i, r in zip(idx, rad)}
        return torch.stack([lookup[int(i)] for i in indices])

    # -- Dataset protocol
    def __len__(self) -> int:
        return self.n

    def _check_index(self, i) -> int:
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise TypeError(f"index: expected an integer, got {type(i).__name__}")
        i = int(i)
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"index: {i} out of range for a dataset of {self.n} samples")
        return i

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n={self.n}, size={self.size}, intensity={self.intensity}, "
                f"seed={self.seed})")


# ------------------------------------------------------------------------ microscopy
# Absorbances (optical density in natural-log units) per channel R, G, B.
NUCLEUS_OD = np.array([0.95, 1.25, 0.45])  # haematoxylin/azure: purple
RBC_OD = np.array([0.06, 0.42, 0.26])  # eosin-stained haemoglobin: pink-red
CYTO_OD = {  # cytoplasm colour by class
    "BAS": [0.20, 0.22, 0.10], "EOS": [0.05, 0.16, 0.14], "KSC": [0.05, 0.06, 0.03],
    "LYA": [0.55, 0.30, 0.07], "LYT": [0.40, 0.22, 0.06], "MON": [0.28, 0.26, 0.16],
    "NGB": [0.07, 0.15, 0.09], "NGS": [0.07, 0.15, 0.09], "UNC": [0.15, 0.18, 0.10],
}
GRANULE_OD = {  # granule colour, coarse?, density threshold (higher = fewer granules)
    "EOS": ([0.04, 0.62, 0.85], True, -0.3), "BAS": ([1.10, 1.45, 0.55], True, 0.1),
    "NGS": ([0.10, 0.17, 0.09], False, 0.2), "NGB": ([0.10, 0.17, 0.09], False, 0.2),
}
CELL_RADIUS = {  # cell radius range in reference pixels (~0.16 µm each); ranges overlap on purpose
    "BAS": (32, 42), "EOS": (36, 47), "KSC": (38, 58), "LYA": (33, 46), "LYT": (24, 34),
    "MON": (40, 55), "NGB": (35, 46), "NGS": (35, 46), "UNC": (18, 40),
}
MICROSCOPY_PSF_REF = (0.9, 2.0)  # range of the Gaussian PSF sigma (focus varies) in reference pixels
MAX_RBC = 7
CONFUSABLE = {"LYT": "LYA", "LYA": "LYT", "NGS": "NGB", "NGB": "NGS", "MON": "LYA", "EOS": "NGS",
              "BAS": "EOS", "KSC": "UNC", "UNC": "KSC"}


def _lobe_union(u, v, centres, radius, soft):
    """Soft union (max) of discs at ``centres`` (list of ``(cu, cv)`` each ``(n,)``) with radius ``(n,)``."""
    out = torch.zeros_like(u)
    for cu, cv in centres:
        d = radius[:, None, None] - torch.sqrt((u - cu[:, None, None]) ** 2 + (v - cv[:, None, None]) ** 2)
        out = torch.maximum(out, _soft(d, soft))
    return out


def _nucleus(cls: str, u, v, z: Tensor, soft: float):
    """Nucleus mask ``(n, S, S)`` in cell units (``u, v`` divided by the cell radius).

    ``z``: ``(n, 12)`` uniforms driving the shape. Returns (mask, stain strength (n,)).
    """
    n = u.shape[0]
    one = torch.ones(n)
    r = torch.sqrt(u**2 + v**2)
    phi = torch.atan2(v, u)
    if cls in ("LYT", "LYA", "BAS"):
        a = {"LYT": 0.80, "LYA": 0.60, "BAS": 0.55}[cls] + 0.08 * z[:, 0]
        b = a * (0.88 + 0.1 * z[:, 1])
        off = {"LYT": 0.06, "LYA": 0.22, "BAS": 0.1}[cls] * z[:, 2]
        wobble = 1 + (0.02 if cls == "LYT" else 0.07) * torch.cos(3 * phi + 6.28 * z[:, 3, None, None])
        rr = torch.sqrt(((u - off[:, None, None]) / a[:, None, None]) ** 2 + (v / b[:, None, None]) ** 2)
        mask = _soft((wobble - rr) * a[:, None, None], soft)
        strength = {"LYT": 1.45, "LYA": 1.1, "BAS": 0.8}[cls] * one
    elif cls == "MON":
        a, b = 0.62 + 0.06 * z[:, 0], 0.50 + 0.06 * z[:, 1]
        rr = torch.sqrt(((u + 0.08) / a[:, None, None]) ** 2 + (v / b[:, None, None]) ** 2)
        body = _soft((1 - rr) * b[:, None, None], soft)
        ci = 0.40 + 0.25 * z[:, 2]  # notch depth varies: some monocyte nuclei are nearly oval
        notch = _soft(0.30 + 0.06 * z[:, 3, None, None] - torch.sqrt((u - ci[:, None, None]) ** 2 + v**2), soft)
        mask = body * (1 - notch)
        strength = 0.85 * one
    elif cls == "NGS":
        k = 2 + (z[:, 0] * 4).floor().clamp(max=3)  # 2..5 lobes
        span = 3.4 + 1.2 * z[:, 1]
        ring = 0.40 + 0.05 * z[:, 2]
        rad = 0.20 + 0.05 * z[:, 3]
        centres = []
        for j in range(5):
            ang = -span / 2 + span * j / (k - 1).clamp(min=1)
            active = (j < k).float()
            far = 99.0 * (1 - active)  # inactive lobes move out of view
            centres.append((ring * torch.cos(ang) + far, ring * torch.sin(ang) + far))
        lobes = _lobe_union(u, v, centres, rad, soft)
        ang_in = (torch.cos(phi) > torch.cos(span / 2)[:, None, None]).float()
        strand = _soft(0.045 - (r - ring[:, None, None]).abs(), soft) * ang_in
        mask = torch.maximum(lobes, strand)
        strength = 1.35 * one
    elif cls == "NGB":
        ring = 0.44 + 0.05 * z[:, 0]
        half = 0.12 + 0.04 * z[:, 1]
        span = 3.8 + 1.2 * z[:, 2]  # angular extent of the band
        band = _soft(half[:, None, None] - (r - ring[:, None, None]).abs(), soft)
        ends = _soft((torch.cos(phi) - torch.cos(span / 2)[:, None, None]) * ring[:, None, None], soft * 0.5)
        caps = _lobe_union(u, v, [(ring * torch.cos(s * span / 2), ring * torch.sin(s * span / 2)) for s in (-1, 1)],
                           half, soft)
        mask = torch.maximum(band * ends, caps)
        strength = 1.3 * one
    elif cls == "EOS":
        sep = 0.34 + 0.06 * z[:, 0]
        rad = 0.27 + 0.04 * z[:, 1]
        lobes = _lobe_union(u, v, [(-sep, 0.08 * z[:, 2]), (sep, 0.08 * z[:, 3])], rad, soft)
        bridge = _soft(0.05 - v.abs(), soft) * (u.abs() < sep[:, None, None]).float()
        mask = torch.maximum(lobes, bridge)
        strength = 1.2 * one
    elif cls == "KSC":
        wob = 1 + 0.18 * torch.cos(2 * phi + 6.28 * z[:, 0, None, None]) + 0.1 * torch.cos(5 * phi + 6.28 * z[:, 1, None, None])
        mask = _soft((0.85 * wob - r) * 0.85, soft * 2)
        strength = 0.55 + 0.15 * z[:, 2]
    else:  # UNC: a few irregular fragments of random stain
        centres = [((z[:, 2 * j] - 0.5) * 1.2, (z[:, 2 * j + 1] - 0.5) * 1.2) for j in range(3)]
        mask = _lobe_union(u, v, centres, 0.18 + 0.2 * z[:, 6], soft)
        strength = 0.4 + 0.8 * z[:, 7]
    return mask, strength


class SyntheticMicroscopy(SyntheticRawDataset):
    """Synthetic bright-field images of single white blood cells, 9 classes.

    Args:
        n: number of patches (default: the preset's ``n_microscopy``).
        size: even side of the square raw patches (default: the preset's ``raw_size``).
        intensity: photon-budget factor in (0, 1] (the paper's raw intensity levels).
        seed: scene and noise seed.
        cache: read/write the on-disk cache.
        preset: preset name filling ``n``/``size`` left at ``None`` (default: ``RAWDRIFT_PRESET``, else ``lab``).

    Class morphology (cell radius in ~0.16 µm reference pixels): LYT small round dense
    nucleus, thin blue cytoplasm; LYA larger, eccentric irregular nucleus, deep blue
    cytoplasm; MON large, kidney-shaped lighter nucleus, grey-blue cytoplasm; NGS 2-5
    lobes joined by strands; NGB a C-shaped band; EOS bilobed with orange granules;
    BAS dark purple granules obscuring the nucleus; KSC a pale smeared smudge of
    streaky chromatin without cytoplasm; UNC debris fragments. Size ranges overlap
    between classes, and stain strength, colour tint, focus (PSF width) and
    granule density vary per cell.

    ``ambiguity`` (default 0.08) is the fraction of cells drawn with the morphology
    of a confusable class while keeping their own label (LYT<->LYA, NGS<->NGB,
    MON->LYA, EOS->NGS, BAS->EOS, KSC<->UNC): a model of transitional forms and of
    annotator disagreement, which keeps the task from being trivially separable
    (a small CNN reaches roughly 90% rather than 100%).

    ``proportions`` (default ``None``: the paper's class proportions,
    :data:`MICROSCOPY_PROPORTIONS`) sets the class profile: nine positive weights, or
    ``"uniform"`` for equal class counts (a balanced pool from which
    :func:`rawdrift.data.make_imbalanced` draws controlled profiles).
    """

    name = "synthetic-microscopy"
    task = "classification"
    classes = MICROSCOPY_CLASSES
    sensor = MICROSCOPY_SENSOR
    _code = 11

    def __init__(self, n=None, size=None, intensity: float = 1.0, seed: int = 0, cache: bool = True, preset=None,
                 ambiguity: float = 0.08, proportions=None):
        from .._checks import check_range

        self.ambiguity = float(check_range(ambiguity, "ambiguity", 0.0, 1.0))
        self.proportions = _check_proportions(proportions, len(self.classes))
        super().__init__(n=n, size=size, intensity=intensity, seed=seed, cache=cache, preset=preset)

    def params(self) -> dict:
        extra = {} if self.proportions is None else {"proportions": list(self.proportions)}
        return {**super().params(), "ambiguity": self.ambiguity, **extra}

    @staticmethod
    def _preset_n(p):
        return p.n_microscopy

    def _draw_scenes(self, rng) -> dict:
        n = self.n
        counts = class_counts(n) if self.proportions is None else class_counts(n, self.proportions)
        labels = rng.permutation(np.repeat(np.arange(len(self.classes)), counts))
        partner = np.array([self.classes.index(CONFUSABLE[c]) for c in self.classes])
        shape = np.where(rng.random(n) < self.ambiguity, partner[labels], labels)
        lo = np.array([CELL_RADIUS[c][0] for c in self.classes])[shape]
        hi = np.array([CELL_RADIUS[c][1] for c in self.classes])[shape]
        rbc_n = rng.integers(2, MAX_RBC + 1, size=n)
        return {
            "labels": labels,
            "shape": shape,
            "radius": rng.uniform(lo, hi),
            "centre": REF / 2 + rng.normal(0, 8, size=(n, 2)),
            "theta": rng.uniform(0, 2 * np.pi, size=n),
            "ecc": rng.uniform(0.0, 0.12, size=n),
            "harm": rng.uniform(0, 2 * np.pi, size=(n, 3)),
            "z": rng.random((n, 12)),
            "stain": np.exp(rng.normal(0, 0.2, size=(n, 2))),  # nuclear and eosin stain strength
            "tint": rng.normal(0, 0.06, size=(n, 3)),
            "psf": rng.uniform(*MICROSCOPY_PSF_REF, size=n),
            "granule_shift": rng.normal(0, 0.25, size=n),
            "illum": rng.uniform(0.90, 0.96, size=n),
            "rbc_active": np.arange(MAX_RBC)[None, :] < rbc_n[:, None],
            "rbc_angle": rng.uniform(0, 2 * np.pi, size=(n, MAX_RBC)),
            "rbc_dist": rng.uniform(0.0, 1.0, size=(n, MAX_RBC)),
            "rbc_radius": rng.uniform(22, 28, size=(n, MAX_RBC)),
            "rbc_shape": rng.uniform(0.85, 1.0, size=(n, MAX_RBC)),
        }

    def _scene_arrays(self, scene) -> dict:
        return {"labels": scene["labels"].astype(np.int64), "shape": scene["shape"].astype(np.int64)}

    def _render(self, scene, idx, gen):
        n, s = len(idx), self.size
        xx, yy = _grid(s)
        soft = max(0.6, 0.5 * REF / s)  # edge width in reference pixels: at least half an output pixel
        sel = {k: v[idx] for k, v in scene.items()}
        labels = sel["shape"]  # the morphology drawn (differs from the label for ambiguous cells)
        R = _t(sel["radius"])
        u, v = _local(xx, yy, _t(sel["centre"][:, 0]), _t(sel["centre"][:, 1]), _t(sel["theta"]))
        e = _col(sel["ecc"])
        un, vn = u / (R[:, None, None] * (1 + e)), v / (R[:, None, None] / (1 + e))
        rn = torch.sqrt(un**2 + vn**2)
        phi = torch.atan2(vn, un)
        h = _t(sel["harm"])
        is_irregular = _col(np.isin(labels, [self.classes.index("KSC"), self.classes.index("UNC")]).astype(np.float32))
        amp = 0.03 + 0.12 * is_irregular
        rb = 1 + amp * (torch.cos(2 * phi + h[:, 0, None, None]) + 0.6 * torch.cos(3 * phi + h[:, 1, None, None])
                        + 0.4 * torch.cos(5 * phi + h[:, 2, None, None]))
        cell = _soft((rb - rn) * R[:, None, None], soft)

        chrom = _smooth_noise(n, s, 2.0, gen)
        fine = _smooth_noise(n, s, 1.0, gen)
        coarse = _smooth_noise(n, s, 2.2, gen)
        streak = _smooth_noise(n, s, 1.5, gen, angle=_t(sel["theta"]), aspect=6.0)
        vac = _smooth_noise(n, s, 2.5, gen)

        z = _t(sel["z"])
        nucleus = torch.zeros(n, s, s)
        nuc_strength = torch.zeros(n)
        cyto_od = torch.zeros(n, 3)
        gran = torch.zeros(n, 3, s, s)
        for ci, cname in enumerate(self.classes):
            m = np.flatnonzero(labels == ci)
            if m.size == 0:
                continue
            mt = torch.as_tensor(m)
            mask, strength = _nucleus(cname, un[mt], vn[mt], z[mt], soft / R[mt].mean().item())
            if cname == "KSC":
                mask = mask * (0.45 + 0.55 * torch.sigmoid(2 * streak[mt]))
            nucleus[mt] = mask
            nuc_strength[mt] = strength
            cyto_od[mt] = _t(CYTO_OD[cname])
            if cname in GRANULE_OD:
                colour, is_coarse, thr = GRANULE_OD[cname]
                tex = coarse[mt] if is_coarse else fine[mt]
                g = _soft(tex - thr - _col(sel["granule_shift"][m]), 0.15) * cell[mt]
                if cname == "EOS":
                    g = g * (1 - 0.8 * nucleus[mt])
                gran[mt] = g[:, None] * _t(colour)[None, :, None, None]
        stain = _t(sel["stain"])
        chrom_tex = (1 + 0.25 * chrom).clamp(0.4, 1.6)
        is_mon = _col((labels == self.classes.index("MON")).astype(np.float32))
        vacuoles = 1 - 0.6 * is_mon * _soft(vac - 1.3, 0.15)
        cyto_mask = cell * (1 - nucleus) * vacuoles
        is_lya = _col((labels == self.classes.index("LYA")).astype(np.float32))
        cyto_mask = cyto_mask * (1 + 0.6 * is_lya * rn.clamp(max=1) ** 2)  # LYA: darker cytoplasm rim
        od = (
            (nucleus * chrom_tex * (nuc_strength * stain[:, 0])[:, None, None])[:, None] * _t(NUCLEUS_OD)[None, :, None, None]
            + cyto_mask[:, None] * cyto_od[:, :, None, None] * stain[:, 1, None, None, None]
            + gran * stain[:, 0, None, None, None]
        )
        # red blood cells: discs with central pallor, outside the white cell
        rbc = torch.zeros(n, s, s)
        ctr = _t(sel["centre"])
        for j in range(MAX_RBC):  # vectorised over the samples that have red cell j
            mi = np.flatnonzero(sel["rbc_active"][:, j])
            if mi.size == 0:
                continue
            m = torch.as_tensor(mi)
            rr = _col(sel["rbc_radius"][mi, j])
            dist = R[m] * (1 + _t(sel["ecc"][mi])) + 0.7 * rr[:, 0, 0] + _t(sel["rbc_dist"][mi, j]) * 140
            ang = _t(sel["rbc_angle"][mi, j])
            cx, cy = ctr[m, 0] + dist * torch.cos(ang), ctr[m, 1] + dist * torch.sin(ang)
            ru, rv = _local(xx, yy, cx, cy, ang)
            d = torch.sqrt(ru**2 + (rv / _col(sel["rbc_shape"][mi, j])) ** 2)
            disc = _soft(rr - d, soft) * (1 - 0.55 * torch.exp(-((d / (0.45 * rr)) ** 2)))
            rbc[m] = rbc[m] + disc
        od = od + rbc.clamp(max=1.6)[:, None] * _t(RBC_OD)[None, :, None, None] * stain[:, 1, None, None, None]
        od = od * (1 + _t(sel["tint"]))[:, :, None, None] + _t([0.02, 0.03, 0.02])[None, :, None, None]
        field = ((xx - REF / 2) ** 2 + (yy - REF / 2) ** 2) / (REF / 2) ** 2
        illum = _col(sel["illum"])[:, None] * (1 - 0.06 * field)[None, None] * _t([0.97, 1.0, 0.96])[None, :, None, None]
        sharp = illum * torch.exp(-od)
        radiance = torch.stack([gaussian_blur(sharp[k : k + 1], float(sel["psf"][k]) * s / REF)[0] for k in range(n)])
        radiance = radiance.clamp(0, 1)
        extra = {"nucleus_area": (nucleus > 0.5).float().mean(dim=(1, 2)).numpy() * REF**2 / 1.0}
        return radiance, extra

    @property
    def targets(self) -> np.ndarray:
        return self._arrays["labels"]

    def __getitem__(self, i):
        i = self._check_index(i)
        label = int(self._arrays["labels"][i])
        meta = {"index": i, "intensity": self.intensity, "seed": self.seed, "class_name": self.classes[label],
                "morphology": self.classes[int(self._arrays["shape"][i])],
                "nucleus_area": float(self._arrays["nucleus_area"][i])}
        return self._raw[i : i + 1], label, meta


# ------------------------------------------------------------------------------ drone
GSD_M = 0.06  # ground sampling distance at size 256
DRONE_PSF_REF = 2.52  # PSF sigma in reference pixels (the paper's measured value)
MAX_CARS = 8
MAX_TREES = 4
GROUND = np.array([  # linear reflectances: grass, dry grass, soil, concrete, asphalt
    [0.055, 0.110, 0.040], [0.150, 0.150, 0.075], [0.170, 0.125, 0.085], [0.230, 0.225, 0.210], [0.075, 0.075, 0.080],
])
CAR_COLOURS = np.array([  # white, black, silver, grey, red, blue, dark green, beige
    [0.62, 0.62, 0.63], [0.035, 0.035, 0.04], [0.40, 0.41, 0.43], [0.18, 0.18, 0.19],
    [0.40, 0.04, 0.04], [0.05, 0.10, 0.30], [0.05, 0.12, 0.07], [0.45, 0.38, 0.28],
])
CAR_COLOUR_P = np.array([0.25, 0.2, 0.18, 0.15, 0.08, 0.08, 0.03, 0.03])
CAR_L, CAR_W = 4.5 / GSD_M, 1.8 / GSD_M  # 75 x 30 reference pixels


class SyntheticDrone(SyntheticRawDataset):
    """Synthetic top-down drone patches (6 cm ground sampling at size 256) with car masks.

    Args: as :class:`SyntheticMicroscopy`; ``n`` defaults to the preset's ``n_drone``.

    Scenes are roads (asphalt, dashed centre line, edge lines, cars in lanes),
    parking lots (marked bays, rows of cars) or open ground (grass/soil, a few cars);
    trees with shadows on all three. Cars are oriented 4.5 m x 1.8 m rectangles
    (~75 x 30 px at size 256) of common colours with windscreen, rear window and a
    shadow cast by a per-patch sun direction. About 90% of patches hold at least one
    car. The target is the exact binary car mask ``(1, H, W)`` float32, rasterised
    from the same geometry that painted the cars (before the PSF blur).
    """

    name = "synthetic-drone"
    task = "segmentation"
    classes = ("background", "car")
    sensor = DRONE_SENSOR
    _code = 22

    @staticmethod
    def _preset_n(p):
        return p.n_drone

    def _draw_scenes(self, rng) -> dict:
        n = self.n
        kind = rng.choice(3, size=n, p=[0.45, 0.3, 0.25])  # road, parking, open
        road_angle = rng.uniform(0, np.pi, size=n)
        road_offset = rng.uniform(-50, 50, size=n)
        road_width = rng.uniform(105, 125, size=n)
        cars = np.zeros((n, MAX_CARS, 4))  # cx, cy, angle, colour index
        active = np.zeros((n, MAX_CARS), dtype=bool)
        size_jit = rng.uniform(0.92, 1.08, size=(n, MAX_CARS, 2))
        empty = rng.random(n) < 0.1
        for i in range(n):  # per-sample placement (a few cars each; not per pixel)
            placed = []
            if kind[i] == 0:
                a = road_angle[i]
                along = np.array([np.cos(a), np.sin(a)])
                perp = np.array([-np.sin(a), np.cos(a)])
                k = rng.integers(1, 4)
                for _ in range(k):
                    lane = rng.choice([-1, 1])
                    c = REF / 2 + perp * (road_offset[i] + lane * road_width[i] / 4) + along * rng.uniform(-110, 110)
                    placed.append((c, a + (np.pi if lane < 0 else 0) + rng.normal(0, 0.03)))
            elif kind[i] == 1:
                a = road_angle[i]
                along = np.array([np.cos(a), np.sin(a)])
                perp = np.array([-np.sin(a), np.cos(a)])
                for row in (-1, 1):
                    for slot in range(-3, 4):
                        if rng.random() < 0.45:
                            c = REF / 2 + perp * (road_offset[i] * 0.5 + row * 45) + along * slot * 42
                            placed.append((c + rng.normal(0, 2, 2), a + np.pi / 2 + (np.pi if rng.random() < 0.5 else 0) + rng.normal(0, 0.04)))
            else:
                for _ in range(rng.integers(1, 3)):
                    placed.append((rng.uniform(40, REF - 40, 2), rng.uniform(0, 2 * np.pi)))
            keep = []
            for c, a in placed:  # at most MAX_CARS, no overlapping cars, centre within the patch
                if not (0 <= c[0] < REF and 0 <= c[1] < REF):
                    continue
                if all(np.hypot(*(c - c2)) > 85 or (kind[i] == 1 and np.hypot(*(c - c2)) > 38) for c2, _ in keep):
                    keep.append((c, a))
            if empty[i]:
                keep = []
            for j, (c, a) in enumerate(keep[:MAX_CARS]):
                cars[i, j] = (c[0], c[1], a, rng.choice(len(CAR_COLOURS), p=CAR_COLOUR_P))
                active[i, j] = True
        n_trees = np.where(kind == 1, rng.integers(0, 2, size=n), rng.integers(0, MAX_TREES + 1, size=n))
        return {
            "kind": kind, "road_angle": road_angle, "road_offset": road_offset, "road_width": road_width,
            "cars": cars, "active": active, "size_jit": size_jit,
            "materials": rng.choice([0, 1, 2], size=(n, 2)), "ground_mix": rng.uniform(-0.5, 0.5, size=n),
            "tree_active": np.arange(MAX_TREES)[None, :] < n_trees[:, None],
            "tree_xy": rng.uniform(0, REF, size=(n, MAX_TREES, 2)), "tree_r": rng.uniform(25, 55, size=(n, MAX_TREES)),
            "sun": rng.uniform(0, 2 * np.pi, size=n), "shadow_len": rng.uniform(8, 20, size=n),
            "brightness": rng.uniform(0.85, 1.1, size=n), "tint": rng.normal(0, 0.04, size=(n, 3)),
        }

    def _scene_arrays(self, scene) -> dict:
        return {"kind": scene["kind"].astype(np.int64)}

    def _render(self, scene, idx, gen):
        n, s = len(idx), self.size
        xx, yy = _grid(s)
        soft = max(0.6, 0.5 * REF / s)
        sel = {k: v[idx] for k, v in scene.items()}
        kind = sel["kind"]
        # ground: two materials blended by a large-scale field, with multi-scale texture
        big = _smooth_noise(n, s, 30.0, gen)
        mid = _smooth_noise(n, s, 6.0, gen)
        fine = _smooth_noise(n, s, 1.2, gen)
        mats = sel["materials"].copy()
        mats[kind == 1] = [3, 4]  # parking lots: concrete and asphalt
        w = torch.sigmoid((big - _col(sel["ground_mix"])) * 3)[:, None]
        g0, g1 = _t(GROUND[mats[:, 0]])[:, :, None, None], _t(GROUND[mats[:, 1]])[:, :, None, None]
        refl = (g0 * w + g1 * (1 - w)) * (1 + 0.12 * mid[:, None] + 0.08 * fine[:, None]).clamp(0.5, 1.5)

        ang = _t(sel["road_angle"])
        ru, rv = _local(xx, yy, torch.full((n,), REF / 2), torch.full((n,), REF / 2), ang)
        off = _col(sel["road_offset"])
        rw = _col(sel["road_width"])
        is_road = _col((kind == 0).astype(np.float32))
        is_park = _col((kind == 1).astype(np.float32))
        perp = rv - off
        road = _soft(rw / 2 - perp.abs(), soft) * is_road
        asphalt = _t(GROUND[4])[None, :, None, None] * (1 + 0.06 * fine[:, None] + 0.05 * mid[:, None])
        refl = refl * (1 - road[:, None]) + asphalt * road[:, None]
        line = _t([0.55, 0.55, 0.52])[None, :, None, None]
        dash = _soft(1.25 - perp.abs(), soft * 0.5) * (torch.remainder(ru, 150.0) < 50).float()
        edges = _soft(1.25 - (perp.abs() - (rw / 2 - 6)).abs(), soft * 0.5)
        paint = (dash + edges).clamp(max=1) * is_road
        # parking bays: lines between the cars every 2.5 m (42 px), plus the row ends
        pv = rv - 0.5 * off
        bays = _soft(1.0 - (torch.remainder(ru, 42.0) - 21).abs(), soft * 0.5) * (pv.abs() < 85).float()
        sep = _soft(1.0 - (pv.abs() - 85).abs(), soft * 0.5)
        paint = (paint + (bays + sep).clamp(max=1) * is_park).clamp(max=1)
        refl = refl * (1 - paint[:, None]) + line * paint[:, None]

        sun = _t(sel["sun"])
        sl = _t(sel["shadow_len"])
        sdx, sdy = sl * torch.cos(sun), sl * torch.sin(sun)
        # trees (kept off roads) with shadows
        canopy = torch.zeros(n, s, s)
        tshadow = torch.zeros(n, s, s)
        lumps = _smooth_noise(n, s, 4.0, gen)
        # a tree whose centre lies on a road is dropped
        txy = sel["tree_xy"]
        tperp = (-(txy[..., 0] - REF / 2) * np.sin(sel["road_angle"])[:, None]
                 + (txy[..., 1] - REF / 2) * np.cos(sel["road_angle"])[:, None]) - sel["road_offset"][:, None]
        on_road = (np.abs(tperp) < sel["road_width"][:, None] / 2 + sel["tree_r"]) & (kind == 0)[:, None]
        tree_ok = sel["tree_active"] & ~on_road
        for j in range(MAX_TREES):  # vectorised over the samples that have tree j
            m = torch.as_tensor(np.flatnonzero(tree_ok[:, j]))
            if len(m) == 0:
                continue
            cx, cy = _t(txy[m.numpy(), j, 0]), _t(txy[m.numpy(), j, 1])
            tr = _col(sel["tree_r"][m.numpy(), j])
            d = torch.sqrt((xx - cx[:, None, None]) ** 2 + (yy - cy[:, None, None]) ** 2) / tr
            canopy[m] = torch.maximum(canopy[m], _soft((1 + 0.12 * lumps[m] - d) * tr, soft * 2))
            sx, sy = cx + 1.6 * sdx[m], cy + 1.6 * sdy[m]
            sd = torch.sqrt((xx - sx[:, None, None]) ** 2 + (yy - sy[:, None, None]) ** 2) / tr
            tshadow[m] = torch.maximum(tshadow[m], _soft((1 - sd) * tr, soft * 3))
        # cars: shadows first, then bodies; the mask is rasterised from the same rectangles
        car_id = torch.zeros(n, s, s, dtype=torch.int64)
        cshadow = torch.zeros(n, s, s)
        body = torch.zeros(n, 3, s, s)
        glass_col = _t([0.03, 0.035, 0.045])[None, :, None, None]
        for j in range(MAX_CARS):  # vectorised over the samples that have car j
            mi = np.flatnonzero(sel["active"][:, j])
            if mi.size == 0:
                continue
            m = torch.as_tensor(mi)
            car = sel["cars"][mi, j]
            cx, cy, ca = _t(car[:, 0]), _t(car[:, 1]), _t(car[:, 2])
            L = _col(CAR_L * sel["size_jit"][mi, j, 0])
            W = _col(CAR_W * sel["size_jit"][mi, j, 1])
            cu, cv = _local(xx, yy, cx, cy, ca)
            inside = (cu.abs() <= L / 2) & (cv.abs() <= W / 2)
            su, sv = _local(xx, yy, cx + sdx[m], cy + sdy[m], ca)
            sh = _soft(torch.minimum(L / 2 + 2 - su.abs(), W / 2 + 2 - sv.abs()), soft * 2)
            cshadow[m] = torch.maximum(cshadow[m], sh)
            colour = _t(CAR_COLOURS[car[:, 3].astype(int)])[:, :, None, None]
            roof = 1 + 0.12 * torch.exp(-((cu / (0.2 * L)) ** 2 + (cv / (0.3 * W)) ** 2))  # specular roof highlight
            glass = ((cu > 0.12 * L) & (cu < 0.30 * L) | (cu < -0.28 * L) & (cu > -0.40 * L)) & (cv.abs() < 0.42 * W)
            paint_c = torch.where(glass[:, None], glass_col, colour * roof[:, None])
            body[m] = torch.where(inside[:, None], paint_c, body[m])
            car_id[m] = torch.where(inside, torch.full_like(car_id[m], j + 1), car_id[m])
        mask = car_id > 0
        shade = 1 - 0.65 * torch.maximum(tshadow * (1 - canopy), cshadow)
        refl = refl * shade[:, None]
        tree_col = _t([0.030, 0.065, 0.025])[None, :, None, None] * (1 + 0.35 * lumps[:, None]).clamp(0.3, 1.8)
        refl = refl * (1 - canopy[:, None]) + tree_col * canopy[:, None]
        refl = torch.where(mask[:, None], body, refl)
        refl = refl * (_col(sel["brightness"])[:, None] * (1 + _t(sel["tint"]))[:, :, None, None])
        radiance = gaussian_blur(refl.clamp(0, 1), DRONE_PSF_REF * s / REF).clamp(0, 1)
        extra = {"mask": np.packbits(mask.numpy(), axis=-1), "car_count": sel["active"].sum(1).astype(np.int64)}
        return radiance, extra

    def mask(self, i) -> Tensor:
        """Binary car mask ``(1, H, W)`` float32 of sample ``i``."""
        i = self._check_index(i)
        m = np.unpackbits(self._arrays["mask"][i], axis=-1, count=self.size)
        return torch.from_numpy(m.astype(np.float32))[None]

    @property
    def targets(self) -> np.ndarray:
        """1 where a patch contains at least one car pixel (stratification label)."""
        return (self._arrays["mask"].reshape(self.n, -1).max(axis=1) > 0).astype(np.int64)

    def __getitem__(self, i):
        i = self._check_index(i)
        meta = {"index": i, "intensity": self.intensity, "seed": self.seed,
                "car_count": int(self._arrays["car_count"][i]),
                "scene": ("road", "parking", "open")[int(self._arrays["kind"][i])]}
        return self._raw[i : i + 1], self.mask(i), meta


__all__ = [
    "VERSION", "SyntheticRawDataset", "SyntheticMicroscopy", "SyntheticDrone", "MICROSCOPY_CLASSES",
    "MICROSCOPY_PROPORTIONS", "class_counts", "gaussian_blur",
]
