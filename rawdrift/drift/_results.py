"""Saving and loading drift-control results: metadata in ``result.json``, arrays in one ``.npz``.

Every result folder holds ``result.json`` (the plain fields, the config among them) and,
when the result has arrays, one ``.npz`` next to it; both are written atomically, so an
interrupted save leaves the previous files intact. The human-readable extras (``summary.md``,
CSV tables) are written by each result's own ``save``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_json, write_json, write_npz


def write_result(out, meta: dict, arrays: dict | None = None, npz: str = "arrays.npz") -> Path:
    """Write ``meta`` to ``out/result.json`` and ``arrays`` (if any) to ``out/<npz>``; returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if arrays:
        write_npz(out / npz, **arrays)
    write_json(out / "result.json", meta)
    return out


def read_result(out, runner: str, npz: str = "arrays.npz") -> tuple[dict, dict]:
    """``(meta, arrays)`` of a result folder written by :func:`write_result`.

    Raises ``FileNotFoundError`` naming the folder and ``runner`` (the function that
    writes such results) when ``out/result.json`` is missing; ``arrays`` is empty when
    there is no ``.npz``.
    """
    out = Path(out)
    if not (out / "result.json").is_file():
        raise FileNotFoundError(f"out: no result.json in {out}; {runner} writes one there")
    meta = read_json(out / "result.json")
    arrays = {}
    if (out / npz).is_file():
        with np.load(out / npz) as z:
            arrays = {k: z[k] for k in z.files}
    return meta, arrays
