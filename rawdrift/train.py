"""One training and evaluation engine for both tasks (classification, segmentation).

A raw batch ``(B, 1, H, W)`` goes through the ISP ``pipeline`` (any ``nn.Module``
mapping raw mosaics to ``(B, 3, H, W)`` views in [0, 1], frozen or learnable),
then through per-dataset normalisation (the task model's input side), then the
task model. Both run on the same device; the whole raw set is loaded once as a
tensor and batches are indexed on the device, so raw data never goes back
through numpy during training.

Augmentation (``TrainConfig.augment``):

- ``"crop"``: a random ``size`` x ``size`` crop of the *raw mosaic* at an even
  offset, so the crop still starts on a red site and reads RGGB (cropping at an
  odd offset would silently change the CFA phase); without ``"crop"`` the raw
  mosaic is centre-cropped at an even offset. Evaluation always centre-crops.
- ``"weak"`` (and ``"crop"``): one of the 8 flips/90-degree rotations per
  sample, applied to the *view*, after the ISP. Flipping or rotating a mosaic
  moves its colour sites (a horizontal flip turns RGGB into GRBG), so the
  pipeline would demosaic the wrong colours; shifting by one pixel to restore the
  pattern changes the content at the border. Augmenting views is exact, keeps
  gradients flowing into a learnable pipeline, and is what the paper's authors
  did. Masks get the same crop and the same flip/rotation.
- ``"augmix"`` (classification): ``"crop"``, then :func:`rawdrift.augment.augmix` on the
  flipped/rotated views (cross-entropy on the mixed views; no consistency loss).

A pipeline with a true ``randomised`` attribute (e.g. :class:`rawdrift.augment.RandomISP`)
is called as ``pipeline(raw, generator=gen)`` on training batches and kept in training
mode while training, so ISP randomisation draws from the run's generator; evaluation
calls it as ``pipeline(raw)`` in eval mode.

Determinism: every random draw (shuffling, crops, flips) comes from one CPU
``torch.Generator`` seeded with ``TrainConfig.seed`` and saved in checkpoints,
so the same seed gives identical metrics on the CPU, and a run resumed from a
checkpoint ends with the same metrics as an uninterrupted one.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from . import metrics as M
from ._checks import check_choice, check_int, check_range
from .device import pick_device
from .io import atomic_path, read_json, write_json
from .presets import get_preset

TASKS = ("classification", "segmentation")
AUGMENTS = (None, "weak", "crop", "augmix")
LR_SCHEDULES = ("constant", "cosine")
CHECKPOINT_NAME = "checkpoint.pt"

# Fixed per-dataset view statistics from the authors' static runs (DESIGN.md section 3).
NORMALIZATION = {
    "microscopy": ((0.91, 0.84, 0.94), (0.08, 0.12, 0.05)),
    "drone": ((0.35, 0.36, 0.35), (0.12, 0.11, 0.12)),
}
NORMALIZE_CHOICES = ("auto", "microscopy", "drone", None)

# Fields that may change between a checkpoint and its resumption.
_RESUMABLE_DIFFERENCES = {"epochs", "device", "checkpoint_dir", "resume", "progress", "num_workers"}


@dataclass
class TrainConfig:
    """Settings of one training run; ``None`` fields come from the preset.

    Args:
        task: ``"classification"`` or ``"segmentation"``; ``None`` takes the dataset's.
        preset: ``"ci"``, ``"lab"`` or ``"paper"`` (``None``: ``$RAWDRIFT_PRESET`` or ``lab``).
        epochs: passes over the training set (preset ``epochs``).
        batch_size: preset ``batch_size_cls`` / ``batch_size_seg``.
        lr: Adam learning rate, preset ``lr_cls`` / ``lr_seg``.
        weight_decay: Adam weight decay on the task model (never on the pipeline).
        pipeline_lr: learning rate of a learnable pipeline's parameters (default ``lr``).
        seed: seeds model initialisation (in :func:`train_task_model`) and every random draw.
        device: ``"auto"``, ``"cuda"``, ``"mps"`` or ``"cpu"``.
        augment: ``None``, ``"weak"`` (flips + 90-degree rotations of views) or
            ``"crop"`` (random even-offset raw crops, plus ``"weak"``) or ``"augmix"``
            (``"crop"`` plus AugMix-style mixing of the views, classification only).
        size: side of the square crops the models see (preset ``size``); even, >= 32.
        amp: bfloat16 autocast for the task model (``None``: on for CUDA only). The
            pipeline always runs in float32.
        channels_last: channels-last memory format (``None``: on for CUDA only).
        num_workers: DataLoader workers for the one pass that loads the dataset.
        normalize: ``"auto"`` (from the dataset name), ``"microscopy"``, ``"drone"`` or
            ``None`` (views go to the model unnormalised).
        checkpoint_dir: where ``checkpoint.pt`` is written after every epoch.
        resume: continue from ``checkpoint_dir/checkpoint.pt`` when it exists.
        progress: show a tqdm progress bar.
        unet_width: U-Net width for :func:`train_task_model` (preset ``unet_width``).
        pretrained: start the ResNet18 from torchvision's ImageNet weights.
        eval_every: also validate every ``eval_every`` optimisation steps (records in
            :attr:`TrainResult.steps`); ``None``: only after each epoch.
        lr_schedule: ``"constant"`` or ``"cosine"`` (per epoch, from ``lr`` down towards 0;
            preset ``lr_schedule``: cosine for ``ci``/``lab``, constant for ``paper``). From
            scratch at a high learning rate the BatchNorm running statistics lag behind the
            weights and validation accuracy swings from epoch to epoch; the cosine decay
            lets them settle. The factor depends only on the epoch, so resuming is exact.
    """

    task: str | None = None
    preset: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float = 0.0
    pipeline_lr: float | None = None
    seed: int = 0
    device: str = "auto"
    augment: str | None = "weak"
    size: int | None = None
    amp: bool | None = None
    channels_last: bool | None = None
    num_workers: int = 0
    normalize: str | None = "auto"
    checkpoint_dir: str | None = None
    resume: bool = True
    progress: bool = True
    unet_width: int | None = None
    pretrained: bool = False
    eval_every: int | None = None
    lr_schedule: str | None = None

    def __post_init__(self):
        if self.task is not None:
            check_choice(self.task, TASKS, "task")
        check_choice(self.augment, AUGMENTS, "augment")
        if self.augment == "augmix" and self.task == "segmentation":
            raise ValueError("augment: 'augmix' is for classification (it warps images but not masks)")
        if self.lr_schedule is not None:
            check_choice(self.lr_schedule, LR_SCHEDULES, "lr_schedule")
        check_choice(self.normalize, NORMALIZE_CHOICES, "normalize")
        if self.size is not None:
            check_int(self.size, "size", minimum=32, even=True)
        for name in ("epochs", "batch_size", "unet_width", "eval_every"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, minimum=1)
        for name in ("lr", "pipeline_lr"):
            if getattr(self, name) is not None:
                check_range(getattr(self, name), name, low=0.0)
                if getattr(self, name) <= 0:
                    raise ValueError(f"{name}: expected a value > 0, got {getattr(self, name)!r}")
        check_range(self.weight_decay, "weight_decay", low=0.0)
        check_int(self.seed, "seed", minimum=0)
        check_int(self.num_workers, "num_workers", minimum=0)
        if self.checkpoint_dir is not None:
            self.checkpoint_dir = str(self.checkpoint_dir)

    def resolved(self, task: str | None = None) -> "TrainConfig":
        """A copy with every ``None`` hyperparameter filled from the preset.

        >>> c = TrainConfig(task="segmentation", preset="paper").resolved()
        >>> (c.lr, c.batch_size, c.epochs, c.size)
        (7.5e-05, 12, 100, 256)
        """
        task = self.task or task
        if task is None:
            raise ValueError("task: not set in the config and no dataset to take it from")
        check_choice(task, TASKS, "task")
        p = get_preset(self.preset)
        cls = task == "classification"
        lr = self.lr if self.lr is not None else (p.lr_cls if cls else p.lr_seg)
        return replace(
            self,
            task=task,
            preset=p.name,
            epochs=self.epochs if self.epochs is not None else p.epochs,
            batch_size=self.batch_size or (p.batch_size_cls if cls else p.batch_size_seg),
            lr=lr,
            pipeline_lr=self.pipeline_lr if self.pipeline_lr is not None else lr,
            size=self.size if self.size is not None else p.size,
            unet_width=self.unet_width or p.unet_width,
            lr_schedule=self.lr_schedule or p.lr_schedule,
        )


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """Multiplier of the base learning rate in ``epoch`` (0-based) of ``epochs``.

    >>> [round(lr_factor("cosine", e, 4), 3) for e in range(4)]
    [1.0, 0.854, 0.5, 0.146]
    >>> lr_factor("constant", 3, 4)
    1.0
    """
    check_choice(schedule, LR_SCHEDULES, "lr_schedule")
    if schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def normalization_for(normalize: str | None, dataset_name: str = "") -> tuple | None:
    """``(mean, std)`` triples for ``normalize`` (``"auto"`` looks at ``dataset_name``), or ``None``.

    >>> normalization_for("auto", "synthetic-drone")[0]
    (0.35, 0.36, 0.35)
    """
    check_choice(normalize, NORMALIZE_CHOICES, "normalize")
    if normalize == "auto":
        name = str(dataset_name).lower()
        normalize = next((k for k in NORMALIZATION if k in name), None)
    return None if normalize is None else NORMALIZATION[normalize]


# ----------------------------------------------------------------------------- data


def _unwrap(data):
    """(base dataset, indices or None) for a dataset, a (nested) Subset or a (dataset, indices) pair."""
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], Tensor):
        base, idx = _unwrap(data[0])
        sel = np.asarray(data[1], dtype=np.int64)
        return base, (sel if idx is None else np.asarray(idx)[sel])
    if isinstance(data, Subset):
        base, idx = _unwrap(data.dataset)
        sel = np.asarray(data.indices, dtype=np.int64)
        return base, (sel if idx is None else np.asarray(idx)[sel])
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise TypeError(f"data: expected a RawDataset, a Subset of one or (dataset, indices), got {type(data).__name__}")
    return data, None


def _collate_drop_meta(items):
    return torch.stack([it[0] for it in items]), [it[1] for it in items]


@dataclass
class _Tensors:
    raw: Tensor        # (N, 1, H, W) float32
    target: Tensor     # (N,) int64 or (N, 1, H, W) float32
    name: str
    task: str
    num_classes: int


def _load(data, task: str | None, num_workers: int = 0) -> _Tensors:
    """Load raw mosaics and targets once, as CPU tensors."""
    base, idx = _unwrap(data)
    task = task or getattr(base, "task", None)
    check_choice(task, TASKS, "task")
    base_task = getattr(base, "task", task)
    if base_task != task:
        raise ValueError(f"task: config says {task!r} but the dataset is for {base_task!r}")
    indices = np.arange(len(base)) if idx is None else idx
    if len(indices) == 0:
        raise ValueError("data: expected at least one sample")
    fast = num_workers == 0 and hasattr(base, "raw_tensor") and hasattr(base, "targets")
    if fast and task == "classification":
        raw = base.raw_tensor(indices.tolist())
        target = torch.as_tensor(np.asarray(base.targets)[indices], dtype=torch.int64)
    elif fast and hasattr(base, "mask_tensor"):
        raw = base.raw_tensor(indices.tolist())
        target = base.mask_tensor(indices.tolist())
    else:
        loader = DataLoader(
            Subset(base, indices.tolist()), batch_size=64, shuffle=False,
            num_workers=num_workers, collate_fn=_collate_drop_meta,
        )
        raws, targets = [], []
        for r, t in loader:
            raws.append(r)
            targets.extend(t)
        raw = torch.cat(raws)
        if task == "classification":
            target = torch.as_tensor([int(t) for t in targets], dtype=torch.int64)
        else:
            target = torch.stack([torch.as_tensor(t, dtype=torch.float32) for t in targets])
    raw = raw.to(torch.float32)
    if raw.ndim != 4 or raw.shape[1] not in (1, 3):
        # 1 channel: raw mosaics for the pipeline; 3 channels: views rendered beforehand
        # (rawdrift.drift.views.ViewSet), used with ``nn.Identity()`` as the pipeline.
        raise ValueError(f"data: expected raw mosaics (1, H, W) or views (3, H, W), got {tuple(raw.shape[1:])}")
    if task == "segmentation":
        target = target.to(torch.float32)
        if target.ndim == 3:
            target = target.unsqueeze(1)
        if target.shape[-2:] != raw.shape[-2:]:
            raise ValueError(f"data: masks {tuple(target.shape)} do not match raw {tuple(raw.shape)}")
        num_classes = 1
    else:
        classes = getattr(base, "classes", ())
        num_classes = len(classes) if classes else int(target.max()) + 1
    return _Tensors(raw, target, getattr(base, "name", ""), task, num_classes)


def center_crop_offset(full: int, size: int) -> int:
    """The even offset of the centred ``size`` crop of a ``full``-pixel side (evaluation crops).

    Even offsets keep the mosaic's RGGB phase. Forensics uses it to cut the same
    region the trainer evaluates.

    >>> center_crop_offset(40, 32), center_crop_offset(38, 32)
    (4, 2)
    """
    if size > full:
        raise ValueError(f"size: a {size}-pixel crop does not fit a {full}-pixel side")
    return 2 * (((full - size) // 2) // 2)


def _crop_offsets(n: int, full: int, size: int, random: bool, gen: torch.Generator | None) -> Tensor:
    """Even crop offsets (keep the RGGB phase), random or centred."""
    if random:
        span = (full - size) // 2  # number of even offsets - 1
        return 2 * torch.randint(0, span + 1, (n,), generator=gen)
    return torch.full((n,), center_crop_offset(full, size), dtype=torch.int64)


def _crop(x: Tensor, oy: Tensor, ox: Tensor, size: int) -> Tensor:
    """Per-sample ``size`` x ``size`` crops of ``(B, C, H, W)`` at offsets ``oy``, ``ox``."""
    ar = torch.arange(size, device=x.device)
    oy, ox = oy.to(x.device), ox.to(x.device)
    if bool((oy == oy[0]).all()) and bool((ox == ox[0]).all()):
        y0, x0 = int(oy[0]), int(ox[0])
        return x[..., y0 : y0 + size, x0 : x0 + size]
    rows = (oy[:, None] + ar)[:, None, :, None]
    cols = (ox[:, None] + ar)[:, None, None, :]
    b = torch.arange(x.shape[0], device=x.device)[:, None, None, None]
    c = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return x[b, c, rows, cols]


def dihedral(x: Tensor, k: Tensor) -> Tensor:
    """Apply one of the 8 flips/90-degree rotations per sample.

    ``k[i]`` in 0..7: rotate ``x[i]`` by ``k % 4`` quarter turns after a
    horizontal flip when ``k >= 4``. ``x`` must be square.

    >>> x = torch.arange(4.).reshape(1, 1, 2, 2)
    >>> dihedral(x, torch.tensor([4]))[0, 0].tolist()
    [[1.0, 0.0], [3.0, 2.0]]
    """
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"x: flips and rotations need square images, got {tuple(x.shape[-2:])}")
    k = k.to(x.device)
    out = x.clone()
    for t in torch.unique(k).tolist():
        sel = k == t
        y = x[sel]
        if t >= 4:
            y = y.flip(-1)
        out[sel] = torch.rot90(y, t % 4, dims=(-2, -1))
    return out


# ----------------------------------------------------------------------------- engine


def _trainable(pipeline: nn.Module) -> list[nn.Parameter]:
    return [p for p in pipeline.parameters() if p.requires_grad]


def _cpu_state(module_or_state) -> dict:
    sd = module_or_state.state_dict() if hasattr(module_or_state, "state_dict") else module_or_state
    return {k: v.detach().to("cpu", copy=True) for k, v in sd.items()}


class _Runner:
    """Moves data to the device once and runs train/eval passes."""

    def __init__(self, model, pipeline, cfg: TrainConfig, norm):
        self.model, self.pipeline, self.cfg = model, pipeline, cfg
        self.device = pick_device(cfg.device)
        self.amp = (self.device.type == "cuda") if cfg.amp is None else (bool(cfg.amp) and self.device.type == "cuda")
        self.channels_last = (self.device.type == "cuda") if cfg.channels_last is None else bool(cfg.channels_last)
        self.model.to(self.device)
        self.pipeline.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.mean = self.std = None
        if norm is not None:
            self.mean = torch.tensor(norm[0], device=self.device).reshape(1, 3, 1, 1)
            self.std = torch.tensor(norm[1], device=self.device).reshape(1, 3, 1, 1)
        self.learnable = bool(_trainable(pipeline))
        self.randomised = bool(getattr(pipeline, "randomised", False))

    def to_device(self, t: _Tensors) -> _Tensors:
        for nm, n in (("height", t.raw.shape[-2]), ("width", t.raw.shape[-1])):
            if n < self.cfg.size:
                raise ValueError(f"size: crop {self.cfg.size} is larger than the raw image {nm} {n}")
            if n % 2:
                raise ValueError(f"data: raw {nm} {n} is odd; Bayer mosaics tile in 2x2 blocks")
        return replace(t, raw=t.raw.to(self.device), target=t.target.to(self.device))

    def views(self, raw: Tensor, grad: bool, gen: torch.Generator | None = None) -> Tensor:
        with torch.set_grad_enabled(grad):
            v = self.pipeline(raw, generator=gen) if gen is not None and self.randomised else self.pipeline(raw)
        if v.ndim != 4 or v.shape[1] != 3:
            raise ValueError(f"pipeline: expected (B, 3, H, W) views, got {tuple(v.shape)}")
        return v

    def logits(self, view: Tensor) -> Tensor:
        if self.mean is not None:
            view = (view - self.mean) / self.std
        if self.channels_last:
            view = view.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.model(view)
        return out.float()

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        if self.cfg.task == "classification":
            return F.cross_entropy(logits, target)
        return F.binary_cross_entropy_with_logits(logits, target)

    def batch(self, data: _Tensors, idx: Tensor, gen, train: bool):
        """Crop raw and target, run the ISP, then flip/rotate views and targets alike."""
        cfg = self.cfg
        n = idx.numel()
        h, w = data.raw.shape[-2:]
        rand_crop = train and cfg.augment in ("crop", "augmix")
        oy = _crop_offsets(n, h, cfg.size, rand_crop, gen)
        ox = _crop_offsets(n, w, cfg.size, rand_crop, gen)
        k = torch.randint(0, 8, (n,), generator=gen) if train and cfg.augment is not None else None
        idx = idx.to(self.device)
        raw = _crop(data.raw[idx], oy, ox, cfg.size)
        target = data.target[idx]
        if cfg.task == "segmentation":
            target = _crop(target, oy, ox, cfg.size)
        view = self.views(raw, grad=train and self.learnable, gen=gen if train else None)
        if k is not None:
            view = dihedral(view, k)
            if cfg.task == "segmentation":
                target = dihedral(target, k)
        if train and cfg.augment == "augmix":
            from .augment import augmix

            view = augmix(view, gen)
        return view, target

    def train_mode(self) -> None:
        self.model.train()
        self.pipeline.train(self.learnable or self.randomised)

    def train_epoch(self, data: _Tensors, optimizer, gen, on_step: Callable[[], None] | None = None) -> float:
        self.train_mode()
        n = data.raw.shape[0]
        perm = torch.randperm(n, generator=gen)
        bs = self.cfg.batch_size
        total, count = 0.0, 0
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            if idx.numel() < 2 and count > 0:  # BatchNorm cannot train on one sample
                break
            view, target = self.batch(data, idx, gen, train=True)
            loss = self.loss(self.logits(view), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * idx.numel()
            count += idx.numel()
            if on_step is not None:
                on_step()
        return total / count

    @torch.no_grad()
    def evaluate(self, data: _Tensors) -> dict:
        self.model.eval()
        self.pipeline.eval()
        n = data.raw.shape[0]
        bs = self.cfg.batch_size
        total = 0.0
        preds, counts = [], {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
        for start in range(0, n, bs):
            idx = torch.arange(start, min(start + bs, n))
            view, target = self.batch(data, idx, None, train=False)
            logits = self.logits(view)
            total += float(self.loss(logits, target)) * idx.numel()
            if self.cfg.task == "classification":
                preds.append(logits.argmax(1).cpu())
            else:
                c = M.segmentation_counts(logits, target)
                counts = {key: counts[key] + c[key] for key in counts}
        out = {"loss": total / n}
        if self.cfg.task == "classification":
            out.update(M.classification_metrics(data.target.cpu(), torch.cat(preds), data.num_classes))
        else:
            out.update(M.segmentation_metrics(counts))
        return out


@dataclass
class TrainResult:
    """What :func:`fit` returns.

    ``history`` holds one record per epoch (``epoch``, ``step`` (optimisation steps
    so far), ``train_loss``, ``val`` metrics, ``seconds``); ``steps`` one record
    (``step``, ``epoch``, ``val``) per validation every ``cfg.eval_every`` steps; ``final`` the validation metrics after the last epoch;
    ``best`` those of ``best_epoch`` (highest validation accuracy or IoU). The
    ``*_state`` dicts are CPU state dicts of the model and pipeline after the
    last epoch and at the best epoch.
    """

    task: str
    config: dict
    history: list[dict]
    final: dict
    best: dict
    best_epoch: int
    model_state: dict = field(repr=False)
    best_model_state: dict = field(repr=False)
    pipeline_state: dict = field(default_factory=dict, repr=False)
    best_pipeline_state: dict = field(default_factory=dict, repr=False)
    steps: list = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-ready part of the result (no tensors)."""
        return {k: getattr(self, k) for k in ("task", "config", "history", "final", "best", "best_epoch", "steps")}

    def save(self, directory) -> Path:
        """Write ``result.json`` and ``states.pt`` into ``directory``, atomically."""
        directory = Path(directory)
        write_json(directory / "result.json", self.summary())
        states = {k: getattr(self, k) for k in ("model_state", "best_model_state", "pipeline_state", "best_pipeline_state")}
        with atomic_path(directory / "states.pt") as tmp:
            torch.save(states, tmp)
        return directory

    @classmethod
    def load(cls, directory) -> "TrainResult":
        directory = Path(directory)
        summary = read_json(directory / "result.json")
        states = torch.load(directory / "states.pt", map_location="cpu", weights_only=True)
        return cls(**summary, **states)


def _fingerprint(cfg: TrainConfig) -> dict:
    return {k: v for k, v in asdict(cfg).items() if k not in _RESUMABLE_DIFFERENCES}


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def discard_checkpoint(checkpoint_dir) -> None:
    """Delete ``checkpoint_dir/checkpoint.pt`` (and the folder when it is then empty).

    Drift controls call this once a run's own result (model file, cell JSON) is
    written: the checkpoint only serves to resume an interrupted run, and with
    the optimiser state and the best weights it is about four model sizes
    (about 115 MB for a ResNet-18), which adds up over a grid of cells.
    """
    if checkpoint_dir is None:
        return
    d = Path(checkpoint_dir)
    (d / CHECKPOINT_NAME).unlink(missing_ok=True)
    if d.is_dir() and not any(d.iterdir()):
        d.rmdir()


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`fit` (state dicts only, ``weights_only=True``)."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def fit(
    model: nn.Module,
    pipeline: nn.Module,
    train_data,
    val_data,
    cfg: TrainConfig,
    callback: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train ``model`` (and ``pipeline`` if it has trainable parameters) on views of raw data.

    Args:
        model: task model mapping ``(B, 3, S, S)`` views to logits.
        pipeline: ISP mapping ``(B, 1, S, S)`` raw mosaics to ``(B, 3, S, S)`` views.
        train_data, val_data: a ``RawDataset``, a ``Subset`` of one, or ``(dataset, indices)``;
            ``val_data`` may be ``None`` (no validation; the last epoch is "best").
        cfg: the run's settings (``None`` fields come from the preset).
        callback: called as ``callback(epoch, record)`` after each epoch's checkpoint.
            With ``cfg.eval_every`` it is also called as ``callback(epoch, step_record)``
            after each step-wise validation (``step_record`` has a ``"step"`` key, no ``"train_loss"``).
    Returns:
        :class:`TrainResult`; ``model`` and ``pipeline`` are left in their last-epoch state.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if not isinstance(pipeline, nn.Module):
        raise TypeError(f"pipeline: expected an nn.Module, got {type(pipeline).__name__}")
    train_t = _load(train_data, cfg.task, cfg.num_workers)
    cfg = cfg.resolved(train_t.task)
    val_t = None if val_data is None else _load(val_data, cfg.task, cfg.num_workers)
    norm = normalization_for(cfg.normalize, train_t.name)
    runner = _Runner(model, pipeline, cfg, norm)
    train_t = runner.to_device(train_t)
    val_t = None if val_t is None else runner.to_device(val_t)

    groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg.lr,
               "weight_decay": cfg.weight_decay}]
    if runner.learnable:
        groups.append({"params": _trainable(pipeline), "lr": cfg.pipeline_lr, "weight_decay": 0.0})
    optimizer = torch.optim.Adam(groups)
    base_lrs = [g["lr"] for g in groups]  # before a resume overwrites them with decayed values

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict] = []
    steps: list[dict] = []
    step = 0
    start = 0
    best = {"epoch": -1, "score": -math.inf, "model": {}, "pipeline": {}}
    ckpt_path = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME if cfg.checkpoint_dir else None
    if ckpt_path is not None and cfg.resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        mismatch = {k for k in set(ck["config"]) | set(_fingerprint(cfg))
                    if ck["config"].get(k) != _fingerprint(cfg).get(k)}
        if mismatch:
            raise ValueError(f"cfg: checkpoint {ckpt_path} was written with different settings {sorted(mismatch)}; "
                             "use another checkpoint_dir or resume=False")
        model.load_state_dict(ck["model"])
        pipeline.load_state_dict(ck["pipeline"])
        optimizer.load_state_dict(ck["optimizer"])
        gen.set_state(ck["rng"]["data"])
        torch.set_rng_state(ck["rng"]["torch"])
        history, start, best = ck["history"], ck["epoch"], ck["best"]
        steps, step = ck.get("steps", []), ck.get("step", 0)

    primary = M.primary_metric(cfg.task)
    from tqdm.auto import tqdm

    bar = tqdm(range(start, cfg.epochs), desc=f"train {cfg.task}", disable=not cfg.progress, leave=False)
    def on_step() -> None:
        nonlocal step
        step += 1
        if cfg.eval_every and val_t is not None and step % cfg.eval_every == 0:
            rec = {"step": step, "epoch": epoch + 1, "val": runner.evaluate(val_t)}
            runner.train_mode()
            steps.append(rec)
            if callback is not None:
                callback(epoch + 1, rec)

    for epoch in bar:
        t0 = time.perf_counter()
        factor = lr_factor(cfg.lr_schedule, epoch, cfg.epochs)
        for g, base in zip(optimizer.param_groups, base_lrs):
            g["lr"] = base * factor
        train_loss = runner.train_epoch(train_t, optimizer, gen, on_step)
        val = runner.evaluate(val_t) if val_t is not None else {}
        record = {"epoch": epoch + 1, "step": step, "lr": base_lrs[0] * factor, "train_loss": train_loss, "val": val,
                  "seconds": time.perf_counter() - t0}
        history.append(record)
        score = val.get(primary, -train_loss) if val else -train_loss
        if val_t is None or score > best["score"]:
            best = {"epoch": epoch + 1, "score": float(score), "model": _cpu_state(model),
                    "pipeline": _cpu_state(pipeline)}
        if ckpt_path is not None:
            _save_checkpoint(ckpt_path, {
                "format": 1, "epoch": epoch + 1, "config": _fingerprint(cfg),
                "model": _cpu_state(model), "pipeline": _cpu_state(pipeline),
                "optimizer": copy.deepcopy(optimizer.state_dict()),
                "rng": {"data": gen.get_state(), "torch": torch.get_rng_state()},
                "history": history, "best": best, "steps": steps, "step": step,
            })
        bar.set_postfix(loss=f"{train_loss:.3f}", **({primary: f"{val[primary]:.3f}"} if val else {}))
        if callback is not None:
            callback(epoch + 1, record)

    if not history:
        raise ValueError("cfg: epochs must be >= 1")
    last_state, last_pipe = _cpu_state(model), _cpu_state(pipeline)
    return TrainResult(
        task=cfg.task,
        config={**asdict(cfg), "normalization": norm},
        history=history,
        final=history[-1]["val"],
        best=next(h["val"] for h in history if h["epoch"] == best["epoch"]),
        best_epoch=best["epoch"],
        model_state=last_state,
        best_model_state=best["model"] or last_state,
        pipeline_state=last_pipe,
        best_pipeline_state=best["pipeline"] or last_pipe,
        steps=steps,
    )


def evaluate(model: nn.Module, pipeline: nn.Module, data, cfg: TrainConfig) -> dict:
    """Validation metrics of ``model`` on views of ``data`` made by ``pipeline``.

    Returns ``loss`` plus ``accuracy``, ``balanced_accuracy``, ``macro_f1``,
    ``per_class_accuracy``, ``confusion_matrix`` (classification) or ``iou``,
    ``dice``, ``pixel_accuracy`` (segmentation). Raw images are centre-cropped to
    ``cfg.size`` at an even offset and not augmented.
    """
    t = _load(data, cfg.task, cfg.num_workers)
    cfg = cfg.resolved(t.task)
    runner = _Runner(model, pipeline, cfg, normalization_for(cfg.normalize, t.name))
    return runner.evaluate(runner.to_device(t))


def build_task_model(cfg: TrainConfig, num_classes: int = 9) -> nn.Module:
    """The task model for a resolved config, initialised from ``cfg.seed``."""
    from .models import build_model

    torch.manual_seed(cfg.seed)
    if cfg.task == "classification":
        return build_model("classification", num_classes=num_classes, pretrained=cfg.pretrained)
    return build_model("segmentation", width=cfg.unet_width)


def train_task_model(dataset, pipeline: nn.Module, cfg: TrainConfig, train_idx=None, val_idx=None,
                     callback=None) -> tuple[nn.Module, TrainResult]:
    """Build a fresh task model for ``dataset`` and :func:`fit` it.

    Without ``train_idx``/``val_idx`` the first fold of a stratified k-fold split
    (``preset.folds`` folds, seeded by ``cfg.seed``) is used. Returns the model (in
    its last-epoch state) and the :class:`TrainResult`.
    """
    from .data.base import stratified_kfold

    rcfg = cfg.resolved(getattr(dataset, "task", None))
    if train_idx is None or val_idx is None:
        train_idx, val_idx = stratified_kfold(dataset.targets, get_preset(rcfg.preset).folds, rcfg.seed)[0]
    num_classes = len(getattr(dataset, "classes", ())) or 9
    model = build_task_model(rcfg, num_classes)
    result = fit(model, pipeline, (dataset, train_idx), (dataset, val_idx), cfg, callback=callback)
    return model, result


@dataclass
class CVResult:
    """Per-fold :class:`TrainResult` summaries and the mean/std of scalar final metrics."""

    folds: list[TrainResult]
    mean: dict
    std: dict

    def summary(self) -> dict:
        return {"folds": [f.summary() for f in self.folds], "mean": self.mean, "std": self.std}

    def save(self, path) -> Path:
        """Write the summary (no weights) as JSON, atomically."""
        return write_json(path, self.summary())


def cross_validate(dataset, pipeline_factory: Callable[[], nn.Module], cfg: TrainConfig,
                   k: int | None = None) -> CVResult:
    """Stratified k-fold cross-validation (``k`` from the preset by default).

    ``pipeline_factory()`` makes a fresh pipeline per fold (so a learnable one
    starts from the same parameters each time). With ``cfg.checkpoint_dir`` each
    fold checkpoints into its own ``fold<i>`` subfolder.
    """
    from .data.base import stratified_kfold

    rcfg = cfg.resolved(getattr(dataset, "task", None))
    k = get_preset(rcfg.preset).folds if k is None else check_int(k, "k", minimum=2)
    results = []
    for i, (tr, va) in enumerate(stratified_kfold(dataset.targets, k, rcfg.seed)):
        fcfg = cfg if cfg.checkpoint_dir is None else replace(cfg, checkpoint_dir=str(Path(cfg.checkpoint_dir) / f"fold{i}"))
        _, res = train_task_model(dataset, pipeline_factory(), fcfg, tr, va)
        results.append(res)
    keys = [key for key, v in results[0].final.items() if isinstance(v, (int, float))]
    vals = {key: np.array([r.final[key] for r in results], dtype=np.float64) for key in keys}
    return CVResult(results, {key: float(v.mean()) for key, v in vals.items()},
                    {key: float(v.std()) for key, v in vals.items()})


__all__ = [
    "AUGMENTS", "LR_SCHEDULES", "NORMALIZATION", "TASKS", "lr_factor", "CVResult", "TrainConfig", "TrainResult", "build_task_model",
    "center_crop_offset", "cross_validate", "dihedral", "discard_checkpoint", "evaluate", "fit", "load_checkpoint",
    "normalization_for", "train_task_model",
]
