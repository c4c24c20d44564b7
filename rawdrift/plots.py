"""Figures used by the book. Matplotlib is imported lazily; every function returns its Figure."""

from __future__ import annotations

import numpy as np
import torch

_TITLES = {
    "raw": "raw", "bl": "BL", "dm": "DM", "wb": "WB", "cc": "CC", "sh": "SH", "dn": "DN", "gc": "GC (view)",
}


def _as_raw_batch(raw) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(raw) if not isinstance(raw, torch.Tensor) else raw).float()
    while t.ndim < 4:
        t = t.unsqueeze(0)
    return t[:1]


def _show(ax, img: torch.Tensor, title: str) -> None:
    a = img.detach().cpu().float()
    if a.shape[0] == 1:
        ax.imshow(a[0].numpy(), cmap="gray")
    else:
        ax.imshow(a.permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def stage_strip(raw, pipeline, *, figsize_per=2.0):
    """Show one raw image after every ISP stage (uses ``track_stages``).

    Args:
        raw: ``(H, W)``, ``(1, H, W)`` or ``(B, 1, H, W)`` mosaic (the first image is shown).
        pipeline: a :class:`rawdrift.isp.Pipeline`.
    Returns:
        the matplotlib Figure; intermediate views are clipped to [0, 1] for display.
    """
    import matplotlib.pyplot as plt

    x = _as_raw_batch(raw).to(next(iter(pipeline.buffers()), torch.zeros(())).device)
    old = pipeline.track_stages
    pipeline.track_stages = True
    try:
        with torch.no_grad():
            pipeline(x)
        stages = dict(pipeline.stages)
    finally:
        pipeline.track_stages = old
    fig, axes = plt.subplots(1, len(stages), figsize=(figsize_per * len(stages), figsize_per + 0.4))
    for ax, (code, img) in zip(np.atleast_1d(axes), stages.items()):
        _show(ax, img[0], _TITLES.get(code, code))
    fig.suptitle(f"pipeline {getattr(pipeline, 'name', '')}", fontsize=10)
    fig.tight_layout()
    return fig


def config_grid(raw, camera, *, reference: str = "bi,s,ga", configs=None, figsize_per=1.6):
    """One raw image under every static configuration, plus ``|A - B|`` per channel vs ``reference``.

    Row 1: the views. Rows 2-4: absolute difference to the reference view for R, G and B
    (shared colour scale, maximum printed in the suptitle).

    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    from .isp.configs import CONFIGS, parse_config
    from .isp.pipeline import Pipeline

    configs = CONFIGS if configs is None else tuple(configs)
    parse_config(reference)
    x = _as_raw_batch(raw)
    with torch.no_grad():
        ref = Pipeline.static(reference, camera)(x)[0]
        views = {c: Pipeline.static(c, camera)(x)[0] for c in configs}
    diffs = {c: (v - ref).abs() for c, v in views.items()}
    vmax = max(float(d.max()) for d in diffs.values()) or 1.0
    fig, axes = plt.subplots(4, len(configs), figsize=(figsize_per * len(configs), figsize_per * 4 + 0.5), squeeze=False)
    for j, c in enumerate(configs):
        _show(axes[0, j], views[c], c)
        for i, ch in enumerate("RGB"):
            ax = axes[i + 1, j]
            im = ax.imshow(diffs[c][i].cpu().numpy(), cmap="magma", vmin=0, vmax=vmax)
            ax.axis("off")
            if j == 0:
                ax.set_title(f"|{ch} - {ch}_ref|", fontsize=8)
    fig.colorbar(im, ax=axes[1:, :].ravel().tolist(), shrink=0.8)
    fig.suptitle(f"{camera.name}: 12 data models; differences vs {reference} (max {vmax:.3f})", fontsize=10)
    return fig


def markdown_table(rows, columns=None, floatfmt: str = ".3g") -> str:
    """A Markdown table from a list of dicts (the book displays it with ``IPython.display.Markdown``).

    >>> print(markdown_table([{"config": "bi,s,ga", "error": 1.5e-7}]))
    | config | error |
    |---|---|
    | bi,s,ga | 1.5e-07 |
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows: expected at least one row")
    columns = list(rows[0]) if columns is None else list(columns)
    cell = lambda v: format(v, floatfmt) if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
