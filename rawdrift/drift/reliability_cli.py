"""``rawdrift reliability``: reliability maps over a box of ISP/sensor parameters.

``--oracle analytic`` (default) runs the documented toy problem of
:func:`rawdrift.drift.reliability.analytic_oracle` (a smooth "accuracy" over exposure
gain, gamma and blur whose reliable set is a small blob); it needs no trained model and
is meant for teaching. ``--oracle isp`` renders a verification set with a parametrized
ISP at each point of the box and scores a trained classifier (``--model``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_ISP_AXES = ("exposure=0.1:2.0", "gamma=1.0:3.4", "blur_sigma=0.0:2.0")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=None, choices=("ci", "lab", "paper"),
                   help="sizes (default: $RAWDRIFT_PRESET, else lab)")
    p.add_argument("--out", required=True, help="output directory (table.md, result.json, figures)")
    p.add_argument("--oracle", default="analytic", choices=("analytic", "isp"))
    p.add_argument("--h", type=float, default=0.8, help="reliability threshold: reliable iff metric >= h")
    p.add_argument("--dims", type=int, default=None, help="analytic oracle: number of axes (1-3)")
    p.add_argument("--points-per-dim", type=int, default=None, help="dense ground-truth grid per axis")
    p.add_argument("--budgets", type=int, nargs="+", default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--samplers", nargs="+", default=None)
    p.add_argument("--rebalancers", nargs="+", default=None)
    p.add_argument("--classifiers", nargs="+", default=None)
    p.add_argument("--v", type=float, default=0.005, help="SMOTE-GP variance threshold (standardised units)")
    p.add_argument("--synthetic-truth", default=None, choices=("exact", "grid"),
                   help="check synthetic points by evaluating f (default for analytic) or on the grid (isp)")
    # isp oracle
    p.add_argument("--model", default=None, help="isp: classifier checkpoint (state dict, or a dict with 'model')")
    p.add_argument("--dataset", default="synthetic-microscopy", help="isp: dataset of the verification set")
    p.add_argument("--n-verify", type=int, default=64, help="isp: images in the verification set (the last ones)")
    p.add_argument("--metric", default="accuracy", choices=("accuracy", "balanced_accuracy", "worst_class_accuracy", "macro_f1"))
    p.add_argument("--axis", action="append", default=None, metavar="NAME=LOW:HIGH",
                   help=f"isp: one axis of the box (repeatable; default {' '.join(DEFAULT_ISP_AXES)})")
    p.add_argument("--normalize", default="auto", help="isp: view normalisation before the model (auto|none|...)")
    p.add_argument("--crop", type=int, default=None,
                   help="isp: the model sees the centre CROP x CROP of each view (default: the preset's training "
                        "size when smaller than the raw images; 0: the whole view)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=64)


def parse_axes(specs) -> "ParameterBox":  # noqa: F821
    """``["gamma=1:3", ...]`` -> :class:`~rawdrift.drift.reliability.ParameterBox`."""
    from .reliability import ParameterBox

    names, low, high = [], [], []
    for s in specs:
        try:
            name, rng = s.split("=", 1)
            lo, hi = (float(x) for x in rng.split(":"))
        except ValueError:
            raise ValueError(f"--axis: expected NAME=LOW:HIGH, got {s!r}") from None
        names.append(name)
        low.append(lo)
        high.append(hi)
    return ParameterBox(tuple(names), low, high)


def _isp_oracle(args, box):
    import torch

    if not args.model:
        raise ValueError(
            "--model: the isp oracle needs a trained classifier checkpoint. Train one first "
            "(e.g. with rawdrift.train on the same dataset), save its state dict, and pass "
            "--model PATH; or use --oracle analytic for the toy problem.")
    path = Path(args.model)
    if not path.exists():
        raise FileNotFoundError(f"--model: no checkpoint at {path}")
    try:
        from ..data import get_dataset
        from ..models import build_model
    except ImportError as err:
        raise ValueError(f"--oracle isp needs rawdrift's data and models packages ({err})") from None
    from ..isp.pipeline import Pipeline
    from .reliability import isp_oracle, with_normalization

    ck = torch.load(path, map_location="cpu", weights_only=False)
    state = ck.get("model", ck) if isinstance(ck, dict) else ck
    data = get_dataset(args.dataset, preset=args.preset)
    if getattr(data, "task", "classification") != "classification":
        raise ValueError(f"--dataset: the isp oracle scores classifiers; {args.dataset} is {data.task}")
    n = len(data)
    k = min(args.n_verify, n)
    idx = list(range(n - k, n))
    raw = data.raw_tensor(idx)
    targets = [int(t) for t in list(data.targets)[n - k:]]
    model = build_model("classification", num_classes=len(data.classes))
    model.load_state_dict(state)
    pipeline = Pipeline.parametrized(data.camera)
    if isinstance(ck, dict) and "pipeline" in ck:
        pipeline.load_state_dict(ck["pipeline"])
    norm = None
    if args.normalize not in ("none", "None"):
        from ..train import normalization_for

        norm = normalization_for(args.normalize, args.dataset)
    if norm is not None:
        model = with_normalization(model, *norm)
    crop = args.crop
    if crop is None:
        from ..presets import get_preset

        size = get_preset(args.preset).size
        crop = size if size < min(raw.shape[-2:]) else 0
    return isp_oracle(model, pipeline, raw, targets, box, metric=args.metric, batch_size=args.batch_size,
                      device=args.device, crop=crop or None)


def main(args) -> int:
    from ..presets import default_preset_name
    from .reliability import (
        REBALANCERS,
        SAMPLERS,
        ReliabilityConfig,
        plot_map,
        plot_positives,
        run_reliability,
    )

    preset = args.preset or default_preset_name()
    args.preset = preset
    f = None
    box = None
    if args.oracle == "isp":
        box = parse_axes(args.axis or DEFAULT_ISP_AXES)
        f = _isp_oracle(args, box)
    elif args.axis:
        raise ValueError("--axis: only the isp oracle takes axes; the analytic box is fixed (use --dims)")
    truth = args.synthetic_truth or ("exact" if args.oracle == "analytic" else "grid")
    cfg = ReliabilityConfig(
        preset=preset, dims=args.dims, box=box, h=args.h, metric=args.metric if f else "accuracy (toy)",
        points_per_dim=args.points_per_dim, budgets=tuple(args.budgets) if args.budgets else None,
        samplers=tuple(args.samplers or SAMPLERS), rebalancers=tuple(args.rebalancers or REBALANCERS),
        classifiers=tuple(args.classifiers) if args.classifiers else None,
        seeds=tuple(args.seeds) if args.seeds else None, v=args.v, synthetic_truth=truth,
        oracle=args.oracle, out=Path(args.out))
    result = run_reliability(cfg, f=f, progress=True)
    out = Path(args.out)
    if result.box.d >= 2:
        fig = plot_map(result)
        fig.savefig(out / "map.png", dpi=120)
    plot_positives(result).savefig(out / "positives.png", dpi=120)
    print(result.to_markdown())
    print(f"wrote {out / 'table.md'}, {out / 'result.json'} and figures to {out}")
    return 0
